//! `specnorm digits`: the GAN on the 8×8 digits trained with and without spectral normalization
//! over Miyato et al.'s Adam settings A–F, scored by the Fréchet distance in a digit classifier's
//! feature space (the paper's robustness experiment, Figure 1, on data that trains in seconds).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::classifier::{Classifier, FEATURES, class_shares};
use crate::digit_plots;
use crate::digits::{CLASSES, Digits};
use crate::digits_gan::{RunConfig, SETTINGS, Setting, networks, train};
use crate::frechet::frechet_distance;
use crate::parsers::at_least_one;
use crate::runs::{Job, run_all};

/// A class counts as covered when at least this share of the generated images is classified
/// as it (a fifth of its share in the data).
const COVERED_SHARE: f32 = 0.02;
/// Images held out to test the feature classifier.
const CLASSIFIER_TEST: usize = 597;

/// Options of the digits sweep.
#[derive(Args, Debug, Clone)]
pub struct DigitsArgs {
    /// The settings to run, by letter (Miyato et al. 2018, Table 1) [default: ABCDEF; DE when
    /// specnorm runs without a command].
    #[arg(long, value_parser = settings)]
    pub settings: Option<Settings>,
    /// Generator updates per run.
    #[arg(long, default_value_t = 500, value_parser = at_least_one())]
    pub steps: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    pub batch: usize,
    /// Seed of the classifier, the data split and every run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder for the sample grids, the chart and summary.md (created if missing).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
}

/// Settings picked by letter, in the paper's order, each once.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings(pub Vec<Setting>);

/// Parses letters such as `ADE` into settings.
fn settings(text: &str) -> Result<Settings, String> {
    let mut picked = Vec::new();
    for letter in text.chars() {
        let letter = letter.to_ascii_uppercase();
        if !SETTINGS.iter().any(|s| s.name == letter) {
            return Err(format!(
                "{letter:?} is not a setting: use letters of ABCDEF"
            ));
        }
    }
    for setting in SETTINGS {
        if text.to_ascii_uppercase().contains(setting.name) {
            picked.push(setting);
        }
    }
    if picked.is_empty() {
        return Err("no setting given: use letters of ABCDEF".into());
    }
    Ok(Settings(picked))
}

/// One finished run and its scores.
pub struct Outcome {
    /// The setting trained with.
    pub setting: Setting,
    /// Whether the discriminator was normalized.
    pub spectral_norm: bool,
    /// Generated images, flattened `[n, 64]`.
    pub samples: Vec<f32>,
    /// Fréchet distance to the real images in the classifier's feature space.
    pub frechet: f64,
    /// Classes receiving at least [`COVERED_SHARE`] of the generated images.
    pub classes: usize,
}

/// What the scores are measured against.
struct Yardstick {
    classifier: Classifier,
    accuracy: f32,
    /// Features of the real half the generated images are compared with.
    reference: Vec<f32>,
    /// The Fréchet distance between the two real halves: the best a generator can score.
    floor: f64,
    /// Images per compared set.
    count: usize,
    /// The real half's images, for a grid beside the generated ones.
    real: Vec<f32>,
}

impl Yardstick {
    fn new(digits: &Digits, seed: u64, bar: &ProgressBar) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (test, train) = digits.split(CLASSIFIER_TEST, &mut rng);
        bar.set_message("training the feature classifier");
        let classifier = Classifier::train(&train, seed);
        let accuracy = classifier.accuracy(&test);
        let (half_a, half_b) = digits.split(compared(digits), &mut rng);
        let reference = classifier.features(&half_a.images);
        let floor = frechet_distance(&reference, &classifier.features(&half_b.images), FEATURES);
        bar.finish_with_message(format!(
            "feature classifier: {:.1}% held out",
            100.0 * accuracy
        ));
        Self {
            classifier,
            accuracy,
            reference,
            floor,
            count: half_a.len(),
            real: half_a.images,
        }
    }

    fn score(&self, config: &RunConfig, samples: Vec<f32>) -> Outcome {
        let features = self.classifier.features(&samples);
        let shares = class_shares(&self.classifier.predict(&samples));
        Outcome {
            setting: config.setting,
            spectral_norm: config.spectral_norm,
            frechet: frechet_distance(&self.reference, &features, FEATURES),
            classes: shares.iter().filter(|&&s| s >= COVERED_SHARE).count(),
            samples,
        }
    }
}

/// Images per compared set: the real digits split in two halves, one the reference for the
/// generated images and the other the floor's.
fn compared(digits: &Digits) -> usize {
    digits.len() / 2
}

/// All six settings, `specnorm digits`'s default.
pub const ALL: &str = "ABCDEF";
/// The two settings `specnorm` runs without a command: α = 0.001 with five discriminator steps,
/// where the paper's unnormalized GANs fail, and two runs' worth each fits ~90 s on 2 cores.
pub const QUICK: &str = "DE";

/// Runs the sweep over `args.settings` (or `default` letters), writes the report and prints
/// the summary.
pub fn run(args: &DigitsArgs, default: &str) -> Result<()> {
    let picked = match &args.settings {
        Some(picked) => picked.clone(),
        None => settings(default).map_err(anyhow::Error::msg)?,
    };
    let digits = Digits::embedded()?;
    // Generated sets match the real half they are compared with in size. The yardstick is
    // built after the runs: the workers would otherwise each train the classifier.
    let compared = compared(&digits);
    let jobs: Vec<Job<RunConfig>> = picked
        .0
        .iter()
        .flat_map(|&setting| {
            [true, false].map(|spectral_norm| Job {
                label: label(setting, spectral_norm),
                steps: args.steps,
                config: RunConfig {
                    setting,
                    spectral_norm,
                    steps: args.steps,
                    batch: args.batch,
                    seed: args.seed,
                    samples: compared,
                },
            })
        })
        .collect();
    let bars = MultiProgress::new();
    let samples = run_all(&jobs, &bars, |config, bar| {
        train(networks(config), &digits, config, bar)
    })?;
    let spinner = bars.add(ProgressBar::new_spinner());
    let yardstick = Yardstick::new(&digits, args.seed, &spinner);
    let outcomes: Vec<Outcome> = jobs
        .iter()
        .zip(samples)
        .map(|(job, samples)| yardstick.score(&job.config, samples))
        .collect();
    write_report(args, &yardstick, &outcomes)
}

fn label(setting: Setting, spectral_norm: bool) -> String {
    let sn = if spectral_norm {
        "with SN"
    } else {
        "without SN"
    };
    format!("{} {sn}", setting.name)
}

fn write_report(args: &DigitsArgs, yardstick: &Yardstick, outcomes: &[Outcome]) -> Result<()> {
    if outcomes.is_empty() {
        bail!("no run to report");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    crate::plots::register_font()?;
    digit_plots::grid(&args.out.join("real.png"), "real digits", &yardstick.real)?;
    for outcome in outcomes {
        let name = if outcome.spectral_norm { "sn" } else { "plain" };
        let path = args
            .out
            .join(format!("samples_{}_{name}.png", outcome.setting.name));
        let title = format!(
            "{}: Fréchet {:.1}, {} classes",
            label(outcome.setting, outcome.spectral_norm),
            outcome.frechet,
            outcome.classes
        );
        digit_plots::grid(&path, &title, &outcome.samples)?;
    }
    let by_setting: Vec<(char, f64, f64)> = outcomes
        .chunks_exact(2)
        .map(|pair| (pair[0].setting.name, pair[0].frechet, pair[1].frechet))
        .collect();
    let chart = args.out.join("frechet.png");
    digit_plots::frechet_by_setting(&chart, &by_setting, yardstick.floor)?;
    let summary = summary(args, yardstick, outcomes);
    std::fs::write(args.out.join("summary.md"), &summary)
        .with_context(|| format!("writing {}", args.out.join("summary.md").display()))?;
    println!("\n{summary}");
    println!(
        "Sample grids (real.png, samples_<setting>_sn.png, samples_<setting>_plain.png), \
         frechet.png and summary.md in {}/",
        args.out.display()
    );
    Ok(())
}

/// The summary table, in Markdown.
fn summary(args: &DigitsArgs, yardstick: &Yardstick, outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "8×8 digits, {} generator steps, batch {}, seed {}. Feature classifier: {:.1}% on {} \
         held-out images. Fréchet distance of {} generated images to {} real ones; between the two \
         real halves (the floor): {:.2}. A class is covered with at least {:.0}% of the images.\n",
        args.steps,
        args.batch,
        args.seed,
        100.0 * yardstick.accuracy,
        CLASSIFIER_TEST,
        yardstick.count,
        yardstick.count,
        yardstick.floor,
        100.0 * COVERED_SHARE,
    );
    let _ = writeln!(
        text,
        "| setting | α | β₁ | β₂ | n_dis | Fréchet with SN | without SN | classes with SN | without SN |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|---|---|");
    for pair in outcomes.chunks(2) {
        let [with, without] = pair else { continue };
        let s = with.setting;
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {}/{CLASSES} | {}/{CLASSES} |",
            s.name,
            s.lr,
            s.beta1,
            s.beta2,
            s.n_dis,
            with.frechet,
            without.frechet,
            with.classes,
            without.classes
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{device_rng_turn, scratch};

    #[test]
    fn a_short_sweep_writes_every_grid_the_chart_and_the_table() {
        let out = scratch("digits-sweep");
        let args = DigitsArgs {
            settings: Some(settings("BD").unwrap()),
            steps: 2,
            batch: 8,
            seed: 2,
            out: out.clone(),
        };
        {
            let _turn = device_rng_turn();
            run(&args, ALL).unwrap();
        }
        for name in ["B_sn", "B_plain", "D_sn", "D_plain"] {
            let png = std::fs::read(out.join(format!("samples_{name}.png"))).unwrap();
            assert_eq!(&png[1..4], b"PNG", "{name}");
        }
        for name in ["frechet.png", "real.png"] {
            assert_eq!(
                &std::fs::read(out.join(name)).unwrap()[1..4],
                b"PNG",
                "{name}"
            );
        }
        let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
        let rows: Vec<&str> = summary
            .lines()
            .filter(|l| l.starts_with("| B |") || l.starts_with("| D |"))
            .collect();
        assert_eq!(rows.len(), 2, "{summary}");
        assert!(
            rows[1].starts_with("| D | 0.001 | 0.5 | 0.9 | 5 |"),
            "{}",
            rows[1]
        );
        std::fs::remove_dir_all(out).unwrap();
    }

    #[test]
    fn settings_are_picked_by_letter_in_the_papers_order() {
        let Settings(picked) = settings("eA").unwrap();
        assert_eq!(picked.iter().map(|s| s.name).collect::<String>(), "AE");
        assert_eq!(picked[1].lr, 1e-3);
        assert!(settings("AG").unwrap_err().contains("'G'"));
        assert!(settings("").is_err());
    }
}

//! `specnorm bake IN OUT`: replace every spectrally normalized weight by the weight its layer
//! uses in evaluation, `W / σ` with `σ = u·(W v)` (or `⟨u, conv(v)⟩` for an operator-mode
//! weight, given the network's geometry), under its plain key; drop u and v.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;

use specnorm::network::{self, Network};
use specnorm::tensors;
use specnorm::weights::bake;

/// Options of `bake`.
#[derive(Args, Debug)]
pub struct BakeArgs {
    /// Checkpoint with spectral norm: .safetensors (Burn, Paddle or PyTorch names), .pt, .pth,
    /// .pdparams or a Burn record (.bpk).
    pub input: PathBuf,
    /// Where to write the inference-only checkpoint: .safetensors, .pdparams, .bpk, .pt or
    /// .pth, by its extension. Written whole or not at all.
    pub output: PathBuf,
    /// The network's description (JSON; see `inspect --network`): needed for operator-mode
    /// weights, whose σ depends on the convolution's geometry.
    #[arg(long)]
    pub network: Option<PathBuf>,
}

/// Runs `bake`, returning how many weights were baked.
pub fn run(args: &BakeArgs) -> Result<usize> {
    refuse_to_overwrite(&args.input, &args.output)?;
    let tensors = tensors::read(&args.input)?;
    let file = args.input.display().to_string();
    let operators = match &args.network {
        Some(path) => network::operators(&tensors, &Network::read(path)?, &file)?,
        None => Default::default(),
    };
    let (tensors, baked) = bake(tensors, &file, &operators)?;
    tensors::write(&args.output, &tensors)?;
    println!("baked {baked} weights into {}", args.output.display());
    Ok(baked)
}

/// Refuses an `output` that is `input` itself: the same path, or the same file through a
/// symbolic or hard link. Baking drops u and v, so writing over the input would lose them.
fn refuse_to_overwrite(input: &Path, output: &Path) -> Result<()> {
    if same_file(input, output) {
        bail!(
            "{}: is the input {}; bake writes a new file and never overwrites its input",
            output.display(),
            input.display()
        );
    }
    Ok(())
}

/// Whether both paths name one existing file (after links).
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::{FILES, expected, fixture, scratch};
    use specnorm::weights::normalized;
    use spectral_norm::format::FloatDtype;

    #[test]
    fn baked_weights_are_the_frameworks_eval_weights() {
        let dir = scratch("bake");
        for (file, framework) in FILES {
            for extension in ["safetensors", "pdparams", "bpk", "pt"] {
                let output = dir.join(format!("{file}.baked.{extension}"));
                let args = BakeArgs {
                    input: fixture(file),
                    output: output.clone(),
                    network: None,
                };
                assert_eq!(run(&args).unwrap(), 2);
                check_baked(file, framework, &tensors::read(&output).unwrap());
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The eval weight numpy recorded for one weight of `expected.json`, flattened.
    fn used(reference: &serde_json::Value) -> Vec<f64> {
        reference["used"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    /// `baked` holds each framework's eval weight (`expected.json`) under the plain key, and
    /// no u or v.
    fn check_baked(
        file: &str,
        framework: &str,
        baked: &std::collections::BTreeMap<String, tensors::NamedTensor>,
    ) {
        let expected = expected();
        for (key, reference) in expected[framework]["weights"].as_object().unwrap() {
            let plain = normalized(&tensors::read(&fixture(file)).unwrap())
                .into_iter()
                .find(|n| &n.weight == key)
                .unwrap()
                .plain;
            let got = &baked[&plain].values;
            let want = used(reference);
            assert_eq!(got.len(), want.len(), "{file} {plain}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "{file} {plain}: {g} vs {w}");
            }
        }
        assert!(normalized(baked).is_empty());
        assert_eq!(baked.len(), 6, "{file}: fc, conv, head weights and biases");
    }

    /// A half-precision checkpoint (Paddle's, every tensor rounded to f16 or bf16): inspect
    /// reads its dtype and σ, and bake writes the eval weights back in that dtype, equal to
    /// Paddle's f32 eval weights within what the rounding of W, u and v moves them.
    #[test]
    fn half_checkpoints_inspect_and_bake_in_their_own_dtype() {
        let dir = scratch("bake-half");
        let expected = expected();
        for (dtype, spacing) in [
            (FloatDtype::F16, 2f64.powi(-11)),
            (FloatDtype::BF16, 2f64.powi(-8)),
        ] {
            let mut tensors = tensors::read(&fixture("paddle.safetensors")).unwrap();
            for tensor in tensors.values_mut() {
                tensor.dtype = dtype;
            }
            let input = dir.join(format!("{dtype:?}.safetensors"));
            tensors::write(&input, &tensors).unwrap();
            let rows = specnorm::weights::rows(&tensors::read(&input).unwrap(), "half").unwrap();
            for (key, reference) in expected["paddle"]["weights"].as_object().unwrap() {
                let row = rows.iter().find(|r| &r.key == key).unwrap();
                assert_eq!(row.dtype, dtype);
                let sigma = reference["sigma"].as_f64().unwrap();
                assert!(
                    (row.sigma.value - sigma).abs() <= 8.0 * spacing * sigma,
                    "{key}"
                );
            }

            let output = dir.join(format!("{dtype:?}.baked.safetensors"));
            let args = BakeArgs {
                input,
                output: output.clone(),
                network: None,
            };
            assert_eq!(run(&args).unwrap(), 2);
            let baked = tensors::read(&output).unwrap();
            for (key, reference) in expected["paddle"]["weights"].as_object().unwrap() {
                let plain = key.trim_end_matches("_orig");
                let got = &baked[plain];
                assert_eq!(got.dtype, dtype, "{plain}");
                let want = used(reference);
                let scale = want.iter().fold(0f64, |m, x| m.max(x.abs()));
                for (g, w) in got.values.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 16.0 * spacing * scale,
                        "{dtype:?} {plain}: {g} vs {w}"
                    );
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn baking_twice_and_bad_inputs_fail_without_writing() {
        let dir = scratch("bake-refusals");
        let baked = dir.join("baked.safetensors");
        run(&BakeArgs {
            input: fixture("paddle.safetensors"),
            output: baked.clone(),
            network: None,
        })
        .unwrap();
        let again = dir.join("again.safetensors");
        let error = run(&BakeArgs {
            input: baked.clone(),
            output: again.clone(),
            network: None,
        })
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no spectrally normalized weights"),
            "{error}"
        );

        // Truncated and garbage files, and a wrong extension: one-line errors naming the file.
        let bytes = std::fs::read(fixture("torch_hook.safetensors")).unwrap();
        let cases = [
            ("truncated.safetensors", bytes[..bytes.len() / 2].to_vec()),
            ("garbage.safetensors", b"not a checkpoint at all".to_vec()),
            ("garbage.pt", b"PK\x03\x04 definitely not a zip".to_vec()),
            ("empty.pth", Vec::new()),
            ("weights.npz", bytes.clone()),
            (
                "truncated.pdparams",
                std::fs::read(fixture("paddle.pdparams")).unwrap()[..300].to_vec(),
            ),
        ];
        for (name, content) in cases {
            let input = dir.join(name);
            std::fs::write(&input, content).unwrap();
            let error = run(&BakeArgs {
                input,
                output: again.clone(),
                network: None,
            })
            .unwrap_err();
            let message = format!("{error:#}");
            assert!(
                message.contains(name) && !message.contains('\n'),
                "{message}"
            );
        }
        assert!(!again.exists(), "no partial output");
        assert!(!dir.join("again.safetensors.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn bake_never_writes_over_its_input() {
        let dir = scratch("bake-onto-input");
        let input = dir.join("model.safetensors");
        std::fs::copy(fixture("paddle.safetensors"), &input).unwrap();
        let original = std::fs::read(&input).unwrap();
        let symlink = dir.join("link.safetensors");
        let hardlink = dir.join("hard.safetensors");
        std::os::unix::fs::symlink(&input, &symlink).unwrap();
        std::fs::hard_link(&input, &hardlink).unwrap();
        let dotted = dir.join(".").join("model.safetensors");
        for output in [input.clone(), symlink, hardlink, dotted] {
            let error = run(&BakeArgs {
                input: input.clone(),
                output: output.clone(),
                network: None,
            })
            .unwrap_err()
            .to_string();
            assert!(error.contains("never overwrites its input"), "{error}");
            assert_eq!(
                std::fs::read(&input).unwrap(),
                original,
                "{}",
                output.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_zero_or_non_finite_sigma_is_refused_naming_the_key() {
        let dir = scratch("bake-sigma");
        let mut tensors = tensors::read(&fixture("paddle.safetensors")).unwrap();
        let key = normalized(&tensors)[0].clone();
        for bad in [0.0, f64::NAN] {
            for vector in [&key.u, &key.v] {
                tensors.get_mut(vector).unwrap().values.fill(bad);
            }
            let input = dir.join("bad.safetensors");
            tensors::write(&input, &tensors).unwrap();
            let output = dir.join("out.safetensors");
            let error = run(&BakeArgs {
                input,
                output: output.clone(),
                network: None,
            })
            .unwrap_err()
            .to_string();
            assert!(
                error.contains(&key.weight) && error.contains("non-finite"),
                "{error}"
            );
            assert!(!output.exists());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! A small GAN on 2-D points, trained with or without spectral normalization in the
//! discriminator, recording what the demo plots.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, softplus};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use spectral_norm::inspect;

use crate::mixture::Mixture;

/// Width of the hidden layers of both networks.
const HIDDEN: usize = 128;
/// Dimension of the generator's latent input.
pub const LATENT: usize = 4;
/// The discriminator's weights, by path.
pub const DISCRIMINATOR_LAYERS: [&str; 3] = ["input", "hidden", "output"];

/// Maps latent noise to points.
#[derive(Module, Debug)]
pub struct Generator {
    input: Linear,
    hidden: Linear,
    output: Linear,
}

/// Scores points: high for real, low for generated.
#[derive(Module, Debug)]
pub struct Discriminator {
    input: Linear,
    hidden: Linear,
    output: Linear,
}

impl Generator {
    fn new(device: &Device) -> Self {
        Self {
            input: LinearConfig::new(LATENT, HIDDEN).init(device),
            hidden: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            output: LinearConfig::new(HIDDEN, 2).init(device),
        }
    }

    /// Points `[n, 2]` from latent noise `[n, LATENT]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let x = relu(self.input.forward(z));
        let x = relu(self.hidden.forward(x));
        self.output.forward(x)
    }
}

impl Discriminator {
    fn new(device: &Device) -> Self {
        Self {
            input: LinearConfig::new(2, HIDDEN).init(device),
            hidden: LinearConfig::new(HIDDEN, HIDDEN).init(device),
            output: LinearConfig::new(HIDDEN, 1).init(device),
        }
    }

    /// Logits `[n, 1]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = leaky_relu(self.input.forward(x), 0.2);
        let x = leaky_relu(self.hidden.forward(x), 0.2);
        self.output.forward(x)
    }

    fn layer(&self, name: &str) -> &Param<Tensor<2>> {
        match name {
            "input" => &self.input.weight,
            "hidden" => &self.hidden.weight,
            _ => &self.output.weight,
        }
    }

    /// Per layer: (σ(W) of the stored weight, σ of the weight the layer uses), converged.
    fn spectral_norms(&self) -> Vec<(f32, f32)> {
        DISCRIMINATOR_LAYERS
            .iter()
            .map(|name| {
                let param = self.layer(name);
                let used = inspect(param).map_or_else(|| param.val(), |state| state.weight);
                (sigma(param.base()), sigma(used))
            })
            .collect()
    }
}

/// The largest singular value of a Linear weight `[in, out]`, exact by SVD (the demo's layers
/// are at most 128 × 128, far below [`specnorm::sigma::SVD_MAX_WORK`]).
fn sigma(weight: Tensor<2>) -> f32 {
    let [rows, cols] = weight.dims();
    let values = weight.try_into_vec_as::<f64>();
    let values = values.expect("a float tensor on the CPU reads as f64");
    specnorm::sigma::largest_singular_value(&values, rows, cols).value as f32
}

/// What one training run is: the same for both runs but for `spectral_norm`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Normalize the discriminator's weights.
    pub spectral_norm: bool,
    /// Seed for initialization, data and noise.
    pub seed: u64,
    /// Generator updates.
    pub steps: usize,
    /// Discriminator updates per generator update.
    pub n_dis: usize,
    /// Batch size of real and generated points.
    pub batch: usize,
    /// Adam learning rate (both networks).
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f32,
    /// Adam β₂.
    pub beta2: f32,
    /// Record σ and samples every this many generator steps.
    pub record_every: usize,
}

/// What a run recorded.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct History {
    /// Generator step of each σ record.
    pub record_steps: Vec<usize>,
    /// Per record, per discriminator layer: (σ(W) stored, σ of the weight used).
    pub sigmas: Vec<Vec<(f32, f32)>>,
    /// Discriminator loss per generator step (mean over its `n_dis` updates).
    pub d_loss: Vec<f32>,
    /// Generator loss per step.
    pub g_loss: Vec<f32>,
    /// Final generated points, flattened `[n, 2]`.
    pub samples: Vec<f32>,
}

fn noise(rng: &mut StdRng, rows: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * LATENT)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, LATENT]), device)
}

/// The networks of one run.
pub type Networks = crate::networks::Networks<Generator, Discriminator>;

/// Fresh networks for `config`, seeded by its seed.
pub fn networks(config: &RunConfig) -> Networks {
    let normalized: Vec<String> = match config.spectral_norm {
        true => DISCRIMINATOR_LAYERS
            .map(|name| format!("{name}.weight"))
            .into(),
        false => Vec::new(),
    };
    Networks::new(config.seed, &normalized, Generator::new, Discriminator::new)
}

/// Trains one GAN on `data` with the non-saturating loss, returning its history.
/// Deterministic for a seed.
pub fn train(
    networks: Networks,
    data: &Mixture,
    config: &RunConfig,
    progress: &ProgressBar,
) -> History {
    let Networks {
        mut generator,
        mut discriminator,
        device,
    } = networks;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let adam = AdamConfig::new()
        .with_beta_1(config.beta1)
        .with_beta_2(config.beta2);
    let (mut opt_g, mut opt_d) = (adam.init(), adam.init());
    let mut history = History::default();
    for step in 0..config.steps {
        let mut d_loss = 0.0;
        for _ in 0..config.n_dis {
            let real = data.sample(config.batch, &mut rng);
            let real = Tensor::<2>::from_data(TensorData::new(real, [config.batch, 2]), &device);
            let fake = generator
                .forward(noise(&mut rng, config.batch, &device))
                .detach();
            // D(real) and D(fake), then one backward: each use keeps its own u, v.
            let loss = softplus(discriminator.forward(real).neg(), 1.0).mean()
                + softplus(discriminator.forward(fake), 1.0).mean();
            d_loss += loss.clone().into_scalar::<f32>() / config.n_dis as f32;
            let grads = GradientsParams::from_grads(loss.backward(), &discriminator);
            discriminator = opt_d.step(config.lr, discriminator, grads);
        }
        let fake = generator.forward(noise(&mut rng, config.batch, &device));
        let loss = softplus(discriminator.forward(fake).neg(), 1.0).mean();
        history.g_loss.push(loss.clone().into_scalar::<f32>());
        history.d_loss.push(d_loss);
        let grads = GradientsParams::from_grads(loss.backward(), &generator);
        generator = opt_g.step(config.lr, generator, grads);

        if step % config.record_every == 0 || step + 1 == config.steps {
            history.record_steps.push(step + 1);
            history.sigmas.push(discriminator.spectral_norms());
        }
        progress.inc(1);
    }
    let eval = generator.valid();
    let samples = eval.forward(noise(&mut rng, 2500, &device).without_autodiff());
    history.samples = samples.into_data().convert::<f32>().iter::<f32>().collect();
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::device_rng_turn;

    fn short_run(spectral_norm: bool, seed: u64) -> History {
        run(spectral_norm, seed, 6)
    }

    fn run(spectral_norm: bool, seed: u64, steps: usize) -> History {
        let _turn = device_rng_turn();
        let config = RunConfig {
            spectral_norm,
            seed,
            steps,
            n_dis: 2,
            batch: 32,
            lr: 1e-3,
            beta1: 0.5,
            beta2: 0.999,
            record_every: 3,
        };
        train(
            networks(&config),
            &Mixture::ring(2.0, 0.05),
            &config,
            &ProgressBar::hidden(),
        )
    }

    #[test]
    fn a_seed_determines_the_whole_run() {
        let (a, b) = (short_run(true, 3), short_run(true, 3));
        assert_eq!(a.samples, b.samples);
        assert_eq!(a.d_loss, b.d_loss);
        assert_eq!(a.sigmas, b.sigmas);
        assert_ne!(short_run(true, 4).samples, a.samples);
    }

    #[test]
    fn spectral_norm_holds_the_used_weights_near_one() {
        let history = run(true, 5, 60);
        assert_eq!(history.record_steps.len(), 21);
        // One power step per use from a random start: early estimates of a 128 × 128 weight
        // are rough, but after ~300 uses the weights in use have spectral norm close to 1.
        for (raw, used) in history.sigmas.last().unwrap() {
            assert!((used - 1.0).abs() < 0.1, "σ(W/σ) = {used}");
            assert!(
                (raw - used).abs() > 0.1,
                "σ(W) = {raw} is not normalized away"
            );
        }
        let plain = run(false, 5, 6);
        assert!(
            plain
                .sigmas
                .iter()
                .flatten()
                .all(|(raw, used)| (raw - used).abs() < 1e-3 * raw)
        );
    }
}

//! A DCGAN-style GAN on the 8×8 digits: a transposed-convolution generator, and a convolutional
//! discriminator whose every weight is spectrally normalized in the SN runs (the paper's
//! CNN discriminator, scaled to 8×8 images).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, softplus, tanh};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand_distr::{Distribution, StandardNormal};

use crate::classifier::{images, to_vec};
use crate::digits::{Digits, PIXELS};

/// Dimension of the generator's latent input.
const LATENT: usize = 16;
/// The discriminator's weights, by path.
pub const DISCRIMINATOR_WEIGHTS: [&str; 5] = [
    "conv1.weight",
    "conv2.weight",
    "conv3.weight",
    "conv4.weight",
    "output.weight",
];

/// Latent noise to `[n, 1, 8, 8]` images in [-1, 1]: 2×2 → 4×4 → 8×8.
#[derive(Module, Debug)]
pub struct Generator {
    project: Linear,
    up1: ConvTranspose2d,
    up2: ConvTranspose2d,
}

/// Scores images: high for real, low for generated. 8×8 → 4×4 → 2×2, then a Linear.
#[derive(Module, Debug)]
pub struct Discriminator {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    conv4: Conv2d,
    output: Linear,
}

fn up(channels: [usize; 2], device: &Device) -> ConvTranspose2d {
    ConvTranspose2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .init(device)
}

fn conv(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl Generator {
    fn new(device: &Device) -> Self {
        Self {
            project: LinearConfig::new(LATENT, 64 * 2 * 2).init(device),
            up1: up([64, 32], device),
            up2: up([32, 1], device),
        }
    }

    /// Flattened-pixel images `[n, 64]` from latent noise `[n, LATENT]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let n = z.dims()[0];
        let x = relu(self.project.forward(z)).reshape([n, 64, 2, 2]);
        let x = relu(self.up1.forward(x));
        tanh(self.up2.forward(x)).reshape([n, PIXELS])
    }
}

impl Discriminator {
    fn new(device: &Device) -> Self {
        Self {
            conv1: conv([1, 16], 3, 1, device),
            conv2: conv([16, 32], 4, 2, device),
            conv3: conv([32, 32], 3, 1, device),
            conv4: conv([32, 64], 4, 2, device),
            output: LinearConfig::new(64 * 2 * 2, 1).init(device),
        }
    }

    /// Logits `[n, 1]` of flattened-pixel images `[n, 64]`.
    pub fn forward(&self, images: Tensor<2>) -> Tensor<2> {
        let n = images.dims()[0];
        let x = images.reshape([n, 1, 8, 8]);
        let x = leaky_relu(self.conv1.forward(x), 0.1);
        let x = leaky_relu(self.conv2.forward(x), 0.1);
        let x = leaky_relu(self.conv3.forward(x), 0.1);
        let x = leaky_relu(self.conv4.forward(x), 0.1);
        self.output.forward(x.reshape([n, 64 * 2 * 2]))
    }
}

/// One of Miyato et al.'s Adam settings (Table 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// The paper's letter.
    pub name: char,
    /// Learning rate α.
    pub lr: f64,
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// Discriminator updates per generator update.
    pub n_dis: usize,
}

/// Settings A–F of Miyato et al. 2018, Table 1.
pub const SETTINGS: [Setting; 6] = [
    setting('A', 1e-4, 0.5, 0.9, 5),
    setting('B', 1e-4, 0.5, 0.999, 1),
    setting('C', 2e-4, 0.5, 0.999, 1),
    setting('D', 1e-3, 0.5, 0.9, 5),
    setting('E', 1e-3, 0.5, 0.999, 5),
    setting('F', 1e-3, 0.9, 0.999, 5),
];

const fn setting(name: char, lr: f64, beta1: f32, beta2: f32, n_dis: usize) -> Setting {
    Setting {
        name,
        lr,
        beta1,
        beta2,
        n_dis,
    }
}

/// One training run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The optimizer setting.
    pub setting: Setting,
    /// Normalize every discriminator weight.
    pub spectral_norm: bool,
    /// Generator updates.
    pub steps: usize,
    /// Images per batch, real and generated.
    pub batch: usize,
    /// Seed of initialization, batches and noise.
    pub seed: u64,
    /// Generated images returned at the end.
    pub samples: usize,
}

/// The networks of one run.
pub type Networks = crate::networks::Networks<Generator, Discriminator>;

/// Fresh networks for `config`, seeded by its seed.
pub fn networks(config: &RunConfig) -> Networks {
    let normalized: Vec<String> = match config.spectral_norm {
        true => DISCRIMINATOR_WEIGHTS.map(String::from).into(),
        false => Vec::new(),
    };
    Networks::new(config.seed, &normalized, Generator::new, Discriminator::new)
}

fn noise(rng: &mut StdRng, rows: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * LATENT)
        .map(|_| StandardNormal.sample(rng))
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, LATENT]), device)
}

/// Trains with the non-saturating loss and returns `config.samples` generated images,
/// flattened `[n, 64]`. Deterministic for a seed.
pub fn train(
    networks: Networks,
    real: &Digits,
    config: &RunConfig,
    progress: &ProgressBar,
) -> Vec<f32> {
    let Networks {
        mut generator,
        mut discriminator,
        device,
    } = networks;
    let setting = config.setting;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let adam = AdamConfig::new()
        .with_beta_1(setting.beta1)
        .with_beta_2(setting.beta2);
    let (mut opt_g, mut opt_d) = (adam.init(), adam.init());
    let indices: Vec<usize> = (0..real.len()).collect();
    for _ in 0..config.steps {
        for _ in 0..setting.n_dis {
            let batch: Vec<usize> = indices
                .choose_multiple(&mut rng, config.batch)
                .copied()
                .collect();
            let real = images(&real.subset(&batch).images, &device);
            let fake = generator
                .forward(noise(&mut rng, config.batch, &device))
                .detach();
            let loss = softplus(discriminator.forward(real).neg(), 1.0).mean()
                + softplus(discriminator.forward(fake), 1.0).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &discriminator);
            discriminator = opt_d.step(setting.lr, discriminator, grads);
        }
        let fake = generator.forward(noise(&mut rng, config.batch, &device));
        let loss = softplus(discriminator.forward(fake).neg(), 1.0).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &generator);
        generator = opt_g.step(setting.lr, generator, grads);
        progress.inc(1);
    }
    let eval = generator.valid();
    let z = noise(&mut rng, config.samples, &device).without_autodiff();
    to_vec(eval.forward(z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::device_rng_turn;

    fn config(spectral_norm: bool, seed: u64, steps: usize) -> RunConfig {
        RunConfig {
            setting: SETTINGS[1],
            spectral_norm,
            steps,
            batch: 16,
            seed,
            samples: 20,
        }
    }

    fn run(config: &RunConfig) -> Vec<f32> {
        let digits = Digits::embedded().unwrap();
        let _turn = device_rng_turn();
        train(networks(config), &digits, config, &ProgressBar::hidden())
    }

    #[test]
    fn a_seed_determines_the_run_and_images_are_in_range() {
        let a = run(&config(true, 3, 3));
        assert_eq!(a.len(), 20 * PIXELS);
        assert!(a.iter().all(|p| (-1.0..=1.0).contains(p)));
        assert_eq!(a, run(&config(true, 3, 3)));
        assert_ne!(a, run(&config(true, 4, 3)));
        assert_ne!(
            a,
            run(&config(false, 3, 3)),
            "SN changes the discriminator's updates"
        );
    }

    #[test]
    fn every_discriminator_weight_is_normalized_in_the_sn_runs() {
        let _turn = device_rng_turn();
        let sn = networks(&config(true, 1, 1));
        let normalized = [
            spectral_norm::inspect(&sn.discriminator.conv1.weight).is_some(),
            spectral_norm::inspect(&sn.discriminator.conv2.weight).is_some(),
            spectral_norm::inspect(&sn.discriminator.conv3.weight).is_some(),
            spectral_norm::inspect(&sn.discriminator.conv4.weight).is_some(),
            spectral_norm::inspect(&sn.discriminator.output.weight).is_some(),
        ];
        assert_eq!(normalized, [true; 5]);
        let plain = networks(&config(false, 1, 1));
        assert!(spectral_norm::inspect(&plain.discriminator.conv1.weight).is_none());
    }
}

//! Trains two small spectrally normalized networks on data generated in code and prints σ per
//! layer: an MLP on a three-arm spiral, and a convolutional net on 8×8 bar images.
//!
//! ```text
//! cargo run --release -p spectral-norm --example train
//! ```

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use spectral_norm::{SpectralNormConfig, inspect, largest_singular_value, spectral_norm};

const STEPS: usize = 1000;

#[derive(Module, Debug)]
struct Mlp {
    input: Linear,
    hidden: Linear,
    output: Linear,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = relu(self.input.forward(x));
        let x = relu(self.hidden.forward(x));
        self.output.forward(x)
    }
}

#[derive(Module, Debug)]
struct ConvNet {
    conv: Conv2d,
    output: Linear,
}

impl ConvNet {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let features = relu(self.conv.forward(x));
        self.output.forward(features.flatten::<2>(1, 3))
    }
}

/// Deterministic uniform numbers in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Three interleaved spiral arms, 100 points each: (points [300, 2], labels [300]).
///
/// The arms span a radius of 20: a ReLU network whose layers all have spectral norm 1 is
/// 1-Lipschitz, so its logits can only change as fast as the input moves, and arms packed
/// into the unit disc would be too close together for it to separate.
fn spiral(rng: &mut Lcg) -> (Vec<f32>, Vec<i64>) {
    let (mut points, mut labels) = (Vec::new(), Vec::new());
    for arm in 0..3 {
        for i in 0..100 {
            let r = i as f32 / 100.0;
            let angle = arm as f32 * 2.094 + r * 4.0 + (rng.next() - 0.5) * 0.3;
            points.extend([20.0 * r * angle.cos(), 20.0 * r * angle.sin()]);
            labels.push(arm);
        }
    }
    (points, labels)
}

/// 8×8 images with one horizontal (class 0) or vertical (class 1) bar plus noise.
fn bars(rng: &mut Lcg, count: usize) -> (Vec<f32>, Vec<i64>) {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for n in 0..count {
        let class = (n % 2) as i64;
        let line = (rng.next() * 8.0) as usize;
        for row in 0..8 {
            for col in 0..8 {
                let on = if class == 0 { row == line } else { col == line };
                pixels.push(if on { 1.0 } else { 0.0 } + (rng.next() - 0.5) * 0.4);
            }
        }
        labels.push(class);
    }
    (pixels, labels)
}

fn accuracy(logits: Tensor<2>, labels: &Tensor<1, Int>) -> f32 {
    let predicted = logits.argmax(1).flatten::<1>(0, 1);
    let correct = predicted
        .equal(labels.clone())
        .int()
        .sum()
        .into_scalar::<i64>();
    correct as f32 / labels.dims()[0] as f32
}

/// One row of the σ table: the stored estimate of σ(W), and σ(W/σ) by converged power iteration.
fn report<const D: usize>(name: &str, weight: &Param<Tensor<D>>) {
    let snapshot = inspect(weight).expect("spectrally normalized");
    let dim = snapshot.dim.expect("the matrix-view mode");
    let normalized =
        largest_singular_value(snapshot.weight, dim, 1e-6, 2000).expect("a valid axis");
    println!(
        "  {name:<14} σ(W) ≈ {:>8.4}   σ(W/σ) = {normalized:.4}",
        snapshot.sigma
    );
}

fn main() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let mut rng = Lcg(7);
    let sn = SpectralNormConfig::new();
    let loss = CrossEntropyLossConfig::new().init(&device);

    let (points, labels) = spiral(&mut rng);
    let x = Tensor::<2>::from_data(TensorData::new(points, [300, 2]), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [300]), &device);
    let mlp = Mlp {
        input: LinearConfig::new(2, 64).init(&device),
        hidden: LinearConfig::new(64, 64).init(&device),
        output: LinearConfig::new(64, 3).init(&device),
    };
    let mut mlp = ["input.weight", "hidden.weight", "output.weight"]
        .iter()
        .fold(mlp, |model, path| {
            spectral_norm(&model, &sn.clone().with_name(path.to_string())).unwrap()
        });
    let mut adam = AdamConfig::new().init();
    for _ in 0..STEPS {
        let grads = loss.forward(mlp.forward(x.clone()), y.clone()).backward();
        mlp = adam.step(1e-2, mlp.clone(), GradientsParams::from_grads(grads, &mlp));
    }
    let eval = mlp.valid();
    println!(
        "MLP on a 3-arm spiral, {STEPS} Adam steps: accuracy {:.1}%",
        100.0 * accuracy(eval.forward(x.without_autodiff()), &y.without_autodiff())
    );
    report("input", &mlp.input.weight);
    report("hidden", &mlp.hidden.weight);
    report("output", &mlp.output.weight);

    let (pixels, labels) = bars(&mut rng, 200);
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [200, 1, 8, 8]), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [200]), &device);
    let net = ConvNet {
        conv: spectral_norm(&Conv2dConfig::new([1, 4], [3, 3]).init(&device), &sn).unwrap(),
        output: spectral_norm(&LinearConfig::new(4 * 6 * 6, 2).init(&device), &sn).unwrap(),
    };
    let mut net = net;
    let mut adam = AdamConfig::new().init();
    for _ in 0..STEPS / 3 {
        let grads = loss
            .forward(net.forward(images.clone()), y.clone())
            .backward();
        net = adam.step(1e-2, net.clone(), GradientsParams::from_grads(grads, &net));
    }
    let eval = net.valid();
    println!(
        "Conv net on 8×8 bars, {} Adam steps: accuracy {:.1}%",
        STEPS / 3,
        100.0
            * accuracy(
                eval.forward(images.without_autodiff()),
                &y.without_autodiff()
            )
    );
    report("conv", &net.conv.weight);
    report("output", &net.output.weight);
}

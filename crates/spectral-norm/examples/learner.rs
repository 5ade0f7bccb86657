//! Spectral normalization under Burn's own training loop: burn-train's `SupervisedTraining`
//! with checkpointing and metrics on, trained three epochs straight and, separately, two epochs
//! then resumed from the Learner's epoch-2 checkpoint for the third. The stored `u`, `v` (and
//! the weights) of both come out bit for bit the same: the Learner's checkpoints carry u and v
//! in the model record, so a resumed run continues the power iteration where it stopped.
//!
//! ```sh
//! cargo run --release -p spectral-norm --example learner
//! ```

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::{MseLoss, Reduction};
use burn::nn::{Linear, LinearConfig};
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::LossMetric;
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, MultiDeviceOptim, RegressionOutput,
    SupervisedTraining, TrainOutput, TrainStep,
};
use spectral_norm::{SpectralNormConfig, spectral_norm};

/// A two-layer perceptron fitting y = sin(3x), both weights spectrally normalized.
#[derive(Module, Debug)]
pub struct Regressor {
    hidden: Linear,
    output: Linear,
}

impl Regressor {
    /// Fresh layers, seeded, with spectral norm on both weights.
    pub fn new(device: &Device) -> Self {
        device.seed(3);
        let model = Self {
            hidden: LinearConfig::new(1, 32).init(device),
            output: LinearConfig::new(32, 1).init(device),
        };
        let model = spectral_norm(
            &model,
            &SpectralNormConfig::new().with_name("hidden.weight".into()),
        );
        let model = model.expect("a Linear weight");
        spectral_norm(
            &model,
            &SpectralNormConfig::new().with_name("output.weight".into()),
        )
        .expect("a Linear weight")
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(x)))
    }

    fn regression(&self, batch: Points) -> RegressionOutput {
        let output = self.forward(batch.x);
        let loss = MseLoss::new().forward(output.clone(), batch.y.clone(), Reduction::Mean);
        RegressionOutput::new(loss.reshape([1]), output, batch.y)
    }

    /// The stored `u` and `v` of both weights, as the record holds them.
    pub fn vectors(&self) -> Vec<Vec<f32>> {
        [&self.hidden.weight, &self.output.weight]
            .iter()
            .flat_map(|param| {
                let state = param
                    .reparameterization::<spectral_norm::SpectralNorm>()
                    .expect("normalized");
                [state.u(), state.v()]
            })
            .map(|vector| vector.try_into_vec_as::<f32>().expect("f32 on the CPU"))
            .collect()
    }

    /// Both stored weights, flattened.
    pub fn weights(&self) -> Vec<f32> {
        [&self.hidden.weight, &self.output.weight]
            .iter()
            .flat_map(|param| param.base().try_into_vec_as::<f32>().expect("f32"))
            .collect()
    }
}

impl TrainStep for Regressor {
    type Input = Points;
    type Output = RegressionOutput;

    fn step(&self, batch: Points) -> TrainOutput<RegressionOutput> {
        // A training-mode forward: each normalized weight runs its power step and stores u, v.
        let regression = self.regression(batch);
        TrainOutput::new(self, regression.loss.backward(), regression)
    }
}

impl InferenceStep for Regressor {
    type Input = Points;
    type Output = RegressionOutput;

    fn step(&self, batch: Points) -> RegressionOutput {
        // The Learner validates on `valid()`: no power step, the stored u, v are used.
        self.regression(batch)
    }
}

/// A batch of points.
#[derive(Clone, Debug)]
pub struct Points {
    x: Tensor<2>,
    y: Tensor<2>,
}

struct PointBatcher;

impl Batcher<f32, Points> for PointBatcher {
    fn batch(&self, xs: Vec<f32>, device: &Device) -> Points {
        let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let n = xs.len();
        Points {
            x: Tensor::from_data(TensorData::new(xs, [n, 1]), device),
            y: Tensor::from_data(TensorData::new(ys, [n, 1]), device),
        }
    }
}

fn loaders() -> (Arc<dyn DataLoader<Points>>, Arc<dyn DataLoader<Points>>) {
    let xs = |count: usize, offset: f32| -> Vec<f32> {
        (0..count)
            .map(|i| -1.0 + 2.0 * (i as f32 + offset) / count as f32)
            .collect()
    };
    let train = DataLoaderBuilder::new(PointBatcher)
        .batch_size(16)
        .build(InMemDataset::new(xs(128, 0.25)));
    let valid = DataLoaderBuilder::new(PointBatcher)
        .batch_size(16)
        .build(InMemDataset::new(xs(32, 0.5)));
    (train, valid)
}

/// Trains to `epochs` in `directory`, resuming from the checkpoint of epoch `resume` if given,
/// on burn-train's multi-device strategy over `devices` copies of the CPU device if above 1.
pub fn train(directory: &Path, epochs: usize, resume: Option<usize>, devices: usize) -> Regressor {
    let device = Device::flex().autodiff();
    let (train, valid) = loaders();
    let optimizer: ModuleOptimizer = AdamConfig::new().init();
    let learner = Learner::new(Regressor::new(&device), optimizer, ConstantLr::new(1e-2));
    let mut training = SupervisedTraining::new(directory, train, valid)
        .num_epochs(epochs)
        .with_default_checkpointers()
        .with_checkpointing_strategy(KeepLastNCheckpoints::new(epochs))
        .with_metric_logger(InMemoryMetricLogger::new())
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .with_application_logger(None);
    if let Some(epoch) = resume {
        training = training.checkpoint(epoch);
    }
    if devices > 1 {
        let strategy =
            ExecutionStrategy::multi(vec![device; devices], MultiDeviceOptim::OptimMainDevice);
        training = training.with_training_strategy(strategy.into());
    }
    training.launch(learner).model
}

/// Three epochs straight, and two then a resumed third: (straight, resumed).
pub fn straight_and_resumed(scratch: &Path) -> (Regressor, Regressor) {
    let straight = train(&scratch.join("straight"), 3, None, 1);
    let resumed_dir = scratch.join("resumed");
    train(&resumed_dir, 2, None, 1);
    let resumed = train(&resumed_dir, 3, Some(2), 1);
    (straight, resumed)
}

#[allow(dead_code)] // The test includes this file for the functions above.
fn main() {
    let scratch = std::env::temp_dir().join(format!("sn-learner-{}", std::process::id()));
    let (straight, resumed) = straight_and_resumed(&scratch);
    let same_vectors = straight.vectors() == resumed.vectors();
    let same_weights = straight.weights() == resumed.weights();
    println!(
        "u, v after 3 epochs straight: {:?}",
        &straight.vectors()[0][..4]
    );
    println!(
        "u, v after 2 + resumed 1:     {:?}",
        &resumed.vectors()[0][..4]
    );
    println!("u, v identical: {same_vectors}; weights identical: {same_weights}");
    let _ = std::fs::remove_dir_all(&scratch);
    if !(same_vectors && same_weights) {
        std::process::exit(1);
    }
}

//! The digit classifier whose hidden layer is the feature space of the Fréchet distance (the
//! role Inception-v3 plays in FID), and whose predictions count the classes a generator covers.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::digits::{CLASSES, Digits, PIXELS};

/// Width of the feature layer.
pub const FEATURES: usize = 64;
const HIDDEN: usize = 128;
const EPOCHS: usize = 40;
const BATCH: usize = 64;

/// A two-hidden-layer perceptron on the 64 pixels.
#[derive(Module, Debug)]
pub struct Classifier {
    hidden: Linear,
    features: Linear,
    output: Linear,
}

impl Classifier {
    fn new(device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(PIXELS, HIDDEN).init(device),
            features: LinearConfig::new(HIDDEN, FEATURES).init(device),
            output: LinearConfig::new(FEATURES, CLASSES).init(device),
        }
    }

    fn embed(&self, images: Tensor<2>) -> Tensor<2> {
        relu(self.features.forward(relu(self.hidden.forward(images))))
    }

    fn logits(&self, images: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.embed(images))
    }

    /// Trains on `train` (Adam, fixed seed), returning the classifier for inference.
    pub fn train(train: &Digits, seed: u64) -> Self {
        let device = Device::flex().autodiff();
        device.seed(seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut model = Self::new(&device);
        let mut optimizer = AdamConfig::new().init();
        let loss = CrossEntropyLossConfig::new().init(&device);
        let mut order: Vec<usize> = (0..train.len()).collect();
        for _ in 0..EPOCHS {
            order.shuffle(&mut rng);
            for batch in order.chunks(BATCH) {
                let part = train.subset(batch);
                let labels: Vec<i64> = part.labels.iter().map(|&l| i64::from(l)).collect();
                let targets =
                    Tensor::<1, Int>::from_data(TensorData::new(labels, [batch.len()]), &device);
                let value = loss.forward(model.logits(images(&part.images, &device)), targets);
                let grads = GradientsParams::from_grads(value.backward(), &model);
                model = optimizer.step(1e-3, model, grads);
            }
        }
        model.valid()
    }

    /// Feature vectors, flattened `[n, FEATURES]`, of flattened `[n, 64]` images.
    pub fn features(&self, pixels: &[f32]) -> Vec<f32> {
        let device = Device::flex();
        to_vec(self.embed(images(pixels, &device)))
    }

    /// The predicted class of each image.
    pub fn predict(&self, pixels: &[f32]) -> Vec<u8> {
        let device = Device::flex();
        let logits = to_vec(self.logits(images(pixels, &device)));
        logits
            .chunks_exact(CLASSES)
            .map(|row| {
                let best = (0..CLASSES).max_by(|&a, &b| row[a].total_cmp(&row[b]));
                best.unwrap_or(0) as u8
            })
            .collect()
    }

    /// Share of `test` classified correctly.
    pub fn accuracy(&self, test: &Digits) -> f32 {
        let predicted = self.predict(&test.images);
        let right = predicted
            .iter()
            .zip(&test.labels)
            .filter(|(p, l)| p == l)
            .count();
        right as f32 / test.len().max(1) as f32
    }
}

/// Flattened `[n, 64]` pixels as a tensor.
pub fn images(pixels: &[f32], device: &Device) -> Tensor<2> {
    let rows = pixels.len() / PIXELS;
    Tensor::from_data(TensorData::new(pixels.to_vec(), [rows, PIXELS]), device)
}

/// A float tensor's values, row-major.
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().iter::<f32>().collect()
}

/// Per class, the share of `predictions` given to it.
pub fn class_shares(predictions: &[u8]) -> [f32; CLASSES] {
    let mut shares = [0.0; CLASSES];
    for &p in predictions {
        shares[usize::from(p)] += 1.0 / predictions.len() as f32;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::device_rng_turn;

    #[test]
    fn the_classifier_recognizes_held_out_digits() {
        let _turn = device_rng_turn();
        let digits = Digits::embedded().unwrap();
        let (train, test) = digits.split(1200, &mut StdRng::seed_from_u64(1));
        let classifier = Classifier::train(&train, 1);
        // A perceptron on these digits reaches ~97 %; chance is 10 %.
        let accuracy = classifier.accuracy(&test);
        assert!(accuracy > 0.93, "held-out accuracy {accuracy}");
        assert_eq!(classifier.features(test.image(0)).len(), FEATURES);
        let shares = class_shares(&classifier.predict(&test.images));
        assert!(shares.iter().all(|&s| s > 0.05), "{shares:?}");
    }
}

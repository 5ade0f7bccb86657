//! The generic path on wgpu (the backend GPU users of Burn take) against the Flex fast path: the
//! same Linear and Conv2d weights and start vectors, one training use, then u, v, σ, `W/σ` and
//! the gradient of a weighted sum of `W/σ` must agree to f32 precision. Runs on any Vulkan
//! device (see `devices`); CI uses Mesa's software driver, lavapipe (`.ci/wgpu`).

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use spectral_norm::{SpectralNorm, SpectralNormConfig, inspect, spectral_norm};
use wgpu_check::wgpu_device;

/// Deterministic values in [-1, 1).
fn values(count: usize, seed: u32) -> Vec<f32> {
    (0..count)
        .map(|i| {
            let x = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(97));
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// What one training use of `param` on `device` gives: (u, v, σ, W/σ, ∂⟨R, W/σ⟩/∂W).
fn one_use<const D: usize>(param: &Param<Tensor<D>>) -> [Vec<f32>; 5] {
    let state = param
        .reparameterization::<SpectralNorm>()
        .expect("normalized");
    let used = param.val();
    let weights = Tensor::<D>::from_data(
        TensorData::new(values(used.shape().num_elements(), 5), used.shape()),
        &used.device(),
    );
    let grads = (used.clone() * weights).sum().backward();
    let gradient = param.base().grad(&grads).expect("W is trained");
    let snapshot = inspect(param).expect("normalized");
    let read = |t: Tensor<1>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    [
        read(state.u()),
        read(state.v()),
        vec![snapshot.sigma as f32],
        used.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap(),
        gradient
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap(),
    ]
}

fn assert_close(name: &str, wgpu: &[f32], flex: &[f32]) {
    assert_eq!(wgpu.len(), flex.len(), "{name}");
    let scale = flex.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    for (i, (a, b)) in wgpu.iter().zip(flex).enumerate() {
        assert!(
            (a - b).abs() <= 2e-5 * scale,
            "{name}[{i}]: wgpu {a}, flex {b}"
        );
    }
}

fn compare(devices: [Device; 2], build: impl Fn(&Device) -> [Vec<f32>; 5]) {
    let [wgpu, flex] = devices.map(|device| build(&device));
    for (name, (w, f)) in ["u", "v", "σ", "W/σ", "∂W"]
        .iter()
        .zip(wgpu.iter().zip(&flex))
    {
        assert_close(name, w, f);
    }
}

/// wgpu (see [`wgpu_device`]) and Flex.
fn devices() -> [Device; 2] {
    [wgpu_device(), Device::flex().autodiff()]
}

/// A layer's weight replaced by fixed values and its spectral norm's vectors set to fixed ones.
fn fixed<const D: usize>(weight: &Param<Tensor<D>>, device: &Device) -> Param<Tensor<D>> {
    let shape = weight.val().shape();
    let data = TensorData::new(values(shape.num_elements(), 1), shape);
    Param::initialized(weight.id, Tensor::from_data(data, device).require_grad())
}

#[test]
fn a_linear_training_use_on_wgpu_matches_flex() {
    compare(devices(), |device| {
        let mut fc = LinearConfig::new(48, 32).init(device);
        fc.weight = fixed(&fc.weight, device);
        let config = SpectralNormConfig::new().with_n_power_iterations(3);
        let fc = spectral_norm(&fc, &config).unwrap();
        let state = fc.weight.reparameterization::<SpectralNorm>().unwrap();
        let vector =
            |n, seed| Tensor::<1>::from_data(TensorData::new(values(n, seed), [n]), device);
        state.set_vectors(vector(32, 2), vector(48, 3)).unwrap();
        one_use(&fc.weight)
    });
}

#[test]
fn a_conv_training_use_on_wgpu_matches_flex() {
    compare(devices(), |device| {
        let mut conv = Conv2dConfig::new([4, 6], [3, 3]).init(device);
        conv.weight = fixed(&conv.weight, device);
        let conv = spectral_norm(&conv, &SpectralNormConfig::new()).unwrap();
        let state = conv.weight.reparameterization::<SpectralNorm>().unwrap();
        let vector =
            |n, seed| Tensor::<1>::from_data(TensorData::new(values(n, seed), [n]), device);
        state.set_vectors(vector(6, 2), vector(36, 3)).unwrap();
        one_use(&conv.weight)
    });
}

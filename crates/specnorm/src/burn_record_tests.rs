//! `inspect` and `bake` on a Burn record (`.bpk`) saved by a real spectrally normalized module,
//! judged against nalgebra's SVD and the library's own `inspect` and `remove_spectral_norm`.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use nalgebra::DMatrix;
use spectral_norm::{SpectralNormConfig, inspect, remove_spectral_norm, spectral_norm};

use crate::bake::{BakeArgs, run};
use crate::inspect::rows;
use crate::test_fixtures::{device_rng_turn, scratch};
use specnorm::sigma::{Method, SVD_TOLERANCE};
use specnorm::tensors;

#[derive(Module, Debug)]
struct Net {
    fc: Linear,
    square: Linear,
    conv: Conv2d,
    head: Linear,
}

impl Net {
    fn new(device: &Device) -> Self {
        Self {
            fc: LinearConfig::new(5, 4).init(device),
            square: LinearConfig::new(4, 4).init(device),
            conv: Conv2dConfig::new([2, 3], [3, 3]).init(device),
            head: LinearConfig::new(4, 2).init(device),
        }
    }

    fn forward(&self, x: Tensor<2>, image: Tensor<4>) -> (Tensor<2>, Tensor<4>) {
        (
            self.head.forward(self.square.forward(self.fc.forward(x))),
            self.conv.forward(image),
        )
    }
}

fn inputs(device: &Device) -> (Tensor<2>, Tensor<4>) {
    let x = Tensor::<1, Int>::arange(0..15, device)
        .float()
        .reshape([3, 5])
        / 7.0;
    let image = Tensor::<1, Int>::arange(0..50, device)
        .float()
        .reshape([1, 2, 5, 5])
        .cos();
    (x, image)
}

/// Spectral norm on fc, square and conv (not head), advanced by three training forwards.
fn normalized_net(device: &Device) -> Net {
    let _turn = device_rng_turn();
    let mut net = Net::new(device);
    for name in ["fc.weight", "square.weight", "conv.weight"] {
        let config = SpectralNormConfig::new().with_name(name.into());
        net = spectral_norm(&net, &config).unwrap();
    }
    for _ in 0..3 {
        let (x, image) = inputs(device);
        let _ = net.forward(x, image);
    }
    net
}

/// σ of `weight`'s matrix view `[rows, rest]` by nalgebra's SVD.
fn svd_sigma<const D: usize>(weight: Tensor<D>, rows: usize) -> f64 {
    let values = weight.without_autodiff().try_into_vec_as::<f64>().unwrap();
    let cols = values.len() / rows;
    DMatrix::from_row_slice(rows, cols, &values)
        .singular_values()
        .max()
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor.without_autodiff().try_into_vec_as::<f64>().unwrap()
}

#[test]
fn inspect_reads_a_burn_record_and_matches_svd_and_the_library() {
    let device = Device::flex().autodiff();
    let net = normalized_net(&device);
    let dir = scratch("bpk-inspect");
    let file = dir.join("net.bpk");
    net.clone().save_file(&file).unwrap();

    let rows = rows(&file).unwrap();
    let row = |key: &str| rows.iter().find(|r| r.key == key).unwrap();
    // Linear weights are [in, out]: the SVD of the transposed view has the same σ.
    let cases: [(&str, &Param<Tensor<2>>, usize); 2] = [
        ("fc.weight", &net.fc.weight, 1),
        ("square.weight", &net.square.weight, 1),
    ];
    for (key, param, dim) in cases {
        let got = row(key);
        let reference = svd_sigma(param.base(), param.base().dims()[0]);
        assert!(got.normalized && got.dim == dim, "{key}: {got:?}");
        assert_eq!(got.sigma.method, Method::Svd);
        assert!(
            (got.sigma.value - reference).abs() <= SVD_TOLERANCE * reference,
            "{key}"
        );
        let library = inspect(param).unwrap().sigma;
        let sigma_uv = got.sigma_uv.unwrap();
        assert!(
            (sigma_uv - library).abs() < 1e-5 * library,
            "{key}: {sigma_uv} vs {library}"
        );
    }
    let conv = row("conv.weight");
    let reference = svd_sigma(net.conv.weight.base(), 3);
    assert!(conv.normalized && conv.dim == 0);
    assert!((conv.sigma.value - reference).abs() <= SVD_TOLERANCE * reference);
    let library = inspect(&net.conv.weight).unwrap().sigma;
    assert!((conv.sigma_uv.unwrap() - library).abs() < 1e-5 * library);
    let head = row("head.weight");
    assert!(!head.normalized && head.sigma_uv.is_none());
    assert!(rows.iter().all(|r| !r.key.contains("spectral_norm")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_baked_burn_record_loads_into_the_plain_model_as_remove_spectral_norm_gives_it() {
    let device = Device::flex().autodiff();
    let net = normalized_net(&device);
    let dir = scratch("bpk-bake");
    let (input, output) = (dir.join("net.bpk"), dir.join("net_eval.bpk"));
    net.clone().save_file(&input).unwrap();
    let args = BakeArgs {
        input,
        output: output.clone(),
        network: None,
    };
    assert_eq!(run(&args).unwrap(), 3);

    // Every key of the baked record is a parameter of the plain model, and vice versa.
    let plain = {
        let _turn = device_rng_turn();
        Net::new(&Device::flex())
    };
    let plain = plain.try_load_file(&output).unwrap();
    let removed = remove_spectral_norm(net).valid();
    for (baked, want) in [
        (plain.fc.weight.val(), removed.fc.weight.val()),
        (plain.square.weight.val(), removed.square.weight.val()),
        (plain.head.weight.val(), removed.head.weight.val()),
    ] {
        for (g, w) in values(baked).iter().zip(values(want)) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
        }
    }
    let (x, image) = inputs(&Device::flex());
    let (got, got_image) = plain.forward(x.clone(), image.clone());
    let (want, want_image) = removed.forward(x, image);
    got.into_data()
        .assert_approx_eq::<f32>(&want.into_data(), Default::default());
    got_image
        .into_data()
        .assert_approx_eq::<f32>(&want_image.into_data(), Default::default());
    let baked = tensors::read(&output).unwrap();
    assert_eq!(baked.len(), 8, "4 weights and 4 biases, no u or v");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A learned scale γ in a Burn record: `inspect`'s σ used and `bake` include it, the baked
/// record has no γ left, and it loads into the plain model as `remove_spectral_norm` gives it.
#[test]
fn a_learned_scale_is_inspected_and_baked() {
    use burn::optim::{AdamConfig, GradientsParams};
    let device = Device::flex().autodiff();
    let layer = {
        let _turn = device_rng_turn();
        LinearConfig::new(5, 4).init(&device)
    };
    let config = SpectralNormConfig::new().with_learned_scale(true);
    let layer = spectral_norm(&layer, &config).unwrap();
    let (x, _) = inputs(&device);
    let grads = layer.forward(x).sum().backward();
    let grads = GradientsParams::from_grads(grads, &layer);
    let layer = AdamConfig::new().init().step(0.1, layer, grads);
    let gamma = layer
        .weight
        .reparameterization::<spectral_norm::SpectralNorm>()
        .unwrap()
        .gamma()
        .unwrap();
    assert!((gamma - 1.0).abs() > 0.05, "γ moved: {gamma}");

    let dir = scratch("bpk-gamma");
    let (input, output) = (dir.join("fc.bpk"), dir.join("fc_eval.bpk"));
    layer.clone().save_file(&input).unwrap();
    let row = rows(&input)
        .unwrap()
        .into_iter()
        .find(|r| r.normalized)
        .unwrap();
    let expected_sigma_used = row.sigma.value / row.sigma_uv.unwrap().abs() * gamma.abs();
    assert!((row.sigma_used - expected_sigma_used).abs() < 1e-12 * expected_sigma_used);
    assert_eq!(row.gamma, Some(gamma));
    assert!(
        rows(&dir.join("fc.bpk"))
            .unwrap()
            .iter()
            .all(|r| r.key != "weight.spectral_norm.gamma")
    );
    let args = BakeArgs {
        input,
        output: output.clone(),
        network: None,
    };
    assert_eq!(run(&args).unwrap(), 1);
    let baked = tensors::read(&output).unwrap();
    assert!(
        baked.keys().all(|k| !k.contains("spectral_norm")),
        "{:?}",
        baked.keys()
    );
    let removed = remove_spectral_norm(layer).valid();
    let want = values(removed.weight.val());
    for (g, w) in baked["weight"].values.iter().zip(want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} vs {w}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Every record of the vendored `errors.json` (what Paddle 3.3.1 refuses or does with misuse
//! and non-finite input) has a Rust counterpart here: a typed refusal that leaves the module
//! unchanged, the same non-finite outcome, or a note on why the input cannot be written in Rust.

mod common;

use std::path::PathBuf;

use burn::module::{Module, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use serde_json::Value;
use spectral_norm::{
    SpectralNormConfig, SpectralNormError, SpectralNormOpConfig, inspect, set_power_iteration,
    spectral_norm,
};

fn records() -> Vec<Value> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/paddle/errors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).unwrap();
    json["errors"].as_array().unwrap().clone()
}

fn linear(device: &Device) -> Linear {
    LinearConfig::new(3, 4).init(device)
}

/// Wraps `layer`, expecting a refusal; checks that the caller's layer is untouched.
fn refused<M: Module>(layer: &M, config: SpectralNormConfig) -> SpectralNormError {
    let before = layer.clone().into_record().len();
    let error = spectral_norm(layer, &config).expect_err("must be refused");
    assert_eq!(
        layer.clone().into_record().len(),
        before,
        "module unchanged"
    );
    assert!(!error.to_string().is_empty());
    error
}

fn sn() -> SpectralNormConfig {
    SpectralNormConfig::new()
}

/// Paddle's non-finite outcomes, replayed: same u, v, weight, gradient (G = ones), NaN output.
fn non_finite(record: &Value) {
    let device = device();
    let result = &record["result"];
    let read = |key: &str| -> Vec<f64> {
        result[key]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| match x {
                Value::String(s) if s == "NaN" => f64::NAN,
                Value::String(s) if s == "Infinity" => f64::INFINITY,
                Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                number => number.as_f64().unwrap(),
            })
            .collect()
    };
    let f32_tensor = |values: Vec<f64>, shape: Vec<usize>| -> Tensor<1> {
        let data = TensorData::new(values.iter().map(|&x| x as f32).collect(), shape);
        Tensor::from_data(data, (&device, DType::F32))
    };
    let eps = 1e-12;
    let weight = f32_tensor(read("weight_orig"), vec![12]).reshape([3, 4]);
    let layer = Linear {
        weight: Param::from_tensor(weight),
        ..linear(&device)
    };
    let layer = spectral_norm(&layer, &sn().with_eps(eps)).unwrap();
    let state = layer
        .weight
        .reparameterization::<spectral_norm::SpectralNorm>()
        .unwrap();
    state
        .set_vectors(
            f32_tensor(read("u0"), vec![4]),
            f32_tensor(read("v0"), vec![3]),
        )
        .unwrap();

    // One training forward, as Paddle ran; then the same weight again without iterating
    // (bitwise the one that forward used) for the gradient of sum(weight * ones).
    let out = layer.forward(Tensor::<2>::ones([2, 3], &device));
    let layer = set_power_iteration(layer, false);
    let normalized = layer.weight.val();
    let grads = normalized.clone().sum().backward();
    let snapshot = inspect(&layer.weight).unwrap();
    let same = |got: Vec<f64>, key: &str| {
        let want = read(key);
        for (g, w) in got.iter().zip(&want) {
            let equal = (g.is_nan() && w.is_nan()) || (g == w) || (g - w).abs() <= 1e-5 * w.abs();
            assert!(equal, "{}: {key} {got:?} vs {want:?}", record["id"]);
        }
    };
    same(values(snapshot.u), "u");
    same(values(snapshot.v), "v");
    same(values(normalized), "weight");
    same(
        values(layer.weight.base().grad(&grads).unwrap()),
        "grad_weight_orig_for_G_ones",
    );
    assert!(values(out).iter().all(|x| x.is_nan()));
}

/// The Rust counterpart of one record.
fn check(record: &Value) {
    let device = device();
    let id = record["id"].as_str().unwrap();
    use SpectralNormError as E;
    match id {
        "npi_zero" => {
            assert_eq!(
                refused(&linear(&device), sn().with_n_power_iterations(0)),
                E::ZeroPowerIterations
            );
        }
        "twice_same_param" | "twice_same_param_npi0" => {
            let wrapped = spectral_norm(&linear(&device), &sn()).unwrap();
            let npi = if id == "twice_same_param" { 1 } else { 0 };
            let error = refused(&wrapped, sn().with_n_power_iterations(npi));
            assert_eq!(
                error,
                E::AlreadyApplied {
                    name: "weight".into()
                },
                "checked before anything else"
            );
        }
        // Paddle renames the weight to `weight_orig`; Burn keeps `weight`, so there is no
        // parameter to stack a second normalization on.
        "wrap_weight_orig_again" => {
            let wrapped = spectral_norm(&linear(&device), &sn()).unwrap();
            let error = refused(&wrapped, sn().with_name("weight_orig".into()));
            assert!(matches!(error, E::ParameterNotFound { .. }), "{error}");
        }
        "name_not_parameter" => {
            let error = refused(&linear(&device), sn().with_name("foo".into()));
            assert_eq!(
                error,
                E::ParameterNotFound {
                    name: "foo".into(),
                    available: "weight, bias".into()
                }
            );
        }
        "layer_without_weight" => {
            assert!(matches!(
                refused(&Relu::new(), sn()),
                E::ParameterNotFound { .. }
            ));
        }
        "bias_default_dim" => {
            let error = refused(&linear(&device), sn().with_name("bias".into()));
            assert_eq!(
                error,
                E::DimOutOfRange {
                    name: "bias".into(),
                    dim: 1,
                    shape: vec![4]
                }
            );
        }
        "dim_out_of_range_2_Linear" | "dim_out_of_range_5_Linear" => {
            let dim = if id.contains("_2_") { 2 } else { 5 };
            let error = refused(&linear(&device), sn().with_dim(Some(dim)));
            assert_eq!(
                error,
                E::DimOutOfRange {
                    name: "weight".into(),
                    dim,
                    shape: vec![3, 4]
                }
            );
        }
        "dim_out_of_range_4_Conv2D" => {
            let conv = Conv2dConfig::new([2, 3], [3, 3]).init(&device);
            assert!(matches!(
                refused(&conv, sn().with_dim(Some(4))),
                E::DimOutOfRange { dim: 4, .. }
            ));
        }
        "dim_false" => {
            let layer = spectral_norm(&linear(&device), &sn().with_dim(Some(0))).unwrap();
            let state = inspect(&layer.weight).unwrap();
            assert_eq!((state.u.dims(), state.v.dims()), ([3], [4]));
        }
        "npi_bool_true" => {
            assert!(spectral_norm(&linear(&device), &sn()).is_ok());
        }
        // Paddle accepts eps ≤ 0 (a zero vector then becomes NaN, or the bound flips sign);
        // here it is refused, on purpose.
        "eps_negative" | "zero_weight_eps0" => {
            let eps = if id == "eps_negative" { -1.0 } else { 0.0 };
            assert_eq!(
                refused(&linear(&device), sn().with_eps(eps)),
                SpectralNormError::InvalidEps { eps }
            );
        }
        "nan_in_weight" | "inf_in_weight" | "neg_inf_in_weight" => non_finite(record),
        // n_power_iterations and dim are usize, the op takes float tensors only: negative,
        // fractional and non-tensor arguments do not type-check.
        "npi_negative" | "npi_float" | "dim_float" | "op_dim_neg1" | "op_power_iters_neg"
        | "op_int_input" | "op_numpy_input" => {}
        "dim_negative_-1_Linear"
        | "dim_negative_-2_Linear"
        | "dim_negative_-1_Conv2D"
        | "dim_negative_-4_Conv2D" => {}
        // u and v are created in the weight's own dtype (tests/lifecycle.rs), so the dtype
        // mismatches Paddle hits at the first forward cannot arise; Burn's Embedding has no
        // sparse gradient; Burn has no stale `layer.weight` copy to differentiate.
        "f64_layer_f32_default_dtype"
        | "float16_layer"
        | "embedding_sparse"
        | "grad_before_first_forward" => {}
        "op_dim_2" | "op_dim_2_rank3" | "op_rank1" | "op_rank6" | "op_zero_dim" => {
            let shape = match id {
                "op_dim_2" => vec![3, 4],
                "op_dim_2_rank3" => vec![2, 3, 4],
                "op_rank1" => vec![5],
                "op_rank6" => vec![2; 6],
                _ => vec![0, 3],
            };
            let dim = if id.starts_with("op_dim_2") { 2 } else { 0 };
            let error = SpectralNormOpConfig::new(shape)
                .with_dim(dim)
                .init(&device)
                .unwrap_err();
            assert!(matches!(error, E::InvalidOp(_)), "{error}");
        }
        "op_shape_mismatch" | "op_f64_input_f32_params" => {
            let op = SpectralNormOpConfig::new(vec![3, 4]).init(&device).unwrap();
            let input = if id == "op_shape_mismatch" {
                Tensor::<2>::ones([4, 3], &device)
            } else {
                Tensor::<2>::ones([3, 4], (&device, DType::F64))
            };
            assert!(matches!(op.forward(input), Err(E::InvalidOp(_))));
        }
        "op_layer_state" => {
            let op = SpectralNormOpConfig::new(vec![3, 4]).init(&device).unwrap();
            assert_eq!((op.weight_u().dims(), op.weight_v().dims()), ([3], [4]));
            let norm_u = norm(&values(op.weight_u()));
            assert!(
                norm_u > 0.0 && (norm_u - 1.0).abs() > 1e-6,
                "N(0,1) draws, not normalized"
            );
        }
        other => panic!("errors.json record {other} has no Rust counterpart: add one"),
    }
}

#[test]
fn every_paddle_refusal_and_non_finite_outcome_has_a_counterpart() {
    let records = records();
    assert!(records.len() > 30);
    for record in &records {
        check(record);
    }
}

#[test]
fn rust_only_refusals() {
    let device = device();
    for eps in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1e-12, 0.0] {
        let error = refused(&linear(&device), sn().with_eps(eps));
        assert!(
            matches!(error, SpectralNormError::InvalidEps { eps: got } if got.to_bits() == eps.to_bits()),
            "{eps}: {error}"
        );
    }
    assert!(spectral_norm(&linear(&device), &sn().with_eps(10.0)).is_ok());

    #[derive(Module, Debug)]
    struct Block {
        scale: Param<Tensor<2>>,
    }
    let block = Block {
        scale: Param::from_tensor(Tensor::ones([2, 3], &device)),
    };
    let error = refused(&block, sn().with_name("scale".into()));
    assert_eq!(
        error,
        SpectralNormError::DimRequired {
            name: "scale".into(),
            owner: "Struct:Block".into()
        }
    );
    assert!(spectral_norm(&block, &sn().with_name("scale".into()).with_dim(Some(1))).is_ok());

    let empty = Block {
        scale: Param::from_tensor(Tensor::zeros([0, 3], &device)),
    };
    let error = refused(&empty, sn().with_name("scale".into()).with_dim(Some(1)));
    assert!(
        matches!(error, SpectralNormError::EmptyParameter { .. }),
        "{error}"
    );

    let wrapped = spectral_norm(&linear(&device), &sn()).unwrap();
    let error = refused(
        &wrapped,
        sn().with_name("weight.spectral_norm.u".into())
            .with_dim(Some(0)),
    );
    assert!(
        matches!(error, SpectralNormError::NotAParameter { .. }),
        "{error}"
    );

    let lora = linear(&device).apply_lora(burn::module::Lora::new(2, 4.0));
    let error = refused(&lora, sn());
    assert!(
        matches!(error, SpectralNormError::OtherReparameterization { .. }),
        "{error}"
    );
}

#[test]
fn nested_paths_and_messages_name_the_problem() {
    #[derive(Module, Debug)]
    struct Discriminator {
        fc: Linear,
        head: Linear,
    }
    let device = device();
    let disc = Discriminator {
        fc: linear(&device),
        head: LinearConfig::new(4, 1).init(&device),
    };
    let disc = spectral_norm(&disc, &sn().with_name("fc.weight".into())).unwrap();
    let disc = spectral_norm(&disc, &sn().with_name("head.weight".into())).unwrap();
    assert_eq!(inspect(&disc.head.weight).unwrap().u.dims(), [1]);
    let message = spectral_norm(&disc, &sn().with_name("fc.wieght".into()))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("fc.wieght") && message.contains("fc.weight"),
        "{message}"
    );
}

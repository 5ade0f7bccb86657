//! Replays `cases.json`-style cases of `paddle.nn.utils.spectral_norm` through the library.

use anyhow::{Context, Result, bail};
use burn::module::{Module, Param};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use serde_json::{Map, Value, json};
use spectral_norm::{
    SpectralNorm, SpectralNormConfig, inspect, set_power_iteration, spectral_norm,
};

use crate::layers::{self, Forward, substitute};
use crate::tensor_json::{encode, encode_scalar, read_float};

/// A Burn layer with Paddle's parameter names.
pub trait Layer<const D: usize>: Module + Forward {
    /// The `weight` parameter.
    fn weight(&mut self) -> &mut Param<Tensor<D>>;
    /// The `bias` parameter, if the layer has one.
    fn bias(&mut self) -> Option<&mut Param<Tensor<1>>>;
}

macro_rules! layer {
    ($layer:ty, $rank:literal) => {
        impl Layer<$rank> for $layer {
            fn weight(&mut self) -> &mut Param<Tensor<$rank>> {
                &mut self.weight
            }
            fn bias(&mut self) -> Option<&mut Param<Tensor<1>>> {
                self.bias.as_mut()
            }
        }
    };
}

layer!(burn::nn::Linear, 2);
layer!(burn::nn::conv::Conv1d, 3);
layer!(burn::nn::conv::Conv2d, 4);
layer!(burn::nn::conv::Conv3d, 5);
layer!(burn::nn::conv::ConvTranspose1d, 3);
layer!(burn::nn::conv::ConvTranspose2d, 4);
layer!(burn::nn::conv::ConvTranspose3d, 5);

impl Layer<2> for burn::nn::Embedding {
    fn weight(&mut self) -> &mut Param<Tensor<2>> {
        &mut self.weight
    }
    fn bias(&mut self) -> Option<&mut Param<Tensor<1>>> {
        None
    }
}

/// Replays one case; the result is the case's entry in the results file.
pub fn replay_case(case: &Value, device: &Device) -> Result<Value> {
    let args = &case["layer"]["args"];
    let kind = case["layer"]["type"].as_str().context("layer.type")?;
    match kind {
        "Linear" => with_layer(layers::linear(args, device)?, case, device),
        "Conv1D" => with_layer(layers::conv1d(args, device)?, case, device),
        "Conv2D" => with_layer(layers::conv2d(args, device)?, case, device),
        "Conv3D" => with_layer(layers::conv3d(args, device)?, case, device),
        "Conv1DTranspose" => with_layer(layers::conv_transpose1d(args, device)?, case, device),
        "Conv2DTranspose" => with_layer(layers::conv_transpose2d(args, device)?, case, device),
        "Conv3DTranspose" => with_layer(layers::conv_transpose3d(args, device)?, case, device),
        "Embedding" => with_layer(layers::embedding(args, device)?, case, device),
        other => bail!("unknown layer type {other:?}"),
    }
}

/// Sets the case's parameter values, then replays it on `weight` or `bias`.
fn with_layer<L: Layer<D>, const D: usize>(
    mut layer: L,
    case: &Value,
    device: &Device,
) -> Result<Value> {
    let name = case["name"].as_str().unwrap_or("weight");
    let mut values = case["other_params"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    values.insert(name.to_string(), case["weight"].clone());
    for (param, value) in &values {
        match param.as_str() {
            "weight" => *layer.weight() = Param::from_tensor(read_float(value, device)?),
            "bias" => {
                let bias = layer.bias().context("layer has no bias")?;
                *bias = Param::from_tensor(read_float(value, device)?);
            }
            other => bail!("unknown parameter {other:?}"),
        }
    }
    match name {
        "weight" => replay_steps(layer, |l: &mut L| l.weight(), case, device),
        "bias" if layer.bias().is_some() => replay_steps(
            layer,
            |l: &mut L| l.bias().expect("checked above"),
            case,
            device,
        ),
        other => bail!("cannot normalize parameter {other:?} of this layer"),
    }
}

/// Wraps the parameter reached by `access`, writes `u0`, `v0`, and runs every step.
fn replay_steps<L: Module + Forward, const P: usize>(
    layer: L,
    access: impl Fn(&mut L) -> &mut Param<Tensor<P>>,
    case: &Value,
    device: &Device,
) -> Result<Value> {
    let config = SpectralNormConfig {
        name: case["name"].as_str().unwrap_or("weight").to_string(),
        n_power_iterations: case["n_power_iterations"]
            .as_u64()
            .context("n_power_iterations")? as usize,
        eps: case["eps"].as_f64().context("eps")?,
        dim: case["dim_arg"].as_u64().map(|d| d as usize),
        warmup_iterations: 0,
        target_bound: 1.0,
        clamp: false,
        learned_scale: false,
        convergence_tolerance: None,
        max_power_iterations: 100,
    };
    let mut layer = spectral_norm(&layer, &config)?;
    {
        let state = access(&mut layer)
            .reparameterization::<SpectralNorm>()
            .context("state")?;
        state
            .set_vectors(
                read_float(&case["u0"], device)?,
                read_float(&case["v0"], device)?,
            )
            .context("u0, v0")?;
    }
    let mut sgd = SgdConfig::new().init();
    let mut steps = Vec::new();
    for step in case["steps"].as_array().context("steps")? {
        let training = step["mode"].as_str() == Some("train");
        layer = set_power_iteration(layer, training);
        let expected = &step["expected"];
        let mut result = Map::new();
        if expected.get("weight_orig").is_some() {
            result.insert(
                "weight_orig".into(),
                encode(access(&mut layer).base().without_autodiff()),
            );
        }
        // One use of the weight: the layer output and the loss both see this value.
        let mut normalized = access(&mut layer).val();
        if step["no_grad"].as_bool() == Some(true) {
            normalized = normalized.detach();
        }
        if !step["x"].is_null() {
            let mut substituted = layer.clone();
            *access(&mut substituted) = substitute(normalized.clone());
            result.insert("out".into(), substituted.forward_json(&step["x"], device)?);
        }
        let snapshot = inspect(access(&mut layer)).context("state")?;
        result.insert("u".into(), encode(snapshot.u));
        result.insert("v".into(), encode(snapshot.v));
        result.insert("sigma".into(), encode_scalar(snapshot.sigma));
        result.insert(
            "weight".into(),
            encode(normalized.clone().without_autodiff()),
        );
        if !step["G"].is_null() {
            let upstream = read_float::<P>(&step["G"], device)?;
            let grads = (normalized * upstream).sum().backward();
            let grad = access(&mut layer)
                .base()
                .grad(&grads)
                .context("no gradient reached the weight")?;
            result.insert("grad_weight_orig".into(), encode(grad));
            if let Some(lr) = step["sgd_lr"].as_f64() {
                let grads = GradientsParams::from_grads(grads, &layer);
                layer = sgd.step(lr, layer, grads);
            }
        }
        steps.push(Value::Object(result));
    }
    Ok(json!({"id": case["id"], "steps": steps}))
}

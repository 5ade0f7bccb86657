//! Replays `op_cases.json`-style cases of `paddle.nn.SpectralNorm` through the library.

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use serde_json::{Value, json};
use spectral_norm::{SpectralNormOp, SpectralNormOpConfig};

use crate::tensor_json::{encode, float_dtype, read_float};

/// Replays one case; the result is the case's entry in the results file.
pub fn replay_case(case: &Value, device: &Device) -> Result<Value> {
    let args = &case["layer"]["args"];
    let shape: Vec<usize> = args["weight_shape"]
        .as_array()
        .context("weight_shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).context("weight_shape entry"))
        .collect::<Result<_>>()?;
    let dtype = float_dtype(case["dtype"].as_str().context("dtype")?)?;
    let op = SpectralNormOpConfig::new(shape.clone())
        .with_dim(args["dim"].as_u64().context("dim")? as usize)
        .with_power_iters(args["power_iters"].as_u64().context("power_iters")? as usize)
        .with_eps(args["eps"].as_f64().context("eps")?)
        .init_with_dtype(device, dtype)?;
    op.set_vectors(
        read_float(&case["u0"], device)?,
        read_float(&case["v0"], device)?,
    )
    .context("u0, v0")?;
    let steps = case["steps"].as_array().context("steps")?;
    let steps = steps
        .iter()
        .map(|step| match shape.len() {
            2 => call::<2>(&op, step, device),
            3 => call::<3>(&op, step, device),
            4 => call::<4>(&op, step, device),
            5 => call::<5>(&op, step, device),
            rank => bail!("rank {rank} is outside 2..=5"),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({"id": case["id"], "steps": steps}))
}

/// One call of the op on `x`, with the gradient of `sum(out * G)`.
fn call<const D: usize>(op: &SpectralNormOp, step: &Value, device: &Device) -> Result<Value> {
    let x = read_float::<D>(&step["x"], device)?.require_grad();
    let out = op.forward(x.clone())?;
    let upstream = read_float::<D>(&step["G"], device)?;
    let grads = (out.clone() * upstream).sum().backward();
    let grad_x = x.grad(&grads).context("no gradient reached x")?;
    Ok(json!({
        "out": encode(out.without_autodiff()),
        "grad_x": encode(grad_x),
        "u": encode(op.weight_u()),
        "v": encode(op.weight_v()),
    }))
}

//! Paddle layers built as their Burn counterparts, from a case's `layer.args`.
//!
//! Each layer is paired with a way to run its own `forward` on a substituted parameter, so a
//! step can use the normalized weight of *one* use of the parameter for both the layer output
//! and the loss (a second `val()` would advance the power iteration again).

use anyhow::{Context, Result, bail};
use burn::module::{Param, ParamId};
use burn::nn::conv::{
    Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Conv3d, Conv3dConfig, ConvTranspose1d,
    ConvTranspose1dConfig, ConvTranspose2d, ConvTranspose2dConfig, ConvTranspose3d,
    ConvTranspose3dConfig,
};
use burn::nn::{
    Embedding, EmbeddingConfig, Linear, LinearConfig, PaddingConfig1d, PaddingConfig2d,
    PaddingConfig3d,
};
use burn::prelude::*;
use serde_json::Value;

use crate::tensor_json::{encode, read_float, read_int};

/// Reads an argument that Paddle accepts as an int or a list of `N` ints.
pub fn arg<const N: usize>(args: &Value, key: &str, default: usize) -> Result<[usize; N]> {
    match &args[key] {
        Value::Null => Ok([default; N]),
        Value::Number(n) => Ok([n.as_u64().context(key.to_string())? as usize; N]),
        Value::Array(items) if items.len() == N => {
            let mut out = [0; N];
            for (slot, item) in out.iter_mut().zip(items) {
                *slot = item.as_u64().context(key.to_string())? as usize;
            }
            Ok(out)
        }
        other => bail!("argument {key}: cannot read {other} as {N} integers"),
    }
}

fn one(args: &Value, key: &str) -> Result<usize> {
    Ok(arg::<1>(args, key, 0)?[0])
}

/// A fresh, untracked-id parameter holding a computed tensor (keeps the gradient path).
pub fn substitute<const D: usize>(value: Tensor<D>) -> Param<Tensor<D>> {
    Param::initialized(ParamId::new(), value)
}

/// Runs a layer's forward on input `x` (JSON) and encodes the result.
pub trait Forward {
    /// `self.forward(x)`.
    fn forward_json(&self, x: &Value, device: &Device) -> Result<Value>;
}

macro_rules! float_forward {
    ($layer:ty, $rank:literal) => {
        impl Forward for $layer {
            fn forward_json(&self, x: &Value, device: &Device) -> Result<Value> {
                Ok(encode(self.forward(read_float::<$rank>(x, device)?)))
            }
        }
    };
}

float_forward!(Linear, 2);
float_forward!(Conv1d, 3);
float_forward!(Conv2d, 4);
float_forward!(Conv3d, 5);
float_forward!(ConvTranspose1d, 3);
float_forward!(ConvTranspose2d, 4);
float_forward!(ConvTranspose3d, 5);

impl Forward for Embedding {
    fn forward_json(&self, x: &Value, device: &Device) -> Result<Value> {
        Ok(encode(self.forward(read_int::<2>(x, device)?)))
    }
}

pub fn linear(args: &Value, device: &Device) -> Result<Linear> {
    Ok(LinearConfig::new(one(args, "in_features")?, one(args, "out_features")?).init(device))
}

pub fn embedding(args: &Value, device: &Device) -> Result<Embedding> {
    Ok(
        EmbeddingConfig::new(one(args, "num_embeddings")?, one(args, "embedding_dim")?)
            .init(device),
    )
}

fn channels(args: &Value) -> Result<[usize; 2]> {
    Ok([one(args, "in_channels")?, one(args, "out_channels")?])
}

pub fn conv1d(args: &Value, device: &Device) -> Result<Conv1d> {
    let [c_in, c_out] = channels(args)?;
    let pad = one(args, "padding")?;
    Ok(Conv1dConfig::new(c_in, c_out, one(args, "kernel_size")?)
        .with_stride(arg::<1>(args, "stride", 1)?[0])
        .with_dilation(arg::<1>(args, "dilation", 1)?[0])
        .with_groups(arg::<1>(args, "groups", 1)?[0])
        .with_padding(PaddingConfig1d::Explicit(pad, pad))
        .init(device))
}

pub fn conv2d(args: &Value, device: &Device) -> Result<Conv2d> {
    let [ph, pw] = arg::<2>(args, "padding", 0)?;
    Ok(
        Conv2dConfig::new(channels(args)?, arg(args, "kernel_size", 1)?)
            .with_stride(arg(args, "stride", 1)?)
            .with_dilation(arg(args, "dilation", 1)?)
            .with_groups(arg::<1>(args, "groups", 1)?[0])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .init(device),
    )
}

pub fn conv3d(args: &Value, device: &Device) -> Result<Conv3d> {
    let [pd, ph, pw] = arg::<3>(args, "padding", 0)?;
    Ok(
        Conv3dConfig::new(channels(args)?, arg(args, "kernel_size", 1)?)
            .with_stride(arg(args, "stride", 1)?)
            .with_dilation(arg(args, "dilation", 1)?)
            .with_groups(arg::<1>(args, "groups", 1)?[0])
            .with_padding(PaddingConfig3d::Explicit(pd, ph, pw))
            .init(device),
    )
}

pub fn conv_transpose1d(args: &Value, device: &Device) -> Result<ConvTranspose1d> {
    Ok(
        ConvTranspose1dConfig::new(channels(args)?, one(args, "kernel_size")?)
            .with_stride(arg::<1>(args, "stride", 1)?[0])
            .with_dilation(arg::<1>(args, "dilation", 1)?[0])
            .with_groups(arg::<1>(args, "groups", 1)?[0])
            .with_padding(arg::<1>(args, "padding", 0)?[0])
            .with_padding_out(arg::<1>(args, "output_padding", 0)?[0])
            .init(device),
    )
}

pub fn conv_transpose2d(args: &Value, device: &Device) -> Result<ConvTranspose2d> {
    Ok(
        ConvTranspose2dConfig::new(channels(args)?, arg(args, "kernel_size", 1)?)
            .with_stride(arg(args, "stride", 1)?)
            .with_dilation(arg(args, "dilation", 1)?)
            .with_groups(arg::<1>(args, "groups", 1)?[0])
            .with_padding(arg(args, "padding", 0)?)
            .with_padding_out(arg(args, "output_padding", 0)?)
            .init(device),
    )
}

pub fn conv_transpose3d(args: &Value, device: &Device) -> Result<ConvTranspose3d> {
    Ok(
        ConvTranspose3dConfig::new(channels(args)?, arg(args, "kernel_size", 1)?)
            .with_stride(arg(args, "stride", 1)?)
            .with_dilation(arg(args, "dilation", 1)?)
            .with_groups(arg::<1>(args, "groups", 1)?[0])
            .with_padding(arg(args, "padding", 0)?)
            .with_padding_out(arg(args, "output_padding", 0)?)
            .init(device),
    )
}

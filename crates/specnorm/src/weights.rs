//! The weights of a checkpoint as spectral normalization sees them: which are normalized
//! (under Burn's, Paddle's or PyTorch's names), their vectors, and their spectral norms.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use burn::prelude::*;
use burn::tensor::DType;
use spectral_norm::sigma_from_vectors;

use crate::sigma::{Sigma, largest_singular_value};
use crate::tensors::NamedTensor;

/// The keys of one spectrally normalized weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The key of the stored W.
    pub weight: String,
    /// The key of u.
    pub u: String,
    /// The key of v.
    pub v: String,
    /// The key the weight has without spectral norm (`fc.weight`).
    pub plain: String,
}

/// Finds every spectrally normalized weight, whichever framework named it.
pub fn normalized(tensors: &BTreeMap<String, NamedTensor>) -> Vec<Normalized> {
    let mut found = Vec::new();
    for key in tensors.keys() {
        let keys = if let Some(plain) = key.strip_suffix("_orig") {
            // Paddle and torch.nn.utils.spectral_norm
            Some((
                format!("{plain}_u"),
                format!("{plain}_v"),
                plain.to_string(),
            ))
        } else if let Some(stem) = key.strip_suffix(".original") {
            // torch.nn.utils.parametrizations.spectral_norm: M.parametrizations.N.original
            stem.rsplit_once(".parametrizations.")
                .map(|(module, name)| {
                    let plain = if module.is_empty() {
                        name.to_string()
                    } else {
                        format!("{module}.{name}")
                    };
                    (format!("{stem}.0._u"), format!("{stem}.0._v"), plain)
                })
        } else if tensors.contains_key(&format!("{key}.spectral_norm.u")) {
            // Burn
            Some((
                format!("{key}.spectral_norm.u"),
                format!("{key}.spectral_norm.v"),
                key.clone(),
            ))
        } else {
            None
        };
        if let Some((u, v, plain)) = keys
            && tensors.contains_key(&u)
            && tensors.contains_key(&v)
        {
            found.push(Normalized {
                weight: key.clone(),
                u,
                v,
                plain,
            });
        }
    }
    found
}

/// The axis whose size is `u`'s length while the rest multiply to `v`'s: the matrix view the
/// vectors belong to (the first such axis).
pub fn axis_of(weight: &NamedTensor, u_len: usize, v_len: usize) -> Option<usize> {
    let numel: usize = weight.shape.iter().product();
    (0..weight.shape.len())
        .find(|&d| weight.shape[d] == u_len && numel / weight.shape[d].max(1) == v_len)
}

fn to_burn<const D: usize>(tensor: &NamedTensor) -> Tensor<D> {
    let data = TensorData::new(tensor.values.clone(), tensor.shape.clone());
    Tensor::from_data(data, (&Device::flex(), DType::F64))
}

fn vector(tensor: &NamedTensor) -> Tensor<1> {
    let data = TensorData::new(tensor.values.clone(), [tensor.values.len()]);
    Tensor::from_data(data, (&Device::flex(), DType::F64))
}

/// Runs `$body` (a `Result<f64, SpectralNormError>`) on the tensor as a Burn tensor of its
/// rank, naming `$key` in any error.
macro_rules! by_rank {
    ($tensor:expr, $key:expr, |$t:ident| $body:expr) => {{
        let result = match $tensor.shape.len() {
            1 => {
                let $t = to_burn::<1>($tensor);
                $body
            }
            2 => {
                let $t = to_burn::<2>($tensor);
                $body
            }
            3 => {
                let $t = to_burn::<3>($tensor);
                $body
            }
            4 => {
                let $t = to_burn::<4>($tensor);
                $body
            }
            5 => {
                let $t = to_burn::<5>($tensor);
                $body
            }
            rank => bail!("{}: rank {rank} is not supported (1 to 5)", $key),
        };
        result.map_err(|e| anyhow!("{}: {e}", $key))
    }};
}

/// σ of the matrix view of `tensor` along `dim` (axis `dim` as rows, the others flattened in
/// order as columns), exact by SVD when small, else by converged power iteration.
pub fn spectral_norm_of(key: &str, tensor: &NamedTensor, dim: usize) -> Result<Sigma> {
    let shape = &tensor.shape;
    if dim >= shape.len() {
        bail!("{key}: dim {dim} is not an axis of shape {shape:?}");
    }
    let numel: usize = shape.iter().product();
    if numel != tensor.values.len() {
        bail!("{key}: {} values for shape {shape:?}", tensor.values.len());
    }
    let rows = shape[dim];
    let inner: usize = shape[dim + 1..].iter().product();
    let cols = numel.checked_div(rows).unwrap_or(0);
    // Entry (outer, i, n) of the tensor is entry (i, outer · inner + n) of the view.
    let mut matrix = vec![0.0; numel];
    for (flat, &x) in tensor.values.iter().enumerate() {
        let (outer, i, n) = (flat / (rows * inner), flat / inner % rows, flat % inner);
        matrix[i * cols + outer * inner + n] = x;
    }
    Ok(largest_singular_value(&matrix, rows, cols))
}

/// `u·(M v)` for the stored vectors, in f64.
pub fn sigma_of_vectors(
    key: &str,
    weight: &NamedTensor,
    u: &NamedTensor,
    v: &NamedTensor,
    dim: usize,
) -> Result<f64> {
    let (u, v) = (vector(u), vector(v));
    by_rank!(weight, key, |t| sigma_from_vectors(t, u, v, dim))
}

//! The weights of a checkpoint as spectral normalization sees them: which are normalized
//! (under Burn's, Paddle's or PyTorch's names), their vectors, and their spectral norms.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use burn::prelude::*;
use burn::tensor::DType;
use spectral_norm::checkpoint::Checkpoint;

use crate::sigma::{Sigma, largest_singular_value};
use crate::tensors::NamedTensor;
use spectral_norm::format::{FloatDtype, escaped};

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
    /// The key of a learned scale γ, when the file has one (Burn records).
    pub gamma: Option<String>,
}

/// Finds every spectrally normalized weight, whichever framework named it: a key that has
/// some framework's form for a W ([`Checkpoint::parameter`]) and whose u and v under the same
/// framework's names ([`Checkpoint::keys`]) are in the file too.
pub fn normalized(tensors: &BTreeMap<String, NamedTensor>) -> Vec<Normalized> {
    let mut found = Vec::new();
    for key in tensors.keys() {
        let named = Checkpoint::NAMINGS.iter().find_map(|kind| {
            let plain = kind.parameter(key)?;
            let keys = kind.keys(&plain);
            (tensors.contains_key(&keys.u) && tensors.contains_key(&keys.v))
                .then_some((keys, plain))
        });
        if let Some((keys, plain)) = named {
            let gamma = Checkpoint::NAMINGS
                .iter()
                .filter_map(|kind| kind.gamma_key(&plain))
                .find(|key| tensors.contains_key(key));
            found.push(Normalized {
                weight: keys.weight,
                u: keys.u,
                v: keys.v,
                plain,
                gamma,
            });
        }
    }
    found
}

/// The learned scale γ of `entry` (1 without one).
///
/// # Errors
///
/// One line naming `where_`, for a γ that is not a single value.
pub fn gamma_of(
    tensors: &BTreeMap<String, NamedTensor>,
    entry: &Normalized,
    where_: &str,
) -> Result<f64> {
    let Some(key) = &entry.gamma else {
        return Ok(1.0);
    };
    match tensors.get(key).map(|t| t.values.as_slice()) {
        Some([gamma]) => Ok(*gamma),
        Some(values) => bail!(
            "{where_}: γ ({}) has {} values, not 1",
            escaped(key),
            values.len()
        ),
        None => bail!("{where_}: γ ({}) missing", escaped(key)),
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Key of the stored weight.
    pub key: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its element type in the file (σ is computed in f64 whatever it is).
    pub dtype: FloatDtype,
    /// Whether it carries spectral norm (u, v stored beside it).
    pub normalized: bool,
    /// The axis of the matrix view.
    pub dim: usize,
    /// σ of the stored weight, and how it was computed.
    pub sigma: Sigma,
    /// σ implied by the stored u, v (`u·(W v)`), for normalized weights.
    pub sigma_uv: Option<f64>,
    /// σ of the weight the layer uses: `W / σ_uv` when normalized, else `W`.
    pub sigma_used: f64,
    /// The learned scale γ the layer multiplies by, when the file carries one.
    pub gamma: Option<f64>,
}

/// What `specnorm inspect` reports of `tensors`: a row for every normalized weight and for
/// every other weight of rank 2 or more, by key. `file` names the source in errors.
///
/// # Errors
///
/// One line naming the file and key, for vectors that do not fit their weight.
pub fn rows(tensors: &BTreeMap<String, NamedTensor>, file: &str) -> Result<Vec<Row>> {
    let named = |key: &str| {
        tensors
            .get(key)
            .ok_or_else(|| anyhow!("{file}: {}: missing", escaped(key)))
    };
    let sn = normalized(tensors);
    let mut rows = Vec::new();
    for entry in &sn {
        let (weight, u, v) = (named(&entry.weight)?, named(&entry.u)?, named(&entry.v)?);
        let key = format!("{file}: {}", escaped(&entry.weight));
        let dim = axis_of(&key, weight, u, v)?;
        let sigma = spectral_norm_of(&key, weight, dim)?;
        let sigma_uv = sigma_of_vectors(&key, weight, u, v, dim)?;
        let gamma = gamma_of(tensors, entry, &key)?;
        rows.push(Row {
            key: entry.weight.clone(),
            shape: weight.shape.clone(),
            dtype: weight.dtype,
            normalized: true,
            dim,
            sigma,
            sigma_uv: Some(sigma_uv),
            sigma_used: sigma.value / sigma_uv.abs() * gamma.abs(),
            gamma: entry.gamma.is_some().then_some(gamma),
        });
    }
    let state: Vec<&String> = sn.iter().flat_map(|n| [&n.weight, &n.u, &n.v]).collect();
    for (key, tensor) in tensors {
        if tensor.shape.len() >= 2 && !state.contains(&key) {
            let sigma = spectral_norm_of(&format!("{file}: {}", escaped(key)), tensor, 0)?;
            rows.push(Row {
                key: key.clone(),
                shape: tensor.shape.clone(),
                dtype: tensor.dtype,
                normalized: false,
                dim: 0,
                sigma,
                sigma_uv: None,
                sigma_used: sigma.value,
                gamma: None,
            });
        }
    }
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(rows)
}

/// The axis of the matrix view that `u` and `v` belong to: one whose size is `u`'s length
/// while the others multiply to `v`'s. When several fit (a square weight), the one for which
/// `u` points most nearly along `M v`, as the last power-iteration step leaves it
/// (`u = normalize(M v)`); Burn and Paddle use axis 1 of a square Linear, PyTorch axis 0.
pub fn axis_of(key: &str, weight: &NamedTensor, u: &NamedTensor, v: &NamedTensor) -> Result<usize> {
    let numel: usize = weight.shape.iter().product();
    let (u_len, v_len) = (u.values.len(), v.values.len());
    let fits: Vec<usize> = (0..weight.shape.len())
        .filter(|&d| weight.shape[d] == u_len && numel / weight.shape[d].max(1) == v_len)
        .collect();
    let alignment = |&d: &usize| {
        let Ok(matrix) = matrix_view(weight, d) else {
            return -1.0;
        };
        let mv: Vec<f64> = matrix
            .chunks_exact(v_len.max(1))
            .map(|row| dot(row, &v.values))
            .collect();
        let cosine = dot(&u.values, &mv).abs() / (dot(&mv, &mv) * dot(&u.values, &u.values)).sqrt();
        if cosine.is_nan() { -1.0 } else { cosine }
    };
    match fits.as_slice() {
        [] => bail!(
            "{key}: u ({u_len}) and v ({v_len}) do not fit shape {:?}",
            weight.shape
        ),
        [d] => Ok(*d),
        _ => Ok(*fits
            .iter()
            .max_by(|a, b| alignment(a).total_cmp(&alignment(b)))
            .expect("two or more candidates")),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `tensor` as a Flex f64 tensor `[outer, rows, inner]` for the matrix view along `dim`
/// (`rows = shape[dim]`), whose view along axis 1 is the view of `tensor` along `dim`.
/// `tensor.values` must fit its shape.
fn blocks(tensor: &NamedTensor, dim: usize) -> Tensor<3> {
    let outer = tensor.shape[..dim].iter().product();
    let inner = tensor.shape[dim + 1..].iter().product();
    let data = TensorData::new(tensor.values.clone(), [outer, tensor.shape[dim], inner]);
    Tensor::from_data(data, (&Device::flex(), DType::F64))
}

/// A vector as a Flex f64 tensor.
fn vector(values: &[f64]) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (&Device::flex(), DType::F64),
    )
}

/// The matrix view of `tensor` along `dim` (the library's), row-major.
fn matrix_view(tensor: &NamedTensor, dim: usize) -> Result<Vec<f64>> {
    let matrix = spectral_norm::matrix_view(blocks(tensor, dim), 1)?;
    Ok(matrix.try_into_vec_as::<f64>()?)
}

/// Checks that `dim` is an axis of `tensor` and its values fit its shape; returns the view's
/// `(rows, cols)`.
fn view_size(key: &str, tensor: &NamedTensor, dim: usize) -> Result<(usize, usize)> {
    let shape = &tensor.shape;
    if dim >= shape.len() {
        bail!("{key}: dim {dim} is not an axis of shape {shape:?}");
    }
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if numel != Some(tensor.values.len()) {
        bail!("{key}: {} values for shape {shape:?}", tensor.values.len());
    }
    let rows = shape[dim];
    Ok((rows, tensor.values.len().checked_div(rows).unwrap_or(0)))
}

/// σ of the matrix view of `tensor` along `dim`, exact by SVD when small, else by converged
/// power iteration.
pub fn spectral_norm_of(key: &str, tensor: &NamedTensor, dim: usize) -> Result<Sigma> {
    let (rows, cols) = view_size(key, tensor, dim)?;
    if rows == 0 || cols == 0 {
        // An empty matrix: nothing to view, and σ = 0 exactly.
        return Ok(largest_singular_value(&[], rows, cols));
    }
    Ok(largest_singular_value(
        &matrix_view(tensor, dim)?,
        rows,
        cols,
    ))
}

/// `u·(M v)` for the stored vectors, in f64: the σ that evaluation mode divides by.
pub fn sigma_of_vectors(
    key: &str,
    weight: &NamedTensor,
    u: &NamedTensor,
    v: &NamedTensor,
    dim: usize,
) -> Result<f64> {
    let (rows, cols) = view_size(key, weight, dim)?;
    if (u.values.len(), v.values.len()) != (rows, cols) {
        bail!(
            "{key}: u has {} and v {} elements, but the matrix view along dim {dim} is {rows} × {cols}",
            u.values.len(),
            v.values.len()
        );
    }
    let sigma = spectral_norm::sigma_from_vectors(
        blocks(weight, dim),
        vector(&u.values),
        vector(&v.values),
        1,
    )
    .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    Ok(sigma)
}

/// `tensor`'s values as a Flex f64 tensor of rank `D` (its shape's rank).
pub fn flex<const D: usize>(tensor: &NamedTensor) -> Tensor<D> {
    let data = TensorData::new(tensor.values.clone(), tensor.shape.clone());
    Tensor::from_data(data, (&Device::flex(), DType::F64))
}

/// σ that a normalized weight's layer divides by: from a matrix axis its u and v fit, or, for
/// an operator-mode convolution (u and v one output and one input sample), from `operator`.
///
/// # Errors
///
/// One line naming `where_`: vectors that fit neither.
pub fn sigma_used(
    where_: &str,
    weight: &NamedTensor,
    u: &NamedTensor,
    v: &NamedTensor,
    operator: Option<&spectral_norm::ConvOperator>,
) -> Result<f64> {
    let op = match (axis_of(where_, weight, u, v), operator) {
        (Ok(dim), _) => return sigma_of_vectors(where_, weight, u, v, dim),
        (Err(e), None) => return Err(e),
        (Err(_), Some(op)) => op,
    };
    let (u, v) = (vector(&u.values), vector(&v.values));
    let sigma = match weight.shape.len() {
        3 => spectral_norm::conv_sigma_from_vectors(flex::<3>(weight), op, u, v),
        4 => spectral_norm::conv_sigma_from_vectors(flex::<4>(weight), op, u, v),
        5 => spectral_norm::conv_sigma_from_vectors(flex::<5>(weight), op, u, v),
        rank => bail!("{where_}: rank {rank}; u and v fit no axis of it"),
    };
    sigma.map_err(|e| anyhow!("{where_}: {e}"))
}

/// Every spectrally normalized weight of `tensors` replaced by the weight its layer uses in
/// evaluation, `W / σ` with `σ = u·(W v)`, under its plain key, and u and v dropped; returns
/// the result and how many weights were baked. `file` names the source in errors;
/// `operators` gives the geometry of operator-mode weights, by stored key.
///
/// # Errors
///
/// One line naming the file and key: no normalized weight, vectors that do not fit the
/// weight, a σ that is zero or not finite, or a plain key that is already taken.
pub fn bake(
    mut tensors: BTreeMap<String, NamedTensor>,
    file: &str,
    operators: &BTreeMap<String, spectral_norm::ConvOperator>,
) -> Result<(BTreeMap<String, NamedTensor>, usize)> {
    let sn = normalized(&tensors);
    if sn.is_empty() {
        bail!(
            "{file}: no spectrally normalized weights to bake; adding spectral norm needs the \
             model (use the spectral-norm library), it cannot be done on a file"
        );
    }
    for entry in &sn {
        let key = format!("{file}: {}", escaped(&entry.weight));
        let gamma = gamma_of(&tensors, entry, &key)?;
        if let Some(gamma_key) = &entry.gamma {
            tensors.remove(gamma_key);
        }
        let mut take = |k: &str| {
            tensors
                .remove(k)
                .ok_or_else(|| anyhow!("{key}: {} missing", escaped(k)))
        };
        let (mut weight, u, v) = (take(&entry.weight)?, take(&entry.u)?, take(&entry.v)?);
        let sigma = sigma_used(&key, &weight, &u, &v, operators.get(&entry.weight))?;
        if !sigma.is_finite() || sigma == 0.0 {
            bail!(
                "{key}: the stored u and v give σ = u·(W v) = {sigma}; dividing by it would \
                 write non-finite weights"
            );
        }
        weight
            .values
            .iter_mut()
            .for_each(|x| *x = *x / sigma * gamma);
        if tensors.insert(entry.plain.clone(), weight).is_some() {
            bail!(
                "{key}: the plain key {} is already taken",
                escaped(&entry.plain)
            );
        }
    }
    Ok((tensors, sn.len()))
}

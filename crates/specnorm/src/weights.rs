//! The weights of a checkpoint as spectral normalization sees them: which are normalized
//! (under Burn's, Paddle's or PyTorch's names), their vectors, and their spectral norms.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

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
        let mv: Vec<f64> = matrix_view(weight, d)
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

/// The matrix view of `tensor` along `dim`, row-major: axis `dim` as rows, the others
/// flattened in order as columns. `tensor.values` must fit its shape.
fn matrix_view(tensor: &NamedTensor, dim: usize) -> Vec<f64> {
    let numel = tensor.values.len();
    let rows = tensor.shape[dim];
    let inner: usize = tensor.shape[dim + 1..].iter().product();
    let cols = numel.checked_div(rows).unwrap_or(0);
    // Entry (outer, i, n) of the tensor is entry (i, outer · inner + n) of the view.
    let mut matrix = vec![0.0; numel];
    for (flat, &x) in tensor.values.iter().enumerate() {
        let (outer, i, n) = (flat / (rows * inner), flat / inner % rows, flat % inner);
        matrix[i * cols + outer * inner + n] = x;
    }
    matrix
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
    Ok(largest_singular_value(
        &matrix_view(tensor, dim),
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
    let matrix = matrix_view(weight, dim);
    let mv = matrix
        .chunks_exact(cols.max(1))
        .map(|row| dot(row, &v.values));
    Ok(u.values.iter().zip(mv).map(|(a, b)| a * b).sum())
}

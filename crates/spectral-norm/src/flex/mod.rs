//! The fast path on Burn's Flex backend (feature `flex`, on by default): the same semantics as
//! the generic path in `matrix.rs`, computed on the weight's own storage.
//!
//! Per training-mode use: `n` sweeps over `W` for the power iteration (`n + 1` when `dim = 0`), σ
//! from the last normalization, one read and one write for `W / σ` into reused storage (each of
//! a step's uses keeps its own, so a discriminator's real and fake passes allocate nothing) that
//! starts on a cache line (and from 2 MiB on Linux, advised for transparent huge pages;
//! streaming stores for weights beyond the cache), and a backward that reads `G` and `W` once
//! and overwrites `G` with the result in the layout `G` came in (a convolution's weight gradient
//! is a swapped-axes view, corrected where it lies rather than copied). In eval mode `W / σ` is
//! cached while `W` is the very same tensor and neither vector's buffer was written (each write
//! changes the buffer's stamp). Anything else (other backends, dtypes other than f32/f64,
//! non-contiguous weights, gradient checkpointing) takes the generic path.

mod aligned;
mod autodiff;
mod gradient;
pub(crate) mod kernels;
mod streaming;
mod workspace;

use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Element, Tensor, TensorData};

use crate::reparameterization::SpectralNorm;
use kernels::{Estimate, Real, View};
pub(crate) use workspace::FlexWorkspace;

/// `W / σ` for `base` if the fast path applies, else `None` for the generic path.
///
/// The eval-mode cache hit is the path to keep short: after the autodiff check it converts
/// `base` and reads everything else from the Flex tensor itself.
pub(crate) fn apply<const D: usize>(sn: &SpectralNorm, base: &Tensor<D>) -> Option<Tensor<D>> {
    if base.is_autodiff() {
        return match base.dtype() {
            DType::F32 => training::<f32, D>(sn, base),
            DType::F64 => training::<f64, D>(sn, base),
            _ => None,
        };
    }
    let weight = base.clone().try_into_primitive::<Flex>().ok()?;
    match weight.dtype() {
        DType::F32 => eval::<f32>(sn, weight),
        DType::F64 => eval::<f64>(sn, weight),
        _ => None,
    }
    .map(Tensor::from_primitive::<Flex>)
}

/// An autodiff weight: `W / σ` as one autodiff node.
fn training<T, const D: usize>(sn: &SpectralNorm, base: &Tensor<D>) -> Option<Tensor<D>>
where
    T: Real + Element + bytemuck::Pod + core::fmt::Debug,
{
    let weight = base.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    tracked::<T>(sn, weight).map(Tensor::from_primitive::<Autodiff<Flex>>)
}

fn contiguous<T: Element + bytemuck::Pod>(tensor: &FlexTensor) -> Option<&[T]> {
    (tensor.layout().start_offset() == 0)
        .then(|| tensor.as_slice::<T>())
        .flatten()
}

fn vector<T: Element>(values: Vec<T>) -> Tensor<1> {
    let len = values.len();
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, [len])))
}

/// A stored vector as a Flex tensor of the weight's dtype.
fn stored(vector: Tensor<1>, dtype: DType) -> Option<FlexTensor> {
    let vector = vector.without_autodiff();
    let vector = if vector.dtype() == dtype {
        vector
    } else {
        vector.cast(dtype)
    };
    vector.try_into_primitive::<Flex>().ok()
}

fn view_of(sn: &SpectralNorm, weight: &FlexTensor) -> View {
    View::new(weight.layout().shape().as_slice(), sn.dim)
}

/// Eval mode: σ from the stored vectors, `W / σ` cached while `W` is the very same tensor and
/// neither vector was written. A cache hit reads only the stamps of the vectors' buffers.
fn eval<T>(sn: &SpectralNorm, weight: FlexTensor) -> Option<FlexTensor>
where
    T: Real + Element + bytemuck::Pod,
{
    let workspace = &sn.workspace.flex;
    if let Some(output) = workspace.cached(&weight, sn.u.stamp(), sn.v.stamp()) {
        return Some(output);
    }
    let w = contiguous::<T>(&weight)?;
    let view = view_of(sn, &weight);
    let (u, u_stamp) = sn.u.get_stamped();
    let (v, v_stamp) = sn.v.get_stamped();
    let u = stored(u, weight.dtype())?;
    let v = stored(v, weight.dtype())?;
    let sigma = sigma_of(w, view, contiguous::<T>(&u)?, contiguous::<T>(&v)?)?;
    let output = divided(workspace, &weight, w, sigma);
    workspace.remember_eval(&weight, u_stamp, v_stamp, &output);
    Some(output)
}

/// `σ = u·(M v)` for vectors of the right lengths.
fn sigma_of<T: Real>(w: &[T], view: View, u: &[T], v: &[T]) -> Option<T> {
    (u.len() == view.rows && v.len() == view.cols())
        .then(|| kernels::dot(u, &kernels::m_vec(w, view, v)))
}

/// Autodiff device: power iteration if training, then `W / σ` as one autodiff node.
fn tracked<T>(
    sn: &SpectralNorm,
    weight: burn::backend::tensor::FloatTensor<Autodiff<Flex>>,
) -> Option<burn::backend::tensor::FloatTensor<Autodiff<Flex>>>
where
    T: Real + Element + bytemuck::Pod + core::fmt::Debug,
{
    let primitive = weight.primitive().clone();
    let w = contiguous::<T>(&primitive)?;
    let view = view_of(sn, &primitive);
    let estimate = if sn.training.is_enabled() {
        advance(sn, w, view, primitive.dtype())?
    } else {
        let u = stored(sn.u.get(), primitive.dtype())?;
        let v = stored(sn.v.get(), primitive.dtype())?;
        let (u, v) = (contiguous::<T>(&u)?.to_vec(), contiguous::<T>(&v)?.to_vec());
        let sigma = sigma_of(w, view, &u, &v)?;
        Estimate { u, v, sigma }
    };
    let workspace = &sn.workspace.flex;
    let output = divided(workspace, &primitive, w, estimate.sigma);
    workspace.remember_output(&output);
    Some(autodiff::divide_by_sigma(
        weight,
        output,
        estimate.u,
        estimate.v,
        estimate.sigma,
        view,
        sn.dim,
    ))
}

/// The power iteration under `u`'s lock, as the generic path does: concurrent uses act as if
/// run one after another, and the stored pair always belongs together.
fn advance<T>(sn: &SpectralNorm, w: &[T], view: View, dtype: DType) -> Option<Estimate<T>>
where
    T: Real + Element + bytemuck::Pod,
{
    sn.u.update(|stored_u| {
        let u = stored(stored_u.clone(), dtype)?;
        let u = contiguous::<T>(&u).filter(|u| u.len() == view.rows)?;
        let eps = T::from_f64(sn.eps);
        let estimate = kernels::power_iterate(w, view, u, sn.n_power_iterations, eps);
        sn.v.set(vector(estimate.v.clone()));
        *stored_u = vector(estimate.u.clone());
        Some(estimate)
    })
}

/// `W / σ`, written into a kept earlier output's storage that nobody holds any more, else into
/// new storage that starts on a cache line, advised for huge pages when large (see `aligned`).
fn divided<T>(workspace: &FlexWorkspace, weight: &FlexTensor, w: &[T], sigma: T) -> FlexTensor
where
    T: Real + Element + bytemuck::Pod,
{
    let mut output = workspace
        .take_reusable(weight)
        .unwrap_or_else(|| aligned::zeros(weight.layout().shape().clone(), weight.dtype()));
    kernels::divide_into(w, sigma, &mut output.storage_mut::<T>()[..w.len()]);
    output
}

#[cfg(test)]
mod tests;

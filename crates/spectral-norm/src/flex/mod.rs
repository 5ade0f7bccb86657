//! The fast path on Burn's Flex backend (feature `flex`, on by default): pure functions that
//! compute what the generic path in `matrix.rs` computes, on the weight's own storage. They
//! know nothing of the spectral-norm state: the state decides the mode, holds the lock and
//! stores the vectors; these functions only read their arguments and return results. Each
//! returns `None` where it does not apply (another backend, a dtype other than f32/f64, a
//! weight that does not start its storage contiguously, vectors of the wrong length), and the
//! caller then takes the generic path.
//!
//! Per training-mode use: `n` sweeps over `W` for the power iteration (`n + 1` when `dim = 0`),
//! σ from the last normalization, one read and one write for `W / σ` into storage that the
//! caller may hand back from an earlier use (storage of our own starts on a cache line, and
//! from 2 MiB on Linux spans huge pages; streaming stores for weights beyond the cache), and a
//! backward that reads `G` and `W` once and overwrites `G` with the result in the layout `G`
//! came in (a convolution's weight gradient is a swapped-axes view, corrected where it lies
//! rather than copied).

mod aligned;
mod autodiff;
mod divide;
mod gradient;
mod parallel;
mod power;
mod real;
mod simd;
mod streaming;
mod view;

use core::num::NonZeroUsize;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

use real::Real;
use view::View;

#[cfg(test)]
pub(crate) use aligned::{ALLOCATIONS, CACHE_LINE};

/// `(u, v, σ)` after `iterations` power-iteration steps from `u` on the matrix view of
/// `weight` along `dim`, with `σ = u·(W v)` taken from the last normalization.
pub(crate) fn iterate<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    u: &Tensor<1>,
    iterations: NonZeroUsize,
    eps: f64,
) -> Option<(Tensor<1>, Tensor<1>, f64)> {
    let weight = flex(weight)?;
    match weight.dtype() {
        DType::F32 => iterate_as::<f32>(&weight, dim, u, iterations, eps),
        DType::F64 => iterate_as::<f64>(&weight, dim, u, iterations, eps),
        _ => None,
    }
}

fn iterate_as<T: Real>(
    weight: &FlexTensor,
    dim: usize,
    u: &Tensor<1>,
    iterations: NonZeroUsize,
    eps: f64,
) -> Option<(Tensor<1>, Tensor<1>, f64)> {
    let w = contiguous::<T>(weight)?;
    let view = view_of(weight, dim);
    let u = in_dtype(u, weight.dtype())?;
    let u = contiguous::<T>(&u).filter(|u| u.len() == view.rows)?;
    let estimate = power::power_iterate(w, view, u, iterations, T::from_f64(eps));
    Some((
        vector(estimate.u),
        vector(estimate.v),
        estimate.sigma.to_f64(),
    ))
}

/// `σ = u·(W v)` for the matrix view of `weight` along `dim`.
pub(crate) fn sigma<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    u: &Tensor<1>,
    v: &Tensor<1>,
) -> Option<f64> {
    let weight = flex(weight)?;
    match weight.dtype() {
        DType::F32 => sigma_as::<f32>(&weight, dim, u, v),
        DType::F64 => sigma_as::<f64>(&weight, dim, u, v),
        _ => None,
    }
}

fn sigma_as<T: Real>(weight: &FlexTensor, dim: usize, u: &Tensor<1>, v: &Tensor<1>) -> Option<f64> {
    let w = contiguous::<T>(weight)?;
    let view = view_of(weight, dim);
    let (u, v) = vectors::<T>(u, v, view, weight.dtype())?;
    Some(sigma_of(w, view, &u, &v).to_f64())
}

fn sigma_of<T: Real>(w: &[T], view: View, u: &[T], v: &[T]) -> T {
    simd::dot(u, &power::m_vec(w, view, v))
}

/// `W / σ` (`σ = u·(W v)` when not given), and the storage it was written to as a flat handle
/// (to hand back as `storage` on a later call). An autodiff `weight` gives one autodiff node whose backward is
/// `(G − ⟨G, W⟩/σ · u vᵀ) / σ`, the gradient of `W / σ(W)` with `σ = u·(W v)` and `u`, `v`
/// constant. The storage that `storage` offers (asked for only once the fast path applies) is
/// written over when it is a whole contiguous buffer of the right size and dtype that nobody
/// else holds; otherwise fresh storage is allocated.
pub(crate) fn divide<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    u: &Tensor<1>,
    v: &Tensor<1>,
    sigma: Option<f64>,
    storage: impl FnOnce() -> Option<FlexTensor>,
) -> Option<(Tensor<D>, FlexTensor)> {
    let inner = flex(weight)?;
    match inner.dtype() {
        DType::F32 => divide_as::<f32, D>(weight, &inner, dim, u, v, sigma, storage),
        DType::F64 => divide_as::<f64, D>(weight, &inner, dim, u, v, sigma, storage),
        _ => None,
    }
}

fn divide_as<T: Real, const D: usize>(
    weight: &Tensor<D>,
    inner: &FlexTensor,
    dim: usize,
    u: &Tensor<1>,
    v: &Tensor<1>,
    sigma: Option<f64>,
    storage: impl FnOnce() -> Option<FlexTensor>,
) -> Option<(Tensor<D>, FlexTensor)> {
    let w = contiguous::<T>(inner)?;
    let view = view_of(inner, dim);
    let (u, v) = vectors::<T>(u, v, view, inner.dtype())?;
    let sigma = match sigma {
        Some(sigma) => T::from_f64(sigma),
        None => sigma_of(w, view, &u, &v),
    };
    let tracked = if weight.is_autodiff() {
        let weight = weight.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
        Some((weight, u, v))
    } else {
        None
    };
    let mut output = writable(storage(), inner);
    divide::divide_into(w, sigma, &mut output.storage_mut::<T>()[..w.len()]);
    let handle = output.clone();
    let result = match tracked {
        Some((weight, u, v)) => Tensor::from_primitive::<Autodiff<Flex>>(
            autodiff::divide_by_sigma(weight, output, u, v, sigma, view, dim),
        ),
        None => Tensor::from_primitive::<Flex>(output),
    };
    Some((result, handle))
}

/// `weight` copied into storage that starts on a cache line (see `aligned`), on the same
/// device, with the same autodiff and gradient requirement: a training use of a Linear or conv
/// weight 16 bytes past a line (where Burn's large allocations start) took 5–8% longer than of
/// the same values on a line (1 thread, 2026-12-08). `None` where there is nothing to gain or
/// it cannot be done alike: not a whole contiguous f32/f64 Flex tensor, or already on a line.
pub(crate) fn on_cache_line<const D: usize>(weight: &Tensor<D>) -> Option<Tensor<D>> {
    let inner = flex(weight)?;
    let on_line = (inner.bytes().as_ptr() as usize).is_multiple_of(aligned::CACHE_LINE);
    let whole = inner.is_contiguous() && inner.layout().start_offset() == 0;
    if on_line || !whole || inner.layout().num_elements() == 0 {
        return None;
    }
    let copy = match inner.dtype() {
        DType::F32 => copy_on_line::<f32>(&inner),
        DType::F64 => copy_on_line::<f64>(&inner),
        _ => return None,
    };
    let mut moved = Tensor::from_primitive::<Flex>(copy);
    if weight.is_autodiff() {
        moved = moved.autodiff().set_require_grad(weight.is_require_grad());
    }
    (moved.device() == weight.device()).then_some(moved)
}

fn copy_on_line<T: Real>(tensor: &FlexTensor) -> FlexTensor {
    let values = &tensor.storage::<T>()[..tensor.layout().num_elements()];
    let mut copy = aligned::zeros(tensor.layout().shape().clone(), tensor.dtype());
    copy.storage_mut::<T>()[..values.len()].copy_from_slice(values);
    copy
}

/// The Flex tensor under `tensor` (autodiff or not).
pub(crate) fn flex<const D: usize>(tensor: &Tensor<D>) -> Option<FlexTensor> {
    tensor
        .clone()
        .without_autodiff()
        .try_into_primitive::<Flex>()
        .ok()
}

/// Whether `a` and `b` view the very same storage, whole and in order: then they hold the same
/// values, since Flex writes in place only into storage that it alone holds.
pub(crate) fn same_storage(a: &FlexTensor, b: &FlexTensor) -> bool {
    let whole = |t: &FlexTensor| t.is_contiguous() && t.layout().start_offset() == 0;
    std::sync::Arc::ptr_eq(&a.data_arc(), &b.data_arc())
        && a.dtype() == b.dtype()
        && a.layout().num_elements() == b.layout().num_elements()
        && whole(a)
        && whole(b)
}

/// `storage` reshaped to `like`'s shape if it can be written over in place, else fresh storage
/// that starts on a cache line (see `aligned`).
fn writable(storage: Option<FlexTensor>, like: &FlexTensor) -> FlexTensor {
    let shape = like.layout().shape().clone();
    storage
        .filter(|storage| {
            storage.is_unique()
                && storage.dtype() == like.dtype()
                && storage.is_contiguous()
                && storage.layout().start_offset() == 0
                && storage.layout().num_elements() == like.layout().num_elements()
        })
        .map(|storage| storage.with_layout(Layout::contiguous(shape.clone())))
        .unwrap_or_else(|| aligned::zeros(shape, like.dtype()))
}

fn contiguous<T: Real>(tensor: &FlexTensor) -> Option<&[T]> {
    (tensor.layout().start_offset() == 0)
        .then(|| tensor.as_slice::<T>())
        .flatten()
}

fn view_of(weight: &FlexTensor, dim: usize) -> View {
    View::new(weight.layout().shape().as_slice(), dim)
}

fn vector<T: Real>(values: Vec<T>) -> Tensor<1> {
    let len = values.len();
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, [len])))
}

/// A vector as a Flex tensor of `dtype`.
fn in_dtype(vector: &Tensor<1>, dtype: DType) -> Option<FlexTensor> {
    let vector = vector.clone().without_autodiff();
    let vector = if vector.dtype() == dtype {
        vector
    } else {
        vector.cast(dtype)
    };
    vector.try_into_primitive::<Flex>().ok()
}

/// `u` and `v` as values of `T`, if their lengths fit `view`.
fn vectors<T: Real>(
    u: &Tensor<1>,
    v: &Tensor<1>,
    view: View,
    dtype: DType,
) -> Option<(Vec<T>, Vec<T>)> {
    let (u, v) = (in_dtype(u, dtype)?, in_dtype(v, dtype)?);
    let u = contiguous::<T>(&u).filter(|u| u.len() == view.rows)?;
    let v = contiguous::<T>(&v).filter(|v| v.len() == view.cols())?;
    Some((u.to_vec(), v.to_vec()))
}

//! Backend acceleration behind one set of pure functions: the Flex fast path where it is
//! compiled in and applies, `None` (take the generic path) everywhere else. A backend added
//! later (a CubeCL kernel, say) plugs in here without the state or the estimators changing.

use core::num::NonZeroUsize;

use burn::tensor::{DType, Tensor};

/// Storage that an accelerated backend holds a tensor in, opaque to everyone else: a kept
/// output to be written over later, or a weight to recognise.
#[derive(Debug, Clone)]
pub(crate) struct Storage {
    #[cfg(feature = "flex")]
    flex: burn::backend::flex::FlexTensor,
}

impl Storage {
    /// Elements held.
    pub fn len(&self) -> usize {
        #[cfg(feature = "flex")]
        return self.flex.layout().num_elements();
        #[cfg(not(feature = "flex"))]
        0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        #[cfg(feature = "flex")]
        return self.flex.dtype();
        #[cfg(not(feature = "flex"))]
        DType::F32
    }

    /// Whether nobody else holds this storage, so that it may be written over in place.
    pub fn is_exclusive(&self) -> bool {
        #[cfg(feature = "flex")]
        return self.flex.is_unique();
        #[cfg(not(feature = "flex"))]
        false
    }

    /// The tensor this storage holds, if it has rank `D`.
    pub fn tensor<const D: usize>(&self) -> Option<Tensor<D>> {
        #[cfg(feature = "flex")]
        if self.flex.layout().shape().as_slice().len() == D {
            use burn::backend::Flex;
            return Some(Tensor::from_primitive::<Flex>(self.flex.clone()));
        }
        None
    }

    /// The storage of `tensor`, where a backend can tell it.
    pub fn of<const D: usize>(tensor: &Tensor<D>) -> Option<Self> {
        #[cfg(feature = "flex")]
        if enabled() {
            return crate::flex::flex(tensor).map(|flex| Self { flex });
        }
        let _ = tensor;
        None
    }

    /// Whether `tensor` views exactly this storage, whole and in order, and so holds the same
    /// values. `false` where that cannot be told.
    pub fn holds<const D: usize>(&self, tensor: &Tensor<D>) -> bool {
        #[cfg(feature = "flex")]
        if enabled() {
            return crate::flex::flex(tensor)
                .is_some_and(|other| crate::flex::same_storage(&self.flex, &other));
        }
        let _ = tensor;
        false
    }
}

/// `weight` moved into storage the accelerated kernels read fastest, with the same values,
/// device and gradient requirement; `None` where it is best left where it is.
pub(crate) fn rehome<const D: usize>(weight: &Tensor<D>) -> Option<Tensor<D>> {
    #[cfg(feature = "flex")]
    if enabled() {
        return crate::flex::on_cache_line(weight);
    }
    let _ = weight;
    None
}

/// `(u, v, σ)` after `iterations` steps from `u` on the matrix view of `weight` along `dim`.
pub(crate) fn iterate<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    u: &Tensor<1>,
    iterations: NonZeroUsize,
    eps: f64,
) -> Option<(Tensor<1>, Tensor<1>, f64)> {
    #[cfg(feature = "flex")]
    if enabled() {
        return crate::flex::iterate(weight, dim, u, iterations, eps);
    }
    let _ = (weight, dim, u, iterations, eps);
    None
}

/// `σ = u·(W v)` for the matrix view of `weight` along `dim`, without gradient.
pub(crate) fn sigma<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    u: &Tensor<1>,
    v: &Tensor<1>,
) -> Option<f64> {
    #[cfg(feature = "flex")]
    if enabled() {
        return crate::flex::sigma(weight, dim, u, v);
    }
    let _ = (weight, dim, u, v);
    None
}

/// `W / σ` (differentiable in `W` through `σ = u·(W v)` when `weight` is an autodiff tensor;
/// `σ` computed from `u` and `v` when not given), and the storage it was written to. What
/// `storage` offers (asked only once acceleration applies) is written over where nobody else
/// holds it.
pub(crate) fn divide<const D: usize>(
    weight: &Tensor<D>,
    dim: usize,
    (u, v): (&Tensor<1>, &Tensor<1>),
    sigma: Option<f64>,
    storage: impl FnOnce() -> Option<Storage>,
) -> Option<(Tensor<D>, Storage)> {
    #[cfg(feature = "flex")]
    if enabled() {
        let storage = || storage().map(|storage| storage.flex);
        return crate::flex::divide(weight, dim, u, v, sigma, storage)
            .map(|(weight, flex)| (weight, Storage { flex }));
    }
    let _ = (weight, dim, u, v, sigma, storage);
    None
}

#[cfg(all(test, feature = "flex"))]
std::thread_local! {
    static GENERIC_ONLY: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Runs `f` with acceleration switched off on this thread: the tests' reference runs.
#[cfg(all(test, feature = "flex"))]
pub(crate) fn generic_only<R>(f: impl FnOnce() -> R) -> R {
    GENERIC_ONLY.with(|flag| flag.set(true));
    let result = f();
    GENERIC_ONLY.with(|flag| flag.set(false));
    result
}

#[cfg(feature = "flex")]
fn enabled() -> bool {
    #[cfg(test)]
    return !GENERIC_ONLY.with(core::cell::Cell::get);
    #[cfg(not(test))]
    true
}

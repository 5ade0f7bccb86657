//! Paddle's op-based layer `paddle.nn.SpectralNorm`: a function of a weight tensor with fixed
//! vectors, additive eps, and the true gradient.

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::{DType, Distribution};

use crate::buffer::Buffer;
use crate::error::SpectralNormError;
use crate::matrix::{Normalization, WeightMatrix, divide, power_iterate, sigma};
use crate::precision::{compute_dtype, in_dtype, widen};

/// Configuration of [`SpectralNormOp`], with `paddle.nn.SpectralNorm`'s arguments and defaults.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::SpectralNormOpConfig;
///
/// let device = Device::flex();
/// let op = SpectralNormOpConfig::new(vec![4, 3]).with_power_iters(5).init(&device).unwrap();
/// let w = Tensor::<2>::from_data([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0; 3], [0.0; 3]], &device);
/// let normalized = op.forward(w).unwrap();
/// assert_eq!(normalized.dims(), [4, 3]);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SpectralNormOpConfig {
    /// Shape of the weights the op will be called with: rank 2 to 5, no zero-sized axis.
    pub weight_shape: Vec<usize>,
    /// Axis that becomes the matrix rows: 0 or 1.
    #[config(default = 0)]
    pub dim: usize,
    /// Power-iteration steps per call; 0 uses the stored vectors as they are.
    #[config(default = 1)]
    pub power_iters: usize,
    /// Added to each vector norm: `x / (‖x‖ + eps)`. Rounded to `f32`, as Paddle's attribute is.
    #[config(default = 1e-12)]
    pub eps: f64,
}

/// `paddle.nn.SpectralNorm`: maps a weight `W` to `W / σ`, where `σ` comes from
/// `power_iters` steps started, on every call, from the same stored vectors. The vectors are
/// never updated (records keep them as `weight_u`, `weight_v`, Paddle's keys).
///
/// Differences from Paddle, on purpose:
/// - the gradient is the true one (`u`, `v` held constant after the iteration); Paddle's C++
///   kernel returns `G ⊙ (1 − u vᵀ Σ(W/σ)) / σ`, which is wrong unless `G` is uniform;
/// - shapes, ranks, axes and dtypes are checked and refused with a [`SpectralNormError`]
///   instead of exceptions.
#[derive(Module, Debug)]
pub struct SpectralNormOp {
    /// The left vector, `[weight_shape[dim]]`, drawn from N(0, 1) and not normalized.
    weight_u: Buffer<1>,
    /// The right vector, `[numel / weight_shape[dim]]`, drawn from N(0, 1), not normalized.
    weight_v: Buffer<1>,
    /// The weight shape the op accepts.
    weight_shape: Vec<usize>,
    /// Axis that becomes the matrix rows.
    dim: usize,
    /// Power-iteration steps per call.
    power_iters: usize,
    /// Additive eps, already rounded to `f32`.
    eps: f64,
}

impl SpectralNormOpConfig {
    /// Creates the op with vectors in the device's default float dtype.
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidOp`] for a rank outside 2..=5, a zero-sized axis, or a
    /// `dim` other than 0 or 1.
    pub fn init(&self, device: &Device) -> Result<SpectralNormOp, SpectralNormError> {
        let dtype = Tensor::<1>::zeros([1], device).dtype();
        self.init_with_dtype(device, dtype)
    }

    /// Creates the op for weights of the given float dtype, with vectors in it (in f32 for f16
    /// and bf16 weights, whose arithmetic runs in f32).
    ///
    /// # Errors
    ///
    /// As [`init`](Self::init).
    pub fn init_with_dtype(
        &self,
        device: &Device,
        dtype: DType,
    ) -> Result<SpectralNormOp, SpectralNormError> {
        let shape = &self.weight_shape;
        let invalid = |why: String| Err(SpectralNormError::InvalidOp(why));
        if !(2..=5).contains(&shape.len()) {
            return invalid(format!("weight rank must be 2 to 5, got shape {shape:?}"));
        }
        if shape.contains(&0) {
            return invalid(format!("weight shape {shape:?} has a zero-sized axis"));
        }
        if self.dim > 1 {
            return invalid(format!("dim must be 0 or 1, got {}", self.dim));
        }
        let rows = shape[self.dim];
        let cols = shape.iter().product::<usize>() / rows;
        let normal = |len: usize| {
            let options = (device, compute_dtype(dtype));
            Tensor::<1>::random([len], Distribution::Normal(0.0, 1.0), options)
        };
        Ok(SpectralNormOp {
            weight_u: Buffer::new(normal(rows)),
            weight_v: Buffer::new(normal(cols)),
            weight_shape: shape.clone(),
            dim: self.dim,
            power_iters: self.power_iters,
            eps: f64::from(self.eps as f32),
        })
    }
}

impl SpectralNormOp {
    /// The left start vector, `[weight_shape[dim]]`.
    pub fn weight_u(&self) -> Tensor<1> {
        self.weight_u.get()
    }

    /// The right start vector, `[numel / weight_shape[dim]]`.
    pub fn weight_v(&self) -> Tensor<1> {
        self.weight_v.get()
    }

    /// The weight shape the op accepts.
    pub fn weight_shape(&self) -> &[usize] {
        &self.weight_shape
    }

    /// The axis that becomes the matrix rows.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Power-iteration steps per call.
    pub fn power_iters(&self) -> usize {
        self.power_iters
    }

    /// The additive eps, rounded to `f32` as Paddle's attribute is.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Replaces the start vectors (Paddle's `weight_u`, `weight_v` from elsewhere).
    ///
    /// ```
    /// use burn::prelude::*;
    /// use spectral_norm::SpectralNormOpConfig;
    ///
    /// let device = Device::flex();
    /// let op = SpectralNormOpConfig::new(vec![2, 3]).init(&device).unwrap();
    /// let u = Tensor::<1>::from_data([1.0, 0.0], &device);
    /// op.set_vectors(u.clone(), Tensor::ones([3], &device)).unwrap();
    /// assert!(op.set_vectors(u, Tensor::ones([2], &device)).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::VectorLength`] when a length does not fit the weight shape;
    /// nothing is changed then.
    pub fn set_vectors(&self, u: Tensor<1>, v: Tensor<1>) -> Result<(), SpectralNormError> {
        for (name, stored, new) in [
            ("u", self.weight_u.get(), &u),
            ("v", self.weight_v.get(), &v),
        ] {
            if stored.dims() != new.dims() {
                return Err(SpectralNormError::VectorLength {
                    vector: name,
                    expected: stored.dims()[0],
                    got: new.dims()[0],
                });
            }
        }
        self.weight_u.set(u);
        self.weight_v.set(v);
        Ok(())
    }

    /// Returns `weight / σ`.
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidOp`] when `weight`'s shape is not the configured one or its
    /// dtype differs from the vectors'.
    pub fn forward<const D: usize>(
        &self,
        weight: Tensor<D>,
    ) -> Result<Tensor<D>, SpectralNormError> {
        if weight.dims().as_slice() != self.weight_shape.as_slice() {
            return Err(SpectralNormError::InvalidOp(format!(
                "weight shape {:?} differs from the configured {:?}",
                weight.dims(),
                self.weight_shape
            )));
        }
        spectral_norm_op(
            weight,
            self.weight_u.get(),
            self.weight_v.get(),
            self.dim,
            self.power_iters,
            self.eps,
        )
    }
}

/// The op as a function: `weight / σ` with `σ` from `power_iters` steps of
/// `v = Wᵀu / (‖Wᵀu‖ + eps)`, `u = W v / (‖W v‖ + eps)` started at the given `u`, `v`
/// (used as they are, not normalized), on the matrix view of `weight` along `dim`.
/// The gradient treats the final `u`, `v` as constants.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::spectral_norm_op;
///
/// let device = Device::flex();
/// let w = Tensor::<2>::from_data([[2.0, 0.0], [0.0, 1.0]], &device);
/// let u = Tensor::<1>::from_data([1.0, 0.0], &device);
/// let v = Tensor::<1>::from_data([1.0, 0.0], &device);
/// let out = spectral_norm_op(w, u, v, 0, 0, 1e-12).unwrap();
/// out.into_data().assert_approx_eq::<f32>(&TensorData::from([[1.0, 0.0], [0.0, 0.5]]), Default::default());
/// ```
///
/// # Errors
///
/// [`SpectralNormError::InvalidOp`] for a rank outside 2..=5, a `dim` other than 0 or 1,
/// vectors whose lengths do not match the matrix view, or vectors of another dtype than the
/// weight's (f32 for an f16 or bf16 weight, which is computed in f32 and rounded once).
pub fn spectral_norm_op<const D: usize>(
    weight: Tensor<D>,
    u: Tensor<1>,
    v: Tensor<1>,
    dim: usize,
    power_iters: usize,
    eps: f64,
) -> Result<Tensor<D>, SpectralNormError> {
    check_op_inputs(&weight, &u, &v, dim)?;
    let dtype = weight.dtype();
    let weight = widen(weight);
    let weight_matrix = WeightMatrix::new(weight.clone(), dim);
    let constant = weight_matrix.without_autodiff();
    let device = constant.device();
    let rule = Normalization::AddEps(eps);
    let (u, v) = power_iterate(
        &constant,
        u.to_device(&device),
        v.to_device(&device),
        power_iters,
        rule,
    );
    Ok(in_dtype(divide(weight, sigma(&weight_matrix, u, v)), dtype))
}

fn check_op_inputs<const D: usize>(
    weight: &Tensor<D>,
    u: &Tensor<1>,
    v: &Tensor<1>,
    dim: usize,
) -> Result<(), SpectralNormError> {
    let dims = weight.dims();
    let fail = |why: String| Err(SpectralNormError::InvalidOp(why));
    if !(2..=5).contains(&D) {
        return fail(format!("weight rank must be 2 to 5, got {D}"));
    }
    if dim > 1 {
        return fail(format!("dim must be 0 or 1, got {dim}"));
    }
    if dims.contains(&0) {
        return fail(format!("weight shape {dims:?} has a zero-sized axis"));
    }
    let rows = dims[dim];
    let cols = dims.iter().product::<usize>() / rows;
    if u.dims()[0] != rows || v.dims()[0] != cols {
        return fail(format!(
            "u has {} and v {} elements, but the weight {dims:?} along dim {dim} needs {rows} and {cols}",
            u.dims()[0],
            v.dims()[0]
        ));
    }
    let compute = compute_dtype(weight.dtype());
    if compute != u.dtype() || compute != v.dtype() {
        return fail(format!(
            "weight is {:?} (computed in {compute:?}) but u is {:?} and v {:?}",
            weight.dtype(),
            u.dtype(),
            v.dtype()
        ));
    }
    Ok(())
}

//! A convolution as the linear map it is on inputs of one spatial size, `x ↦ conv(x)` without
//! bias: its output shape, its application and its adjoint, in Burn's own convolution
//! operations (so on every backend), and its largest singular value by power iteration.
//!
//! The matrix-view σ of a convolution's weight is not this map's norm: on random 3×3 weights
//! and small images the operator norm is up to about twice as large, or smaller where strides
//! skip. Lipschitz bounds need the operator's.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{
    conv_transpose1d, conv_transpose2d, conv_transpose3d, conv1d, conv2d, conv3d,
};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use crate::error::SpectralNormError;
use crate::estimate::{Convergence, check_limits, until_converged};
use crate::precision::widen;

/// Which way a convolution layer applies its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvKind {
    /// `Conv1d`/`2d`/`3d`: weight `[out, in / groups, k…]`.
    Conv,
    /// `ConvTranspose1d`/`2d`/`3d`: weight `[in, out / groups, k…]`.
    Transposed,
}

/// The geometry of a convolution layer on inputs of one spatial size: everything but the
/// weight that decides the linear map. Lists hold one entry per spatial axis.
///
/// ```
/// use spectral_norm::ConvOperator;
///
/// let op = ConvOperator::conv(vec![8, 8]).with_stride(vec![2, 2]).with_padding(vec![(1, 1); 2]);
/// assert_eq!(op.output_shape(&[16, 3, 3, 3]).unwrap(), vec![16, 4, 4]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvOperator {
    /// Conv or transposed conv.
    pub kind: ConvKind,
    /// The input's spatial size (one entry per axis: 1, 2 or 3 of them).
    pub input_size: Vec<usize>,
    /// Stride per axis.
    pub stride: Vec<usize>,
    /// Zero padding `(before, after)` per axis; a transposed conv's must be symmetric.
    pub padding: Vec<(usize, usize)>,
    /// Dilation per axis.
    pub dilation: Vec<usize>,
    /// Channel groups.
    pub groups: usize,
    /// A transposed conv's extra output size per axis (zeros for a conv).
    pub output_padding: Vec<usize>,
}

impl ConvOperator {
    fn new(kind: ConvKind, input_size: Vec<usize>) -> Self {
        let n = input_size.len();
        Self {
            kind,
            stride: vec![1; n],
            padding: vec![(0, 0); n],
            dilation: vec![1; n],
            groups: 1,
            output_padding: vec![0; n],
            input_size,
        }
    }

    /// A convolution on inputs of `input_size`: stride 1, no padding, no dilation, one group.
    pub fn conv(input_size: Vec<usize>) -> Self {
        Self::new(ConvKind::Conv, input_size)
    }

    /// A transposed convolution on inputs of `input_size`, with the same defaults.
    pub fn transposed(input_size: Vec<usize>) -> Self {
        Self::new(ConvKind::Transposed, input_size)
    }

    /// With this stride per axis.
    pub fn with_stride(mut self, stride: Vec<usize>) -> Self {
        self.stride = stride;
        self
    }

    /// With this zero padding `(before, after)` per axis.
    pub fn with_padding(mut self, padding: Vec<(usize, usize)>) -> Self {
        self.padding = padding;
        self
    }

    /// With this dilation per axis.
    pub fn with_dilation(mut self, dilation: Vec<usize>) -> Self {
        self.dilation = dilation;
        self
    }

    /// With this many channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// With this output padding per axis (transposed convs).
    pub fn with_output_padding(mut self, output_padding: Vec<usize>) -> Self {
        self.output_padding = output_padding;
        self
    }

    /// `[channels, spatial…]` of one input sample for a weight of shape `weight`.
    ///
    /// # Errors
    ///
    /// As [`output_shape`](Self::output_shape).
    pub fn input_shape(&self, weight: &[usize]) -> Result<Vec<usize>, SpectralNormError> {
        self.check(weight)?;
        let channels = match self.kind {
            ConvKind::Conv => weight[1] * self.groups,
            ConvKind::Transposed => weight[0],
        };
        Ok([vec![channels], self.input_size.clone()].concat())
    }

    /// `[channels, spatial…]` of one output sample for a weight of shape `weight`.
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidGeometry`] when the lists' lengths do not match the
    /// weight's spatial rank, a stride, dilation or group count is zero, the channels do not
    /// divide into the groups, a transposed conv's padding is not symmetric or its output
    /// padding is not below its stride or dilation, or the kernel does not fit the input.
    pub fn output_shape(&self, weight: &[usize]) -> Result<Vec<usize>, SpectralNormError> {
        self.check(weight)?;
        let kernel = &weight[2..];
        let mut shape = vec![match self.kind {
            ConvKind::Conv => weight[0],
            ConvKind::Transposed => weight[1] * self.groups,
        }];
        for (axis, &k) in kernel.iter().enumerate() {
            let (input, stride) = (self.input_size[axis], self.stride[axis]);
            let reach = self.dilation[axis] * (k - 1) + 1;
            let (before, after) = self.padding[axis];
            let size = match self.kind {
                ConvKind::Conv => (input + before + after)
                    .checked_sub(reach)
                    .map(|span| span / stride + 1),
                ConvKind::Transposed => ((input - 1) * stride + reach + self.output_padding[axis])
                    .checked_sub(before + after),
            };
            match size {
                Some(size) if size > 0 => shape.push(size),
                _ => {
                    return invalid(format!(
                        "the kernel (reach {reach} on axis {axis}) does not fit an input of \
                         {:?} with padding {:?}",
                        self.input_size, self.padding
                    ));
                }
            }
        }
        Ok(shape)
    }

    fn check(&self, weight: &[usize]) -> Result<(), SpectralNormError> {
        let n = weight.len().saturating_sub(2);
        if !(1..=3).contains(&n) {
            return invalid(format!(
                "a convolution weight has 3 to 5 axes, not shape {weight:?}"
            ));
        }
        let lists = [
            self.input_size.len(),
            self.stride.len(),
            self.padding.len(),
            self.dilation.len(),
            self.output_padding.len(),
        ];
        if lists.iter().any(|&len| len != n) {
            return invalid(format!(
                "a weight of shape {weight:?} has {n} spatial axes, but the geometry lists \
                 (input size, stride, padding, dilation, output padding) have {lists:?}"
            ));
        }
        if weight.contains(&0) || self.input_size.contains(&0) {
            return invalid(format!(
                "zero-sized weight {weight:?} or input {:?}",
                self.input_size
            ));
        }
        if self.stride.contains(&0) || self.dilation.contains(&0) || self.groups == 0 {
            return invalid("stride, dilation and groups must be non-zero".into());
        }
        // Conv: the output channels; transposed: the input channels (the weight's axis 0
        // either way) split into the groups, the other side's are axis 1 per group.
        if !weight[0].is_multiple_of(self.groups) {
            return invalid(format!(
                "{} channels do not divide into {} groups",
                weight[0], self.groups
            ));
        }
        if self.kind == ConvKind::Transposed {
            if self.padding.iter().any(|(before, after)| before != after) {
                return invalid(format!(
                    "a transposed convolution's padding must be symmetric, got {:?}",
                    self.padding
                ));
            }
            let too_large = (0..n).any(|axis| {
                self.output_padding[axis] >= self.stride[axis].max(self.dilation[axis])
            });
            if too_large {
                return invalid(format!(
                    "output padding {:?} must be below the stride {:?} or the dilation {:?}",
                    self.output_padding, self.stride, self.dilation
                ));
            }
        } else if self.output_padding.iter().any(|&p| p != 0) {
            return invalid("output padding applies to transposed convolutions only".into());
        }
        Ok(())
    }

    /// The map on one sample: `[1, channels, spatial…]` in, `[1, channels, spatial…]` out.
    pub(crate) fn apply<const D: usize>(&self, weight: Tensor<D>, x: Tensor<D>) -> Tensor<D> {
        match self.kind {
            ConvKind::Conv => self.convolve(weight, x),
            ConvKind::Transposed => self.conv_transpose(weight, x, &self.output_padding),
        }
    }

    /// The adjoint map: `⟨apply(x), y⟩ = ⟨adjoint(y), x⟩`.
    pub(crate) fn adjoint<const D: usize>(&self, weight: Tensor<D>, y: Tensor<D>) -> Tensor<D> {
        match self.kind {
            // A conv transposed back to the padded input's size, cropped to the input.
            ConvKind::Conv => {
                let kernel = &weight.dims()[2..];
                let extra: Vec<usize> = (0..kernel.len())
                    .map(|axis| {
                        let (before, after) = self.padding[axis];
                        let padded = self.input_size[axis] + before + after;
                        let reach = self.dilation[axis] * (kernel[axis] - 1) + 1;
                        (padded - reach) % self.stride[axis]
                    })
                    .collect();
                let unpadded = self.conv_transpose_unpadded(weight, y, &extra);
                let mut ranges = vec![0..1, 0..unpadded.dims()[1]];
                for (axis, &(before, _)) in self.padding.iter().enumerate() {
                    ranges.push(before..before + self.input_size[axis]);
                }
                let ranges: [core::ops::Range<usize>; D] =
                    core::array::from_fn(|axis| ranges[axis].clone());
                unpadded.slice(ranges)
            }
            // The conv with the same geometry (the output padding only lengthens the output).
            ConvKind::Transposed => self.convolve(weight, y),
        }
    }

    fn convolve<const D: usize>(&self, weight: Tensor<D>, x: Tensor<D>) -> Tensor<D> {
        // The same call at each spatial rank: the functions and options differ in rank only.
        macro_rules! at_rank {
            ($conv:ident) => {
                back($conv(
                    rank(x),
                    rank(weight),
                    None,
                    ConvOptions::new_with_padding(
                        arr(&self.stride),
                        arr(&self.padding),
                        arr(&self.dilation),
                        self.groups,
                    ),
                ))
            };
        }
        match D {
            3 => at_rank!(conv1d),
            4 => at_rank!(conv2d),
            _ => at_rank!(conv3d),
        }
    }

    /// The transposed convolution with this geometry's (symmetric) padding.
    fn conv_transpose<const D: usize>(
        &self,
        weight: Tensor<D>,
        x: Tensor<D>,
        output_padding: &[usize],
    ) -> Tensor<D> {
        let padding: Vec<usize> = self.padding.iter().map(|&(before, _)| before).collect();
        self.conv_transpose_with(weight, x, &padding, output_padding)
    }

    /// The transposed convolution without padding (the adjoint of a padded conv crops after).
    fn conv_transpose_unpadded<const D: usize>(
        &self,
        weight: Tensor<D>,
        y: Tensor<D>,
        output_padding: &[usize],
    ) -> Tensor<D> {
        self.conv_transpose_with(weight, y, &vec![0; output_padding.len()], output_padding)
    }

    fn conv_transpose_with<const D: usize>(
        &self,
        weight: Tensor<D>,
        x: Tensor<D>,
        padding: &[usize],
        output_padding: &[usize],
    ) -> Tensor<D> {
        macro_rules! at_rank {
            ($conv_transpose:ident) => {
                back($conv_transpose(
                    rank(x),
                    rank(weight),
                    None,
                    ConvTransposeOptions::new(
                        arr(&self.stride),
                        arr(padding),
                        arr(output_padding),
                        arr(&self.dilation),
                        self.groups,
                    ),
                ))
            };
        }
        match D {
            3 => at_rank!(conv_transpose1d),
            4 => at_rank!(conv_transpose2d),
            _ => at_rank!(conv_transpose3d),
        }
    }
}

fn invalid<T>(why: String) -> Result<T, SpectralNormError> {
    Err(SpectralNormError::InvalidGeometry { why })
}

/// A list as an array of the length the call site needs (checked by `ConvOperator::check`).
fn arr<T: Copy + Default, const N: usize>(values: &[T]) -> [T; N] {
    let mut out = [T::default(); N];
    out.copy_from_slice(&values[..N]);
    out
}

/// `tensor` as a tensor of rank `R` (the same rank: the caller matched on it).
fn rank<const D: usize, const R: usize>(tensor: Tensor<D>) -> Tensor<R> {
    let dims = tensor.dims();
    tensor.reshape(arr::<usize, R>(&dims))
}

/// A rank-`R` result as rank `D` again.
fn back<const R: usize, const D: usize>(tensor: Tensor<R>) -> Tensor<D> {
    rank(tensor)
}

/// The largest singular value of the convolution `operator` with `weight` (no bias) on
/// inputs of its size, by power iteration through the convolution and its adjoint from a
/// random start, until two successive estimates differ by at most `tolerance` relative or
/// `max_iterations` steps. Each estimate is `‖A v‖` for a unit `v`, so never above the true
/// norm (up to rounding). Computed without gradient.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::{ConvOperator, conv_operator_norm};
///
/// // A 1×1 convolution is its channel matrix at every pixel: norm 3.
/// let device = Device::flex();
/// let w = Tensor::<4>::from_data([[[[3.0]], [[0.0]]], [[[0.0]], [[1.0]]]], &device);
/// let outcome = conv_operator_norm(w, &ConvOperator::conv(vec![4, 4]), 1e-9, 1000).unwrap();
/// assert!((outcome.sigma - 3.0).abs() < 1e-5);
/// ```
///
/// # Errors
///
/// [`SpectralNormError::InvalidGeometry`] as [`ConvOperator::output_shape`];
/// [`SpectralNormError::ZeroMaxIterations`] and [`SpectralNormError::InvalidTolerance`] as
/// [`power_iteration`](crate::power_iteration).
pub fn conv_operator_norm<const D: usize>(
    weight: Tensor<D>,
    operator: &ConvOperator,
    tolerance: f64,
    max_iterations: usize,
) -> Result<Convergence, SpectralNormError> {
    let len: usize = operator.input_shape(&weight.dims())?.iter().product();
    let options = (&weight.device(), weight.dtype());
    let start = Tensor::<1>::random([len], Distribution::Normal(0.0, 1.0), options);
    conv_operator_norm_from(weight, operator, start, tolerance, max_iterations)
}

/// [`conv_operator_norm`] from a given start `v` (one input sample, flattened; any non-zero
/// length-compatible vector), for runs that must not draw from the device's generator.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::{ConvOperator, conv_operator_norm_from};
///
/// let device = Device::flex();
/// let w = Tensor::<3>::from_data([[[1.0, 1.0]]], &device); // Conv1d 1 → 1, kernel 2
/// let start = Tensor::<1>::ones([8], &device);
/// let outcome = conv_operator_norm_from(w, &ConvOperator::conv(vec![8]), start, 1e-12, 5000);
/// // x ↦ x[i] + x[i + 1] on 8 samples: a 7 × 8 band of ones, of norm 2·cos(π/16).
/// let exact = 2.0 * (std::f64::consts::PI / 16.0).cos();
/// assert!((outcome.unwrap().sigma - exact).abs() < 1e-6);
/// ```
///
/// # Errors
///
/// As [`conv_operator_norm`], and [`SpectralNormError::VectorLength`] for a start whose
/// length is not an input sample's.
pub fn conv_operator_norm_from<const D: usize>(
    weight: Tensor<D>,
    operator: &ConvOperator,
    start: Tensor<1>,
    tolerance: f64,
    max_iterations: usize,
) -> Result<Convergence, SpectralNormError> {
    check_limits(tolerance, max_iterations)?;
    let dims = weight.dims();
    let input: Vec<usize> = [vec![1], operator.input_shape(&dims)?].concat();
    operator.output_shape(&dims)?;
    let expected = input.iter().product();
    if start.dims() != [expected] {
        return Err(SpectralNormError::VectorLength {
            vector: "v",
            expected,
            got: start.dims()[0],
        });
    }
    let weight = widen(weight.without_autodiff());
    let start = start
        .without_autodiff()
        .to_device(&weight.device())
        .cast(weight.dtype())
        .reshape(arr::<usize, D>(&input));
    let unit = |x: Tensor<D>| {
        let norm = x.clone().square().sum().sqrt().into_scalar::<f64>();
        (x.div_scalar(norm.max(1e-300)), norm)
    };
    let (mut v, _) = unit(start);
    let outcome = until_converged(tolerance, max_iterations, || {
        let (u, sigma) = unit(operator.apply(weight.clone(), v.clone()));
        (v, _) = unit(operator.adjoint(weight.clone(), u));
        sigma
    });
    Ok(outcome)
}

/// `σ = ⟨u, conv(v)⟩` for vectors of an operator-mode spectral norm: `u` one output sample
/// and `v` one input sample of `operator`, flattened (what the operator mode stores). This is
/// the σ its evaluation divides by, for a checkpoint's `u` and `v` read back without the
/// model.
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::{ConvOperator, conv_sigma_from_vectors};
///
/// let device = Device::flex();
/// let w = Tensor::<4>::ones([1, 1, 1, 1], &device) * 2.0;
/// let op = ConvOperator::conv(vec![2, 2]);
/// let (u, v) = (Tensor::<1>::ones([4], &device) / 2.0, Tensor::<1>::ones([4], &device) / 2.0);
/// assert!((conv_sigma_from_vectors(w, &op, u, v).unwrap() - 2.0).abs() < 1e-6);
/// ```
///
/// # Errors
///
/// [`SpectralNormError::InvalidGeometry`] as [`ConvOperator::output_shape`];
/// [`SpectralNormError::VectorLength`] for a `u` or `v` of another length than a sample's.
pub fn conv_sigma_from_vectors<const D: usize>(
    weight: Tensor<D>,
    operator: &ConvOperator,
    u: Tensor<1>,
    v: Tensor<1>,
) -> Result<f64, SpectralNormError> {
    let dims = weight.dims();
    let input: Vec<usize> = [vec![1], operator.input_shape(&dims)?].concat();
    let output: Vec<usize> = [vec![1], operator.output_shape(&dims)?].concat();
    for (vector, shape, got) in [("u", &output, u.dims()[0]), ("v", &input, v.dims()[0])] {
        let expected = shape.iter().product();
        if got != expected {
            return Err(SpectralNormError::VectorLength {
                vector,
                expected,
                got,
            });
        }
    }
    let weight = weight.without_autodiff();
    let v = v.without_autodiff().reshape(arr::<usize, D>(&input));
    let image = operator.apply(weight, v).flatten::<1>(0, D - 1);
    Ok((image * u.without_autodiff()).sum().into_scalar::<f64>())
}

//! The operator norm of convolutions against an independent reference: the dense matrix of each
//! layer's own forward (Burn's `Conv*`/`ConvTranspose*` modules, bias off), built by pushing
//! every basis vector through it, and its largest singular value by nalgebra's SVD in f64.

mod common;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::*;
use burn::nn::{PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::DType;
use common::*;
use nalgebra::DMatrix;
use spectral_norm::{ConvOperator, SpectralNormError, conv_operator_norm};

/// Casts every float parameter of a module to f64.
struct ToF64;

impl ModuleMapper for ToF64 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, _) = param.consume();
        Param::initialized(id, tensor.cast(DType::F64))
    }
}

/// The dense matrix of `forward` on inputs of `input` (one sample), columns by basis vector.
fn dense<const D: usize>(
    input: [usize; D],
    forward: impl Fn(Tensor<D>) -> Tensor<D>,
) -> DMatrix<f64> {
    let device = Device::flex();
    let n: usize = input.iter().product();
    let mut columns = Vec::new();
    for i in 0..n {
        let mut basis = vec![0.0; n];
        basis[i] = 1.0;
        let x = Tensor::<D>::from_data(TensorData::new(basis, input), (&device, DType::F64));
        columns.push(values(forward(x)));
    }
    DMatrix::from_fn(columns[0].len(), n, |r, c| columns[c][r])
}

/// Checks the estimate against the SVD: within 1e-3 relative, never above.
fn check(name: &str, weight_dims: Vec<usize>, svd: f64, estimate: f64) {
    assert!(
        (estimate - svd).abs() <= 1e-3 * svd && estimate <= svd * (1.0 + 1e-9),
        "{name} {weight_dims:?}: estimate {estimate} vs SVD {svd}"
    );
}

fn f64_weight<const D: usize>(param: Tensor<D>) -> Tensor<D> {
    param.without_autodiff().cast(DType::F64)
}

#[test]
fn conv1d_2d_3d_match_the_dense_svd() {
    let device = Device::flex();
    device.seed(3);
    // Conv1d: stride 2, asymmetric padding, dilation 2, groups 2.
    let conv = Conv1dConfig::new(4, 6, 3)
        .with_stride(2)
        .with_padding(PaddingConfig1d::Explicit(1, 2))
        .with_dilation(2)
        .with_groups(2)
        .with_bias(false)
        .init(&device);
    let conv = conv.map(&mut ToF64).valid();
    let svd = dense([1, 4, 9], |x| conv.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::conv(vec![9])
        .with_stride(vec![2])
        .with_padding(vec![(1, 2)])
        .with_dilation(vec![2])
        .with_groups(2);
    let weight = f64_weight(conv.weight.val());
    let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
    check("conv1d", weight.dims().to_vec(), svd, estimate.sigma);

    // Conv2d: 3×3, stride 1 and 2, symmetric and asymmetric padding.
    for (stride, padding) in [(1, (1, 1, 1, 1)), (2, (1, 0, 2, 1)), (3, (0, 0, 0, 0))] {
        let (top, left, bottom, right) = padding;
        let conv = Conv2dConfig::new([2, 3], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(top, left, bottom, right))
            .with_bias(false)
            .init(&device)
            .map(&mut ToF64)
            .valid();
        let svd = dense([1, 2, 6, 7], |x| conv.forward(x))
            .singular_values()
            .max();
        let op = ConvOperator::conv(vec![6, 7])
            .with_stride(vec![stride; 2])
            .with_padding(vec![(top, bottom), (left, right)]);
        let weight = f64_weight(conv.weight.val());
        let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
        check("conv2d", weight.dims().to_vec(), svd, estimate.sigma);
    }

    // Conv3d: 2×2×2, stride 1, padding 1.
    let conv = Conv3dConfig::new([2, 2], [2, 2, 2])
        .with_padding(PaddingConfig3d::Explicit(1, 1, 1))
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 2, 3, 3, 3], |x| conv.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::conv(vec![3, 3, 3]).with_padding(vec![(1, 1); 3]);
    let weight = f64_weight(conv.weight.val());
    let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
    check("conv3d", weight.dims().to_vec(), svd, estimate.sigma);
}

#[test]
fn transposed_convolutions_match_the_dense_svd() {
    let device = Device::flex();
    device.seed(4);
    let t1 = ConvTranspose1dConfig::new([4, 6], 3)
        .with_stride(2)
        .with_padding(1)
        .with_padding_out(1)
        .with_groups(2)
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 4, 5], |x| t1.forward(x)).singular_values().max();
    let op = ConvOperator::transposed(vec![5])
        .with_stride(vec![2])
        .with_padding(vec![(1, 1)])
        .with_output_padding(vec![1])
        .with_groups(2);
    let weight = f64_weight(t1.weight.val());
    let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
    check(
        "conv_transpose1d",
        weight.dims().to_vec(),
        svd,
        estimate.sigma,
    );

    let t2 = ConvTranspose2dConfig::new([3, 2], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_dilation([1, 2])
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 3, 4, 3], |x| t2.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::transposed(vec![4, 3])
        .with_stride(vec![2, 2])
        .with_padding(vec![(1, 1); 2])
        .with_dilation(vec![1, 2]);
    let weight = f64_weight(t2.weight.val());
    let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
    check(
        "conv_transpose2d",
        weight.dims().to_vec(),
        svd,
        estimate.sigma,
    );

    let t3 = ConvTranspose3dConfig::new([2, 2], [2, 2, 2])
        .with_stride([2, 1, 1])
        .with_bias(false)
        .init(&device)
        .map(&mut ToF64)
        .valid();
    let svd = dense([1, 2, 2, 3, 2], |x| t3.forward(x))
        .singular_values()
        .max();
    let op = ConvOperator::transposed(vec![2, 3, 2]).with_stride(vec![2, 1, 1]);
    let weight = f64_weight(t3.weight.val());
    let estimate = conv_operator_norm(weight.clone(), &op, 1e-13, 50_000).unwrap();
    check(
        "conv_transpose3d",
        weight.dims().to_vec(),
        svd,
        estimate.sigma,
    );
}

/// The operator norm differs from the matrix-view σ: here larger, for a 3×3 kernel on an
/// 8×8 input with padding 1 (the reason the operator mode exists).
#[test]
fn the_operator_norm_is_not_the_matrix_views() {
    let device = Device::flex();
    let weight = f64_tensor(pseudo_random(4 * 2 * 9, 5), [4, 2, 3, 3], &device);
    let op = ConvOperator::conv(vec![8, 8]).with_padding(vec![(1, 1); 2]);
    let operator = conv_operator_norm(weight.clone(), &op, 1e-12, 50_000)
        .unwrap()
        .sigma;
    let matrix = top_singular_value(&matrix_view(&values(weight), &[4, 2, 3, 3], 0));
    assert!(
        operator > 1.05 * matrix,
        "operator {operator} vs matrix view {matrix}"
    );
}

#[test]
fn geometry_that_does_not_fit_is_a_typed_error() {
    let device = Device::flex();
    let weight = f64_tensor(pseudo_random(4 * 2 * 9, 6), [4, 2, 3, 3], &device);
    let refused = |op: ConvOperator| {
        matches!(
            conv_operator_norm(weight.clone(), &op, 1e-9, 100),
            Err(SpectralNormError::InvalidGeometry { .. })
        )
    };
    assert!(refused(ConvOperator::conv(vec![2, 2]))); // kernel larger than the input
    assert!(refused(ConvOperator::conv(vec![8]))); // one axis for a 2-D kernel
    assert!(refused(
        ConvOperator::conv(vec![8, 8]).with_stride(vec![0, 1])
    ));
    assert!(refused(ConvOperator::conv(vec![8, 8]).with_groups(3))); // 4 channels
    assert!(refused(
        ConvOperator::transposed(vec![4, 4]).with_padding(vec![(1, 0), (1, 1)])
    ));
    assert!(refused(
        ConvOperator::transposed(vec![4, 4]).with_output_padding(vec![1, 1])
    )); // not below stride 1
    assert!(matches!(
        conv_operator_norm(weight.clone(), &ConvOperator::conv(vec![8, 8]), 1e-9, 0),
        Err(SpectralNormError::ZeroMaxIterations)
    ));
}

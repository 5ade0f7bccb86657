//! Burn's convolution layers as [`ConvOperator`]s: the geometry each layer applies its weight
//! with, read from the layer, for inputs of a given spatial size.

use burn::nn::conv::{
    Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, DeformConv2d,
};
use burn::nn::{PaddingConfig1d, PaddingConfig2d, PaddingConfig3d};

use crate::operator::{ConvKind, ConvOperator};

/// A layer that applies its `weight` as a convolution: Burn's `Conv1d`/`2d`/`3d` and
/// `ConvTranspose1d`/`2d`/`3d`, and `DeformConv2d`'s regular part (the map at zero offsets
/// and no mask: a convolution with its weight groups).
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::nn::PaddingConfig2d;
/// use burn::prelude::*;
/// use spectral_norm::ConvLayer;
///
/// let conv = Conv2dConfig::new([3, 8], [3, 3])
///     .with_stride([2, 2])
///     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
///     .init(&Device::flex());
/// let op = conv.conv_operator(vec![16, 16]);
/// assert_eq!((op.stride.clone(), op.padding.clone()), (vec![2, 2], vec![(1, 1), (1, 1)]));
/// ```
pub trait ConvLayer {
    /// The map `x ↦ layer(x) − bias` on inputs of `input_size`, as the layer computes it.
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator;
}

/// Burn's `Same` padding (it sizes by the kernel, not its dilated reach): `(before, after)`.
fn same(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn conv(
    input_size: Vec<usize>,
    stride: &[usize],
    padding: Vec<(usize, usize)>,
    dilation: &[usize],
    groups: usize,
) -> ConvOperator {
    ConvOperator {
        kind: ConvKind::Conv,
        stride: stride.to_vec(),
        output_padding: vec![0; input_size.len()],
        padding,
        dilation: dilation.to_vec(),
        groups,
        input_size,
    }
}

fn transposed(
    input_size: Vec<usize>,
    stride: &[usize],
    padding: &[usize],
    output_padding: &[usize],
    dilation: &[usize],
    groups: usize,
) -> ConvOperator {
    ConvOperator {
        kind: ConvKind::Transposed,
        stride: stride.to_vec(),
        padding: padding.iter().map(|&p| (p, p)).collect(),
        output_padding: output_padding.to_vec(),
        dilation: dilation.to_vec(),
        groups,
        input_size,
    }
}

/// The entry of `input_size` for `axis`, 1 where the list is too short (refused later by
/// [`ConvOperator`]'s checks, which see the list as given).
fn size(input_size: &[usize], axis: usize) -> usize {
    input_size.get(axis).copied().unwrap_or(1)
}

impl ConvLayer for Conv1d {
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
        let padding = match self.padding {
            PaddingConfig1d::Valid => (0, 0),
            PaddingConfig1d::Same => same(self.kernel_size, self.stride, size(&input_size, 0)),
            PaddingConfig1d::Explicit(before, after) => (before, after),
        };
        conv(
            input_size,
            &[self.stride],
            vec![padding],
            &[self.dilation],
            self.groups,
        )
    }
}

impl ConvLayer for Conv2d {
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
        let padding = padding_2d(&self.padding, self.kernel_size, self.stride, &input_size);
        conv(
            input_size,
            &self.stride,
            padding,
            &self.dilation,
            self.groups,
        )
    }
}

/// 2-D padding as Burn's 2-D layers compute it: `((top, bottom), (left, right))`.
fn padding_2d(
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    stride: [usize; 2],
    input_size: &[usize],
) -> Vec<(usize, usize)> {
    match *padding {
        PaddingConfig2d::Valid => vec![(0, 0); 2],
        PaddingConfig2d::Same => (0..2)
            .map(|axis| same(kernel[axis], stride[axis], size(input_size, axis)))
            .collect(),
        PaddingConfig2d::Explicit(top, left, bottom, right) => vec![(top, bottom), (left, right)],
    }
}

impl ConvLayer for DeformConv2d {
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
        let padding = padding_2d(&self.padding, self.kernel_size, self.stride, &input_size);
        conv(
            input_size,
            &self.stride,
            padding,
            &self.dilation,
            self.weight_groups,
        )
    }
}

impl ConvLayer for Conv3d {
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
        let padding = match self.padding {
            PaddingConfig3d::Valid => vec![(0, 0); 3],
            PaddingConfig3d::Same => (0..3)
                .map(|axis| {
                    same(
                        self.kernel_size[axis],
                        self.stride[axis],
                        size(&input_size, axis),
                    )
                })
                .collect(),
            PaddingConfig3d::Explicit(d, h, w) => vec![(d, d), (h, h), (w, w)],
        };
        conv(
            input_size,
            &self.stride,
            padding,
            &self.dilation,
            self.groups,
        )
    }
}

impl ConvLayer for ConvTranspose1d {
    fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
        transposed(
            input_size,
            &[self.stride],
            &[self.padding],
            &[self.padding_out],
            &[self.dilation],
            self.groups,
        )
    }
}

/// The 2-D and 3-D transposed convolutions keep their geometry in arrays of the same names.
macro_rules! transposed_layer {
    ($layer:ty) => {
        impl ConvLayer for $layer {
            fn conv_operator(&self, input_size: Vec<usize>) -> ConvOperator {
                transposed(
                    input_size,
                    &self.stride,
                    &self.padding,
                    &self.padding_out,
                    &self.dilation,
                    self.groups,
                )
            }
        }
    };
}

transposed_layer!(ConvTranspose2d);
transposed_layer!(ConvTranspose3d);

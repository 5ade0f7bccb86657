//! A certified Lipschitz upper bound for a feed-forward stack: the product of its layers'
//! certified bounds, with every layer's input checked against the previous layer's output so
//! that only maps that really compose are multiplied.

use burn::prelude::*;

use crate::error::SpectralNormError;
use crate::operator::{ConvKind, ConvOperator};
use crate::operator_bound::{conv_operator_bound, matrix_norm_bound};

/// One layer of a [`FeedForwardBound`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerBound {
    /// The name it was added under.
    pub name: String,
    /// Its certified upper bound (or the constant given for a [`FeedForwardBound::lipschitz`]
    /// layer).
    pub bound: f64,
    /// The shape of one sample it outputs: `[channels, spatial…]`, or `[features]`.
    pub output: Vec<usize>,
}

/// The layers of a feed-forward network in order, each bounded from above, and their product:
/// a certified upper bound on the network's Lipschitz constant (in the ℓ2 norm, on inputs of
/// the size given), provided whatever sits between the layers is 1-Lipschitz (ReLU, leaky
/// ReLU, tanh, sigmoid and other elementwise activations with slope at most 1 are) and there
/// are no skip connections. Anything else with a known constant (average pooling, a scaled
/// activation) goes in as [`lipschitz`](Self::lipschitz).
///
/// ```
/// use burn::prelude::*;
/// use spectral_norm::{ConvOperator, FeedForwardBound};
///
/// let device = Device::flex();
/// let conv = Tensor::<4>::ones([2, 1, 3, 3], &device) / 9.0; // two 3×3 averages
/// let fc = Tensor::<2>::ones([2 * 4 * 4, 1], &device) / 32.0; // Burn's layout: [in, out]
/// let mut net = FeedForwardBound::new(vec![1, 8, 8]);
/// let op = ConvOperator::conv(vec![8, 8]).with_stride(vec![2, 2]).with_padding(vec![(1, 1); 2]);
/// net.conv("conv", conv, &op).unwrap();
/// net.linear("fc", fc).unwrap();
/// let product = net.layers()[0].bound * net.layers()[1].bound;
/// assert_eq!(net.bound(), product);
/// // The next layer must take what the last one gives: 1 feature, not 3.
/// assert!(net.linear("wrong", Tensor::<2>::ones([3, 1], &device)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FeedForwardBound {
    input: Vec<usize>,
    layers: Vec<LayerBound>,
}

impl FeedForwardBound {
    /// An empty stack taking samples of `input`: `[channels, spatial…]`, or `[features]`.
    pub fn new(input: Vec<usize>) -> Self {
        Self {
            input,
            layers: Vec::new(),
        }
    }

    /// The shape of one sample the stack outputs so far.
    pub fn output(&self) -> &[usize] {
        self.layers
            .last()
            .map_or(&self.input, |layer| &layer.output)
    }

    /// Adds a convolution (`weight` in Burn's layout for `operator`'s kind) bounded by
    /// [`conv_operator_bound`](crate::conv_operator_bound).
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidGeometry`] if the layer does not take the current output
    /// (channels and spatial size), or as [`ConvOperator::output_shape`]; nothing is added.
    pub fn conv<const D: usize>(
        &mut self,
        name: &str,
        weight: Tensor<D>,
        operator: &ConvOperator,
    ) -> Result<&LayerBound, SpectralNormError> {
        let dims = weight.dims();
        let output = operator.output_shape(&dims)?;
        let channels = match operator.kind {
            ConvKind::Conv => dims[1] * operator.groups,
            ConvKind::Transposed => dims[0],
        };
        let takes: Vec<usize> = [vec![channels], operator.input_size.clone()].concat();
        self.check(name, &takes)?;
        let bound = conv_operator_bound(weight, operator)?;
        Ok(self.push(name, bound, output))
    }

    /// Adds a Linear layer, `weight` in Burn's layout `[in, out]` (the current output is
    /// flattened into it), bounded by [`matrix_norm_bound`](crate::matrix_norm_bound).
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidGeometry`] if `in` is not the current output's size.
    pub fn linear(
        &mut self,
        name: &str,
        weight: Tensor<2>,
    ) -> Result<&LayerBound, SpectralNormError> {
        let [inputs, outputs] = weight.dims();
        self.check(name, &[inputs])?;
        let bound = matrix_norm_bound(weight);
        Ok(self.push(name, bound, vec![outputs]))
    }

    /// Adds any other layer by its Lipschitz constant and the shape it outputs (a 2×2 average
    /// pooling with stride 2 has constant 1/2: each output averages 4 inputs of its own).
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::InvalidGeometry`] for a constant that is negative or NaN.
    pub fn lipschitz(
        &mut self,
        name: &str,
        constant: f64,
        output: Vec<usize>,
    ) -> Result<&LayerBound, SpectralNormError> {
        if constant.is_nan() || constant < 0.0 {
            return Err(SpectralNormError::InvalidGeometry {
                why: format!("{name}: a Lipschitz constant is ≥ 0, not {constant}"),
            });
        }
        Ok(self.push(name, constant, output))
    }

    /// The layers added so far, in order.
    pub fn layers(&self) -> &[LayerBound] {
        &self.layers
    }

    /// The certified bound on the stack's Lipschitz constant: the product of its layers'.
    pub fn bound(&self) -> f64 {
        self.layers.iter().map(|layer| layer.bound).product()
    }

    fn check(&self, name: &str, takes: &[usize]) -> Result<(), SpectralNormError> {
        let gives = self.output();
        let fits = if takes.len() == 1 {
            takes[0] == gives.iter().product::<usize>()
        } else {
            takes == gives
        };
        if fits {
            Ok(())
        } else {
            Err(SpectralNormError::InvalidGeometry {
                why: format!("{name} takes {takes:?}, but the stack gives {gives:?}"),
            })
        }
    }

    fn push(&mut self, name: &str, bound: f64, output: Vec<usize>) -> &LayerBound {
        self.layers.push(LayerBound {
            name: name.to_string(),
            bound,
            output,
        });
        &self.layers[self.layers.len() - 1]
    }
}

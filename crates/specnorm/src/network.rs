//! What a checkpoint does not carry: the order of a feed-forward network's layers and each
//! convolution's geometry, from a small JSON description. With it, `inspect` reports every
//! layer's operator norm and certified bound and their product (the network's certified
//! Lipschitz bound), and `bake` bakes operator-mode weights (whose u and v are a sample, not a
//! matrix axis).
//!
//! The format, with an example, is in `docs/cli.md` (`--network`): a sample's input shape and
//! the layers in order, each a weight by key with its convolution options, or any other layer
//! by its Lipschitz constant and output shape.
//! Between layers only 1-Lipschitz maps (ReLU and the like) and no skip connections.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use serde_json::Value;
use spectral_norm::format::escaped;
use spectral_norm::{ConvOperator, FeedForwardBound};

use crate::sigma::{POWER_MAX_ITERATIONS, POWER_TOLERANCE};
use crate::tensors::NamedTensor;
use crate::weights::{Normalized, flex, gamma_of, normalized, sigma_used, spectral_norm_of};

/// The largest description read: a network of thousands of layers is a few hundred KiB.
const MAX_DESCRIPTION_BYTES: u64 = 1 << 20;

/// One layer of a [`Network`].
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A stored weight, with a convolution's options (ignored for a Linear one).
    Weight {
        /// Its key.
        key: String,
        /// Convolution options, on an input size filled in by the walk.
        conv: ConvOptions,
    },
    /// Any other layer, by its Lipschitz constant.
    Lipschitz {
        /// A name for the report.
        name: String,
        /// The constant.
        constant: f64,
        /// The shape of one sample it outputs.
        output: Vec<usize>,
    },
}

/// A convolution's options in a description; lists empty for the defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConvOptions {
    /// Stride per axis.
    pub stride: Vec<usize>,
    /// Padding per axis.
    pub padding: Vec<(usize, usize)>,
    /// Dilation per axis.
    pub dilation: Vec<usize>,
    /// Channel groups (0 for the default, 1).
    pub groups: usize,
    /// A transposed convolution.
    pub transpose: bool,
    /// Output padding per axis.
    pub output_padding: Vec<usize>,
}

impl ConvOptions {
    /// The operator on inputs of `input_size`.
    pub fn operator(&self, input_size: Vec<usize>) -> ConvOperator {
        let axes = input_size.len();
        let or = |list: &[usize], default| {
            if list.is_empty() {
                vec![default; axes]
            } else {
                list.to_vec()
            }
        };
        let base = if self.transpose {
            ConvOperator::transposed(input_size)
        } else {
            ConvOperator::conv(input_size)
        };
        let padding = if self.padding.is_empty() {
            vec![(0, 0); axes]
        } else {
            self.padding.clone()
        };
        base.with_stride(or(&self.stride, 1))
            .with_padding(padding)
            .with_dilation(or(&self.dilation, 1))
            .with_groups(self.groups.max(1))
            .with_output_padding(or(&self.output_padding, 0))
    }
}

/// A feed-forward network's description.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// One input sample's shape.
    pub input: Vec<usize>,
    /// The layers in order.
    pub layers: Vec<Layer>,
}

/// What [`report`] returns: a row per layer, and the network's certified bound.
pub type NetworkReport = (Vec<LayerReport>, f64);

/// One row of [`report`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerReport {
    /// The key or name.
    pub name: String,
    /// `conv`, `linear` or `lipschitz`.
    pub kind: &'static str,
    /// Whether the weight carries spectral norm (the bound is then of `W / σ`).
    pub normalized: bool,
    /// The operator's geometry, for a convolution.
    pub operator: Option<ConvOperator>,
    /// Converged power-iteration estimate of the layer's norm (never above it).
    pub estimate: f64,
    /// The certified upper bound.
    pub bound: f64,
    /// One output sample's shape.
    pub output: Vec<usize>,
}

fn sizes(value: &Value, what: &str) -> Result<Vec<usize>> {
    let list = value
        .as_array()
        .ok_or_else(|| anyhow!("{what}: a list of sizes"))?;
    list.iter()
        .map(|v| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| anyhow!("{what}: {} is not a size", escaped(&v.to_string())))
        })
        .collect()
}

fn padding(value: &Value) -> Result<Vec<(usize, usize)>> {
    let list = value
        .as_array()
        .ok_or_else(|| anyhow!("padding: a list, one entry per axis"))?;
    list.iter()
        .map(|entry| match entry {
            Value::Array(_) => match sizes(entry, "padding")?.as_slice() {
                [before, after] => Ok((*before, *after)),
                _ => bail!(
                    "padding: [before, after], not {}",
                    escaped(&entry.to_string())
                ),
            },
            _ => {
                let p = sizes(&Value::Array(vec![entry.clone()]), "padding")?[0];
                Ok((p, p))
            }
        })
        .collect()
}

fn layer(value: &Value, index: usize) -> Result<Layer> {
    let object = value
        .as_object()
        .ok_or_else(|| anyhow!("layer {index}: an object"))?;
    let optional = |name: &str| object.get(name).filter(|v| !v.is_null());
    if let Some(constant) = optional("lipschitz") {
        let constant = constant
            .as_f64()
            .ok_or_else(|| anyhow!("layer {index}: lipschitz is a number"))?;
        let output = optional("output").ok_or_else(|| anyhow!("layer {index}: output missing"))?;
        let name = optional("name")
            .and_then(Value::as_str)
            .unwrap_or("lipschitz");
        return Ok(Layer::Lipschitz {
            name: name.to_string(),
            constant,
            output: sizes(output, "output")?,
        });
    }
    let key = optional("key")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("layer {index}: a \"key\" or a \"lipschitz\" constant"))?;
    let list = |name: &str| optional(name).map_or(Ok(Vec::new()), |v| sizes(v, name));
    let groups = optional("groups").map_or(Ok(1), |v| {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| anyhow!("layer {index}: groups is a size"))
    })?;
    let conv = ConvOptions {
        stride: list("stride")?,
        padding: optional("padding").map_or(Ok(Vec::new()), padding)?,
        dilation: list("dilation")?,
        groups,
        transpose: optional("transpose")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        output_padding: list("output_padding")?,
    };
    Ok(Layer::Weight {
        key: key.to_string(),
        conv,
    })
}

impl Network {
    /// Parses a description.
    ///
    /// # Errors
    ///
    /// One line naming what is malformed.
    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).context("network description")?;
        let input = sizes(
            value
                .get("input")
                .ok_or_else(|| anyhow!("\"input\" missing"))?,
            "input",
        )?;
        let layers = value
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("\"layers\": a list"))?
            .iter()
            .enumerate()
            .map(|(i, v)| layer(v, i))
            .collect::<Result<_>>()?;
        Ok(Self { input, layers })
    }

    /// Reads and parses a description file (at most 1 MiB).
    ///
    /// # Errors
    ///
    /// Unreadable, too large or malformed, naming the file.
    pub fn read(path: &Path) -> Result<Self> {
        use std::io::Read;
        let where_ = escaped(&path.display().to_string());
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_DESCRIPTION_BYTES + 1).read_to_string(&mut text))
            .with_context(|| where_.clone())?;
        if text.len() as u64 > MAX_DESCRIPTION_BYTES {
            bail!("{where_}: a network description is at most {MAX_DESCRIPTION_BYTES} bytes");
        }
        Self::parse(&text).with_context(|| where_)
    }
}

/// The spectral-norm entry of `key` (its stored or its plain key), if normalized.
fn entry_of<'a>(sn: &'a [Normalized], key: &str) -> Option<&'a Normalized> {
    sn.iter().find(|n| n.weight == key || n.plain == key)
}

/// Adds one convolution to `stack`: its bound (by the library) and converged estimate.
fn add_conv<const D: usize>(
    stack: &mut FeedForwardBound,
    name: &str,
    weight: Tensor<D>,
    op: &ConvOperator,
) -> Result<(f64, f64), spectral_norm::SpectralNormError> {
    let start = crate::sigma::fixed_start(op.input_shape(&weight.dims())?.iter().product());
    let estimate = spectral_norm::conv_operator_norm_from(
        weight.clone(),
        op,
        start,
        POWER_TOLERANCE,
        POWER_MAX_ITERATIONS,
    )?;
    let bound = stack.conv(name, weight, op)?.bound;
    Ok((estimate.sigma, bound))
}

/// One layer of `network` placed on the weights of `tensors`, before anything is measured.
struct Step<'a> {
    layer: &'a Layer,
    /// The spectral-norm keys of a normalized weight.
    entry: Option<&'a Normalized>,
    /// The stored weight, for a weight layer.
    weight: Option<&'a NamedTensor>,
    /// A convolution's geometry on the input it receives.
    operator: Option<ConvOperator>,
    /// What the stack gives this layer.
    input: Vec<usize>,
    /// What this layer gives the next.
    output: Vec<usize>,
}

/// The layers of `network` in order with their weights, geometry and shapes: cheap (no norm
/// is computed), so `bake` and `report` share it.
fn plan<'a>(
    tensors: &'a BTreeMap<String, NamedTensor>,
    sn: &'a [Normalized],
    network: &'a Network,
    file: &str,
) -> Result<Vec<Step<'a>>> {
    let mut input = network.input.clone();
    let mut steps = Vec::new();
    for layer in &network.layers {
        let mut step = Step {
            layer,
            entry: None,
            weight: None,
            operator: None,
            input: input.clone(),
            output: Vec::new(),
        };
        match layer {
            Layer::Lipschitz { output, .. } => step.output = output.clone(),
            Layer::Weight { key, conv } => {
                let where_ = format!("{file}: {}", escaped(key));
                step.entry = entry_of(sn, key);
                let stored = step.entry.map_or(key.as_str(), |n| n.weight.as_str());
                let weight = tensors
                    .get(stored)
                    .ok_or_else(|| anyhow!("{where_}: no such weight"))?;
                step.weight = Some(weight);
                step.output = match weight.shape.as_slice() {
                    // Burn's and Paddle's layout is [in, out], PyTorch's [out, in].
                    [a, b] if *a == input.iter().product::<usize>() => vec![*b],
                    [a, b] if *b == input.iter().product::<usize>() => vec![*a],
                    [_, _] => bail!("{where_}: shape {:?} does not take {input:?}", weight.shape),
                    shape if (3..=5).contains(&shape.len()) => {
                        let op = conv.operator(input.get(1..).unwrap_or_default().to_vec());
                        let output = op
                            .output_shape(shape)
                            .map_err(|e| anyhow!("{where_}: {e}"))?;
                        step.operator = Some(op);
                        output
                    }
                    shape => bail!(
                        "{where_}: rank {}; a layer weight has rank 2 to 5",
                        shape.len()
                    ),
                };
            }
        }
        input = step.output.clone();
        steps.push(step);
    }
    Ok(steps)
}

/// Walks `network` over the weights of `tensors`: every layer's estimate and certified bound
/// (of the weight the layer uses: `γ · W / σ` when normalized) and the product of the bounds.
///
/// # Errors
///
/// One line naming the file and layer: a missing key, vectors that fit neither the weight
/// nor its geometry, a layer that does not take the previous one's output.
pub fn report(
    tensors: &BTreeMap<String, NamedTensor>,
    network: &Network,
    file: &str,
) -> Result<NetworkReport> {
    let sn = normalized(tensors);
    let mut stack = FeedForwardBound::new(network.input.clone());
    let mut rows = Vec::new();
    for step in plan(tensors, &sn, network, file)? {
        let (key, weight) = match (step.layer, step.weight) {
            (Layer::Lipschitz { name, constant, .. }, _) => {
                stack
                    .lipschitz(name, *constant, step.output.clone())
                    .map_err(|e| anyhow!("{file}: {e}"))?;
                rows.push(LayerReport {
                    name: name.clone(),
                    kind: "lipschitz",
                    normalized: false,
                    operator: None,
                    estimate: *constant,
                    bound: *constant,
                    output: step.output,
                });
                continue;
            }
            (Layer::Weight { key, .. }, Some(weight)) => (key, weight),
            (Layer::Weight { .. }, None) => unreachable!("plan finds every weight"),
        };
        let where_ = format!("{file}: {}", escaped(key));
        let mut weight = weight.clone();
        if let Some(entry) = step.entry {
            let (u, v) = (&tensors[&entry.u], &tensors[&entry.v]);
            let sigma = sigma_used(&where_, &weight, u, v, step.operator.as_ref())?;
            let gamma = gamma_of(tensors, entry, &where_)?;
            weight
                .values
                .iter_mut()
                .for_each(|x| *x = *x / sigma * gamma);
        }
        let fail = |e: spectral_norm::SpectralNormError| anyhow!("{where_}: {e}");
        let (estimate, bound) = match (weight.shape.len(), &step.operator) {
            (2, _) => {
                let mut matrix = flex::<2>(&weight);
                if weight.shape[0] != step.input.iter().product::<usize>() {
                    matrix = matrix.transpose();
                }
                let estimate = spectral_norm_of(&where_, &weight, 0)?.value;
                let bound = stack.linear(key, matrix).map_err(fail)?.bound;
                (estimate, bound)
            }
            (3, Some(op)) => add_conv(&mut stack, key, flex::<3>(&weight), op).map_err(fail)?,
            (4, Some(op)) => add_conv(&mut stack, key, flex::<4>(&weight), op).map_err(fail)?,
            (5, Some(op)) => add_conv(&mut stack, key, flex::<5>(&weight), op).map_err(fail)?,
            _ => unreachable!("plan admits ranks 2 to 5 only"),
        };
        rows.push(LayerReport {
            name: key.clone(),
            kind: if weight.shape.len() == 2 {
                "linear"
            } else {
                "conv"
            },
            normalized: step.entry.is_some(),
            operator: step.operator,
            estimate,
            bound,
            output: stack.output().to_vec(),
        });
    }
    Ok((rows, stack.bound()))
}

/// The geometry of every convolution of `network` by its stored key: what `bake` needs for
/// operator-mode weights (no norm is computed).
///
/// # Errors
///
/// A missing key, or a layer whose weight does not fit the shape it receives.
pub fn operators(
    tensors: &BTreeMap<String, NamedTensor>,
    network: &Network,
    file: &str,
) -> Result<BTreeMap<String, ConvOperator>> {
    let sn = normalized(tensors);
    Ok(plan(tensors, &sn, network, file)?
        .into_iter()
        .filter_map(|step| {
            let stored = match step.layer {
                Layer::Weight { key, .. } => step.entry.map_or(key.clone(), |n| n.weight.clone()),
                Layer::Lipschitz { .. } => return None,
            };
            step.operator.map(|op| (stored, op))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::bake;
    use burn::tensor::DType;
    use nalgebra::DMatrix;
    use spectral_norm::format::FloatDtype;
    use spectral_norm::{conv_operator_bound, conv_sigma_from_vectors};

    fn tensor(shape: Vec<usize>, seed: usize) -> NamedTensor {
        let n: usize = shape.iter().product();
        let values = (0..n)
            .map(|i| (((i + seed) * 37 % 23) as f64 - 11.0) / 10.0)
            .collect();
        NamedTensor {
            shape,
            values,
            dtype: FloatDtype::F64,
        }
    }

    /// An operator-mode conv (Burn's names; u an output sample 4×3×3, v an input sample
    /// 2×6×6 of a stride-2, padding-1 3×3 conv), a plain conv and a PyTorch-layout Linear.
    fn checkpoint() -> BTreeMap<String, NamedTensor> {
        BTreeMap::from([
            ("c1.weight".into(), tensor(vec![4, 2, 3, 3], 1)),
            (
                "c1.weight.spectral_norm.u".into(),
                tensor(vec![4 * 3 * 3], 2),
            ),
            (
                "c1.weight.spectral_norm.v".into(),
                tensor(vec![2 * 6 * 6], 3),
            ),
            ("c2.weight".into(), tensor(vec![3, 4, 2, 2], 4)),
            ("fc.weight".into(), tensor(vec![5, 3 * 2 * 2], 5)),
        ])
    }

    const DESCRIPTION: &str = r#"{"input": [2, 6, 6], "layers": [
        {"key": "c1.weight", "stride": [2, 2], "padding": [1, [1, 1]]},
        {"key": "c2.weight"},
        {"name": "scale", "lipschitz": 0.5, "output": [3, 2, 2]},
        {"key": "fc.weight"}]}"#;

    /// Every layer's bound is the library's, of the weight the layer uses (the operator-mode
    /// one divided by ⟨u, conv(v)⟩); the Linear one is at or above nalgebra's SVD; the network
    /// bound is their product; bake divides by the same σ.
    #[test]
    fn the_report_bounds_each_layer_and_the_network() {
        let tensors = checkpoint();
        let network = Network::parse(DESCRIPTION).unwrap();
        let (rows, total) = report(&tensors, &network, "net").unwrap();
        assert_eq!(rows.len(), 4);
        let op = ConvOperator::conv(vec![6, 6])
            .with_stride(vec![2, 2])
            .with_padding(vec![(1, 1); 2]);
        assert_eq!(rows[0].operator.as_ref(), Some(&op));
        let c1 = &tensors["c1.weight"];
        let vector = |t: &NamedTensor| {
            Tensor::<1>::from_data(
                TensorData::new(t.values.clone(), [t.values.len()]),
                (&Device::flex(), DType::F64),
            )
        };
        let sigma = conv_sigma_from_vectors(
            flex::<4>(c1),
            &op,
            vector(&tensors["c1.weight.spectral_norm.u"]),
            vector(&tensors["c1.weight.spectral_norm.v"]),
        )
        .unwrap();
        let expected = conv_operator_bound(flex::<4>(c1) / sigma, &op).unwrap();
        assert!(rows[0].normalized && (rows[0].bound - expected).abs() <= 1e-12 * expected);
        assert!(rows[0].estimate <= rows[0].bound);
        assert_eq!(rows[1].output, vec![3, 2, 2]);
        let fc = &tensors["fc.weight"];
        let svd = DMatrix::from_row_slice(5, 12, &fc.values)
            .singular_values()
            .max();
        assert!(rows[3].bound >= svd && rows[3].bound <= svd * (1.0 + 1e-9));
        let product: f64 = rows.iter().map(|r| r.bound).product();
        assert_eq!(total, product);

        let operators = operators(&tensors, &network, "net").unwrap();
        assert_eq!(operators.get("c1.weight"), Some(&op));
        let (baked, count) = bake(tensors.clone(), "net", &operators).unwrap();
        assert_eq!(count, 1);
        for (got, w) in baked["c1.weight"].values.iter().zip(&c1.values) {
            assert!((got - w / sigma).abs() <= 1e-12 * (w / sigma).abs());
        }
        let without = format!("{:#}", bake(tensors, "net", &BTreeMap::new()).unwrap_err());
        assert!(without.contains("do not fit"), "{without}");
    }

    /// A layer that does not take the previous output, and malformed descriptions, are one
    /// line each, naming what is wrong.
    #[test]
    fn what_does_not_compose_or_parse_is_refused() {
        let tensors = checkpoint();
        // Without c2 and the scale, fc (12 inputs) would follow c1's 4 × 3 × 3 outputs.
        let skipped = DESCRIPTION.replace(r#"{"key": "c2.weight"},"#, "").replace(
            r#"{"name": "scale", "lipschitz": 0.5, "output": [3, 2, 2]},"#,
            "",
        );
        let error = format!(
            "{:#}",
            report(&tensors, &Network::parse(&skipped).unwrap(), "net").unwrap_err()
        );
        assert!(
            error.contains("fc.weight") && error.contains("[4, 3, 3]"),
            "{error}"
        );
        let missing = DESCRIPTION.replace("fc.weight", "head.weight");
        let error = report(&tensors, &Network::parse(&missing).unwrap(), "net").unwrap_err();
        assert!(format!("{error:#}").contains("head.weight: no such weight"));
        for (text, says) in [
            ("{", "network description"),
            (r#"{"layers": []}"#, "input"),
            (r#"{"input": [1], "layers": [{"stride": [1]}]}"#, "key"),
            (
                r#"{"input": [1], "layers": [{"key": "w", "padding": [[1]]}]}"#,
                "before, after",
            ),
            (r#"{"input": [-1], "layers": []}"#, "not a size"),
        ] {
            let error = format!("{:#}", Network::parse(text).unwrap_err());
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}

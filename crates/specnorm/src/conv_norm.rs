//! `specnorm conv-norm FILE --input H[,W[,D]] …`: the operator norm of one convolution weight
//! of a checkpoint on inputs of a given size, its certified upper bound, and the matrix-view σ
//! that ordinary spectral normalization divides by.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::DType;
use clap::Args;
use serde_json::json;
use spectral_norm::format::escaped;
use spectral_norm::{ConvOperator, conv_operator_bound, conv_operator_norm_from};

use specnorm::sigma::{POWER_MAX_ITERATIONS, POWER_TOLERANCE};
use specnorm::tensors::{self, NamedTensor};
use specnorm::weights::spectral_norm_of;

/// Options of `conv-norm`. Lists take one value per spatial axis, comma-separated.
#[derive(Args, Debug)]
pub struct ConvNormArgs {
    /// Checkpoint holding the weight, in Burn's layout: a conv `[out, in/groups, k…]`, a
    /// transposed conv `[in, out/groups, k…]`; its rank (3 to 5) gives 1-D to 3-D.
    pub file: PathBuf,
    /// The weight's key; by default the file's only tensor of rank 3 to 5, or `weight`.
    #[arg(long)]
    pub key: Option<String>,
    /// The input's spatial size: H, or H,W, or H,W,D.
    #[arg(long, value_delimiter = ',', required = true)]
    pub input: Vec<usize>,
    /// Stride per axis (default 1).
    #[arg(long, value_delimiter = ',')]
    pub stride: Vec<usize>,
    /// Zero padding per axis: `P` on both sides, or `B:E` before and after (default 0).
    #[arg(long, value_delimiter = ',')]
    pub padding: Vec<String>,
    /// Dilation per axis (default 1).
    #[arg(long, value_delimiter = ',')]
    pub dilation: Vec<usize>,
    /// Channel groups.
    #[arg(long, default_value_t = 1)]
    pub groups: usize,
    /// The weight is a transposed convolution's.
    #[arg(long)]
    pub transpose: bool,
    /// A transposed convolution's output padding per axis (default 0).
    #[arg(long, value_delimiter = ',')]
    pub output_padding: Vec<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What `conv-norm` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNorm {
    /// The weight's key.
    pub key: String,
    /// The converged estimate of the operator norm (never above it).
    pub sigma_operator: f64,
    /// Power-iteration steps it took, and whether it converged.
    pub iterations: usize,
    /// Whether the estimate converged within the step limit.
    pub converged: bool,
    /// The certified upper bound.
    pub upper_bound: f64,
    /// σ of the weight's matrix view (axis 0 for a conv, 1 for a transposed conv).
    pub sigma_matrix: f64,
}

/// A per-axis list, or `default` on every axis when none was given.
fn per_axis<T: Clone>(values: &[T], axes: usize, default: T) -> Vec<T> {
    if values.is_empty() {
        vec![default; axes]
    } else {
        values.to_vec()
    }
}

fn padding(values: &[String], axes: usize) -> Result<Vec<(usize, usize)>> {
    if values.is_empty() {
        return Ok(vec![(0, 0); axes]);
    }
    values
        .iter()
        .map(|value| {
            let parse = |text: &str| {
                text.trim()
                    .parse::<usize>()
                    .with_context(|| format!("padding {value:?}: not a size, nor B:E"))
            };
            match value.split_once(':') {
                Some((before, after)) => Ok((parse(before)?, parse(after)?)),
                None => parse(value).map(|p| (p, p)),
            }
        })
        .collect()
}

/// The geometry the arguments describe.
fn operator(args: &ConvNormArgs) -> Result<ConvOperator> {
    let axes = args.input.len();
    let base = if args.transpose {
        ConvOperator::transposed(args.input.clone())
    } else {
        ConvOperator::conv(args.input.clone())
    };
    Ok(base
        .with_stride(per_axis(&args.stride, axes, 1))
        .with_padding(padding(&args.padding, axes)?)
        .with_dilation(per_axis(&args.dilation, axes, 1))
        .with_groups(args.groups)
        .with_output_padding(per_axis(&args.output_padding, axes, 0)))
}

/// The key of the weight to measure.
fn pick(
    args: &ConvNormArgs,
    tensors: &std::collections::BTreeMap<String, NamedTensor>,
) -> Result<String> {
    if let Some(key) = &args.key {
        return Ok(key.clone());
    }
    let convs: Vec<&String> = tensors
        .iter()
        .filter(|(_, t)| (3..=5).contains(&t.shape.len()))
        .map(|(key, _)| key)
        .collect();
    match convs.as_slice() {
        [only] => Ok((*only).clone()),
        _ if tensors.contains_key("weight") => Ok("weight".into()),
        _ => bail!(
            "{}: {} tensors of rank 3 to 5; name one with --key",
            args.file.display(),
            convs.len()
        ),
    }
}

/// The report for `args`.
pub fn measure(args: &ConvNormArgs) -> Result<ConvNorm> {
    let tensors = tensors::read(&args.file)?;
    let key = pick(args, &tensors)?;
    let where_ = format!("{}: {}", args.file.display(), escaped(&key));
    let Some(weight) = tensors.get(&key) else {
        bail!("{where_}: no such tensor");
    };
    let operator = operator(args).with_context(|| where_.clone())?;
    let device = Device::flex();
    let data = TensorData::new(weight.values.clone(), weight.shape.clone());
    let (estimate, bound) = match weight.shape.len() {
        3 => outcome(
            Tensor::<3>::from_data(data, (&device, DType::F64)),
            &operator,
        ),
        4 => outcome(
            Tensor::<4>::from_data(data, (&device, DType::F64)),
            &operator,
        ),
        5 => outcome(
            Tensor::<5>::from_data(data, (&device, DType::F64)),
            &operator,
        ),
        rank => bail!("{where_}: rank {rank}; a convolution weight has rank 3 to 5"),
    }
    .map_err(|e| anyhow::anyhow!("{where_}: {e}"))?;
    let dim = usize::from(args.transpose);
    let sigma_matrix = spectral_norm_of(&where_, weight, dim)?.value;
    Ok(ConvNorm {
        key,
        sigma_operator: estimate.sigma,
        iterations: estimate.iterations,
        converged: estimate.converged,
        upper_bound: bound,
        sigma_matrix,
    })
}

fn outcome<const D: usize>(
    weight: Tensor<D>,
    operator: &ConvOperator,
) -> Result<(spectral_norm::Convergence, f64), spectral_norm::SpectralNormError> {
    let start =
        specnorm::sigma::fixed_start(operator.input_shape(&weight.dims())?.iter().product());
    let estimate = conv_operator_norm_from(
        weight.clone(),
        operator,
        start,
        POWER_TOLERANCE,
        POWER_MAX_ITERATIONS,
    )?;
    Ok((estimate, conv_operator_bound(weight, operator)?))
}

/// Runs `conv-norm`.
pub fn run(args: &ConvNormArgs) -> Result<()> {
    let report = measure(args)?;
    if args.json {
        let value = json!({
            "key": report.key,
            "sigma_operator": report.sigma_operator,
            "power_iterations": report.iterations,
            "converged": report.converged,
            "upper_bound": report.upper_bound,
            "sigma_matrix": report.sigma_matrix,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{}: operator norm {:.6} ({} power steps{}), certified bound {:.6}, \
             matrix-view σ {:.6}",
            escaped(&report.key),
            report.sigma_operator,
            report.iterations,
            if report.converged {
                ""
            } else {
                ", NOT converged"
            },
            report.upper_bound,
            report.sigma_matrix
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use spectral_norm::format::FloatDtype;

    fn args(file: PathBuf, input: Vec<usize>) -> ConvNormArgs {
        ConvNormArgs {
            file,
            key: None,
            input,
            stride: Vec::new(),
            padding: Vec::new(),
            dilation: Vec::new(),
            groups: 1,
            transpose: false,
            output_padding: Vec::new(),
            json: false,
        }
    }

    #[test]
    fn the_report_is_the_librarys_estimate_and_bound() {
        let dir = crate::test_fixtures::scratch("conv-norm");
        let file = dir.join("conv.safetensors");
        let shape = vec![4, 2, 3, 3];
        let values: Vec<f64> = (0..72)
            .map(|i| ((i * 37 % 19) as f64 - 9.0) / 10.0)
            .collect();
        let tensors = BTreeMap::from([(
            "conv.weight".to_string(),
            NamedTensor {
                shape: shape.clone(),
                values: values.clone(),
                dtype: FloatDtype::F64,
            },
        )]);
        tensors::write(&file, &tensors).unwrap();
        let mut request = args(file.clone(), vec![7, 7]);
        request.stride = vec![2, 2];
        request.padding = vec!["1".into(), "0:1".into()];
        let report = measure(&request).unwrap();
        assert_eq!(report.key, "conv.weight");
        let op = ConvOperator::conv(vec![7, 7])
            .with_stride(vec![2, 2])
            .with_padding(vec![(1, 1), (0, 1)]);
        let weight = Tensor::<4>::from_data(
            TensorData::new(values, shape),
            (&Device::flex(), DType::F64),
        );
        let bound = conv_operator_bound(weight, &op).unwrap();
        assert_eq!(report.upper_bound, bound);
        assert!(report.converged && report.sigma_operator <= report.upper_bound);
        assert!(report.upper_bound <= 1.2 * report.sigma_operator);
        assert!((report.sigma_matrix - report.sigma_operator).abs() > 1e-6);

        // A kernel larger than the input: one line naming the file and key.
        let error = format!(
            "{:#}",
            measure(&args(file.clone(), vec![2, 2])).unwrap_err()
        );
        assert!(
            error.contains("conv.weight") && error.contains("does not fit"),
            "{error}"
        );
        let mut bad = args(file, vec![7, 7]);
        bad.padding = vec!["x".into()];
        assert!(measure(&bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

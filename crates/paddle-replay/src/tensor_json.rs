//! Tensors in the conformance files' JSON form: `{shape, dtype, data}`, row-major, with
//! non-finite values as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::{DType, Int};
use serde_json::{Value, json};

/// The float dtype a case runs in.
pub fn float_dtype(name: &str) -> Result<DType> {
    match name {
        "float32" => Ok(DType::F32),
        "float64" => Ok(DType::F64),
        other => bail!("unsupported float dtype {other:?}"),
    }
}

fn number(value: &Value) -> Result<f64> {
    match value {
        Value::Number(n) => n.as_f64().context("number out of range"),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        Value::Null => Ok(f64::NAN),
        other => bail!("not a number: {other}"),
    }
}

fn shape(value: &Value) -> Result<Vec<usize>> {
    value["shape"]
        .as_array()
        .context("tensor without shape")?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).context("bad shape entry"))
        .collect()
}

fn values(value: &Value) -> Result<Vec<f64>> {
    value["data"]
        .as_array()
        .context("tensor without data")?
        .iter()
        .map(number)
        .collect()
}

/// The numbers of a tensor object, a (nested) list, or a scalar, flattened row-major.
pub fn numbers(value: &Value) -> Result<Vec<f64>> {
    match value {
        Value::Object(_) => values(value),
        Value::Array(items) => {
            let nested: Result<Vec<Vec<f64>>> = items.iter().map(numbers).collect();
            Ok(nested?.concat())
        }
        scalar => Ok(vec![number(scalar)?]),
    }
}

/// Reads a float tensor in its own dtype (f32 data are exact f64 widenings, so the cast back
/// is exact).
pub fn read_float<const D: usize>(value: &Value, device: &Device) -> Result<Tensor<D>> {
    let (shape, data) = (shape(value)?, values(value)?);
    if shape.len() != D {
        bail!("expected a rank-{D} tensor, got shape {shape:?}");
    }
    let dtype = float_dtype(value["dtype"].as_str().unwrap_or("float32"))?;
    let data = match dtype {
        DType::F32 => TensorData::new(data.iter().map(|&x| x as f32).collect(), shape),
        _ => TensorData::new(data, shape),
    };
    Ok(Tensor::from_data(data, (device, dtype)))
}

/// Reads an integer tensor (embedding indices).
pub fn read_int<const D: usize>(value: &Value, device: &Device) -> Result<Tensor<D, Int>> {
    let (shape, data) = (shape(value)?, values(value)?);
    let data = TensorData::new(data.iter().map(|&x| x as i64).collect(), shape);
    Ok(Tensor::from_data(data, device))
}

fn encode_number(x: f64) -> Value {
    if x.is_nan() {
        json!("NaN")
    } else if x == f64::INFINITY {
        json!("Infinity")
    } else if x == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(x)
    }
}

/// Encodes a scalar, non-finite values as strings.
pub fn encode_scalar(x: f64) -> Value {
    encode_number(x)
}

/// Encodes a float tensor with its shape and dtype.
pub fn encode<const D: usize>(tensor: Tensor<D>) -> Value {
    let dtype = match tensor.dtype() {
        DType::F64 => "float64",
        _ => "float32",
    };
    let data = tensor.into_data();
    let shape = data.shape().to_vec();
    let values: Vec<Value> = data
        .convert::<f64>()
        .iter::<f64>()
        .map(encode_number)
        .collect();
    json!({"shape": shape, "dtype": dtype, "data": values})
}

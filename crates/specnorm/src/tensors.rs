//! Checkpoint files as plain named tensors: read from `.safetensors`, PyTorch `.pt`/`.pth` and
//! Paddle `.pdparams`, written as `.safetensors` or `.pdparams`. Errors name the file and key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use pytorch_reader::PytorchReader;
use safetensors::{Dtype, SafeTensors, View, serialize_to_file};
use spectral_norm::pdparams::{self, PdArray};

/// A float tensor read from a checkpoint, widened to f64.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f64>,
    /// The dtype in the file (`F32`, `F64`), kept when writing back.
    pub dtype: FloatType,
}

/// The float dtypes the tools read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    /// 32-bit.
    F32,
    /// 64-bit.
    F64,
}

/// Every tensor of a checkpoint, by key.
pub fn read(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "safetensors" => read_safetensors(path),
        "pt" | "pth" => read_pytorch(path),
        "pdparams" => read_pdparams(path),
        other => bail!(
            "{}: cannot read .{other} files: supported are .safetensors, .pt, .pth and .pdparams",
            path.display()
        ),
    }
}

fn decode(path: &Path, key: &str, dtype: FloatType, bytes: &[u8]) -> Result<Vec<f64>> {
    let width = match dtype {
        FloatType::F32 => 4,
        FloatType::F64 => 8,
    };
    if !bytes.len().is_multiple_of(width) {
        bail!(
            "{}: {key}: {} bytes is not a whole number of elements",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(width)
        .map(|b| match dtype {
            FloatType::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            FloatType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

fn read_safetensors(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a valid safetensors file", path.display()))?;
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let dtype = match view.dtype() {
                Dtype::F32 => FloatType::F32,
                Dtype::F64 => FloatType::F64,
                other => bail!(
                    "{}: {key}: dtype {other:?} is not supported (F32, F64)",
                    path.display()
                ),
            };
            let values = decode(path, &key, dtype, view.data())?;
            Ok((
                key,
                NamedTensor {
                    shape: view.shape().to_vec(),
                    values,
                    dtype,
                },
            ))
        })
        .collect()
}

fn read_pytorch(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let reader = PytorchReader::new(path)
        .with_context(|| format!("{}: not a readable PyTorch checkpoint", path.display()))?;
    reader
        .tensors()
        .iter()
        .map(|(key, tensor)| {
            let dtype = match tensor.dtype() {
                pytorch_reader::DType::F32 => FloatType::F32,
                pytorch_reader::DType::F64 => FloatType::F64,
                other => bail!(
                    "{}: {key}: dtype {other:?} is not supported (F32, F64)",
                    path.display()
                ),
            };
            let bytes = tensor
                .read()
                .with_context(|| format!("{}: {key}: cannot read", path.display()))?;
            let values = decode(path, key, dtype, &bytes)?;
            Ok((
                key.clone(),
                NamedTensor {
                    shape: tensor.shape().to_vec(),
                    values,
                    dtype,
                },
            ))
        })
        .collect()
}

fn read_pdparams(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let arrays =
        pdparams::read(&bytes).with_context(|| format!("{}: cannot read", path.display()))?;
    arrays
        .into_iter()
        .map(|array| {
            let dtype = if array.dtype == "f8" {
                FloatType::F64
            } else {
                FloatType::F32
            };
            let values = decode(path, &array.name, dtype, &array.bytes)?;
            Ok((
                array.name,
                NamedTensor {
                    shape: array.shape,
                    values,
                    dtype,
                },
            ))
        })
        .collect()
}

/// A tensor as safetensors wants it for writing.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` to a `.safetensors` or `.pdparams` file, all or nothing: a temporary file
/// beside `path` is renamed over it only once complete.
pub fn write(path: &Path, tensors: &BTreeMap<String, NamedTensor>) -> Result<()> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_string();
    let bytes = |t: &NamedTensor| -> Vec<u8> {
        match t.dtype {
            FloatType::F32 => t
                .values
                .iter()
                .flat_map(|&x| (x as f32).to_le_bytes())
                .collect(),
            FloatType::F64 => t.values.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        }
    };
    let partial = path.with_extension(format!("{extension}.partial"));
    match extension.as_str() {
        "safetensors" => {
            let encoded: Vec<(String, Encoded)> = tensors
                .iter()
                .map(|(key, t)| {
                    let dtype = match t.dtype {
                        FloatType::F32 => Dtype::F32,
                        FloatType::F64 => Dtype::F64,
                    };
                    (
                        key.clone(),
                        Encoded {
                            dtype,
                            shape: t.shape.clone(),
                            bytes: bytes(t),
                        },
                    )
                })
                .collect();
            serialize_to_file(encoded.iter().map(|(k, e)| (k.as_str(), e)), None, &partial)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        "pdparams" => {
            let arrays: Vec<PdArray> = tensors
                .iter()
                .map(|(key, t)| PdArray {
                    name: key.clone(),
                    shape: t.shape.clone(),
                    dtype: if t.dtype == FloatType::F64 {
                        "f8"
                    } else {
                        "f4"
                    }
                    .into(),
                    bytes: bytes(t),
                })
                .collect();
            std::fs::write(&partial, pdparams::write(&arrays))
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        _ => bail!(
            "{}: output must be a .safetensors or .pdparams file",
            path.display()
        ),
    }
    std::fs::rename(&partial, path).with_context(|| format!("{}: cannot write", path.display()))
}

//! Checkpoint files as plain named tensors: read from `.safetensors`, PyTorch `.pt`/`.pth`,
//! Paddle `.pdparams` and Burn records (`.bpk`), written in any of these formats. Errors name
//! the file and key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use pytorch_reader::PytorchReader;
use safetensors::{Dtype, SafeTensors, View, serialize};
use spectral_norm::format::FileFormat;
pub use spectral_norm::format::FloatDtype;

use spectral_norm::format::escaped;

/// Tensors of a PyTorch file may together take at most this many times the file's size: views
/// of one storage (tied weights) are read once each.
pub const PYTORCH_VIEW_FACTOR: usize = 4;
use spectral_norm::pdparams::{self, PdArray};

use crate::torch_zip::{self, TorchTensor};

/// A float tensor read from a checkpoint, widened to f64.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f64>,
    /// The dtype in the file, kept when writing back.
    pub dtype: FloatDtype,
}

/// Every tensor of a checkpoint, by key.
///
/// # Errors
///
/// A one-line error naming the file (and the key, where one is at fault) for a file that
/// cannot be read, is not of its extension's format, or holds no float tensor.
pub fn read(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let tensors = match FileFormat::of(path) {
        Some(FileFormat::Safetensors) => read_safetensors(path),
        Some(FileFormat::PyTorch) => read_pytorch(path),
        Some(FileFormat::Pdparams) => read_pdparams(path),
        Some(FileFormat::Burnpack) => read_burnpack(path),
        None => bail!(
            "{}: cannot read this kind of file: supported are .safetensors, .pt, .pth, \
             .pdparams and .bpk",
            path.display()
        ),
    }?;
    if tensors.is_empty() {
        bail!("{}: holds no float tensor to read", path.display());
    }
    Ok(tensors)
}

fn decode(path: &Path, key: &str, dtype: FloatDtype, bytes: &[u8]) -> Result<Vec<f64>> {
    let width = dtype.size();
    if !bytes.len().is_multiple_of(width) {
        bail!(
            "{}: {}: {} bytes is not a whole number of elements",
            path.display(),
            escaped(key),
            bytes.len()
        );
    }
    Ok(bytes.chunks_exact(width).map(|b| dtype.decode(b)).collect())
}

/// A tensor from a file's `shape`, `dtype` and element bytes, checked to fit each other.
fn named(
    path: &Path,
    key: &str,
    shape: Vec<usize>,
    dtype: FloatDtype,
    bytes: &[u8],
) -> Result<NamedTensor> {
    let values = decode(path, key, dtype, bytes)?;
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if numel != Some(values.len()) {
        bail!(
            "{}: {}: {} elements for shape {shape:?}",
            path.display(),
            escaped(key),
            values.len()
        );
    }
    Ok(NamedTensor {
        shape,
        values,
        dtype,
    })
}

fn read_safetensors(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a valid safetensors file", path.display()))?;
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let Some(dtype) = FloatDtype::from_safetensors(view.dtype()) else {
                bail!(
                    "{}: {}: dtype {:?} is not supported (F16, BF16, F32, F64)",
                    path.display(),
                    escaped(&key),
                    view.dtype()
                );
            };
            let tensor = named(path, &key, view.shape().to_vec(), dtype, view.data())?;
            Ok((key, tensor))
        })
        .collect()
}

/// Reads a PyTorch checkpoint, refusing a pickle that names globals other than a state dict's
/// (see `torch_globals`), and, before anything is materialized, a tensor that would
/// take more bytes than the whole file (a stride-0 or overlapping view of a small storage, or a
/// compressed entry that inflates far past its size), and tensors that together would take
/// more than [`PYTORCH_VIEW_FACTOR`] times the file: what is read is bounded by what the file
/// holds.
fn read_pytorch(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let file_len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    let file_len = usize::try_from(file_len).unwrap_or(usize::MAX);
    let limit = file_len.saturating_mul(16).saturating_add(1 << 20);
    if let Some(global) = crate::torch_globals::foreign_global(path, limit) {
        bail!(
            "{}: its pickle refers to {:?}, which a PyTorch state dict does not (only tensor \
             rebuilds, storages and OrderedDict): not read",
            path.display(),
            global
        );
    }
    let reader = PytorchReader::new(path)
        .with_context(|| format!("{}: not a readable PyTorch checkpoint", path.display()))?;
    let mut total = 0usize;
    for (key, tensor) in reader.tensors() {
        let bytes = tensor.byte_len();
        total = total.saturating_add(bytes);
        if bytes > file_len || total > file_len.saturating_mul(PYTORCH_VIEW_FACTOR) {
            bail!(
                "{}: {}: shape {:?} would take {bytes} bytes, more than the file holds ({file_len} \
                 bytes): a view that repeats its storage, or a compressed entry that inflates \
                 past it, is refused",
                path.display(),
                escaped(key),
                tensor.shape()
            );
        }
    }
    reader
        .tensors()
        .iter()
        .map(|(key, tensor)| {
            let dtype = match tensor.dtype() {
                pytorch_reader::DType::F16 => FloatDtype::F16,
                pytorch_reader::DType::BF16 => FloatDtype::BF16,
                pytorch_reader::DType::F32 => FloatDtype::F32,
                pytorch_reader::DType::F64 => FloatDtype::F64,
                other => bail!(
                    "{}: {}: dtype {other:?} is not supported (F16, BF16, F32, F64)",
                    path.display(),
                    escaped(key)
                ),
            };
            let bytes = tensor
                .read()
                .with_context(|| format!("{}: {}: cannot read", path.display(), escaped(key)))?;
            let tensor = named(path, key, tensor.shape().to_vec(), dtype, &bytes)?;
            Ok((key.clone(), tensor))
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
            let tensor = named(path, &array.name, array.shape, array.dtype, &array.bytes)?;
            Ok((array.name, tensor))
        })
        .collect()
}

fn read_burnpack(path: &Path) -> Result<BTreeMap<String, NamedTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let unreadable = || format!("{}: not a readable Burn record (.bpk)", path.display());
    let tensors = burn_pack::Reader::from_bytes(burn_pack::Bytes::from_bytes_vec(bytes))
        .and_then(burn_pack::Reader::into_tensors)
        .with_context(unreadable)?;
    tensors
        .into_iter()
        .map(|tensor| {
            let (key, dtype, shape, _, bytes) = tensor.into_parts().with_context(unreadable)?;
            let Some(dtype) = FloatDtype::from_burn(dtype) else {
                bail!(
                    "{}: {}: dtype {dtype:?} is not supported (F16, BF16, F32, F64)",
                    path.display(),
                    escaped(&key)
                );
            };
            let tensor = named(path, &key, shape.to_vec(), dtype, &bytes)?;
            Ok((key, tensor))
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

/// The little-endian element bytes of `tensor` in its dtype.
fn element_bytes(tensor: &NamedTensor) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(tensor.values.len() * tensor.dtype.size());
    for &x in &tensor.values {
        tensor.dtype.encode(x, &mut bytes);
    }
    bytes
}

fn encode_safetensors(tensors: &BTreeMap<String, NamedTensor>) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Encoded)> = tensors
        .iter()
        .map(|(key, t)| {
            let dtype = t.dtype.safetensors();
            let shape = t.shape.clone();
            let bytes = element_bytes(t);
            (
                key.clone(),
                Encoded {
                    dtype,
                    shape,
                    bytes,
                },
            )
        })
        .collect();
    Ok(serialize(
        encoded.iter().map(|(k, e)| (k.as_str(), e)),
        None,
    )?)
}

fn encode_pdparams(tensors: &BTreeMap<String, NamedTensor>) -> Result<Vec<u8>> {
    let arrays: Vec<PdArray> = tensors
        .iter()
        .map(|(key, t)| PdArray {
            name: key.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype,
            bytes: element_bytes(t),
        })
        .collect();
    Ok(pdparams::write(&arrays)?)
}

/// A Burn record: what `Module::save_file` writes, without parameter ids (a module that loads
/// it gets fresh ones).
fn encode_burnpack(tensors: &BTreeMap<String, NamedTensor>) -> Result<Vec<u8>> {
    let packed = tensors
        .iter()
        .map(|(key, t)| {
            let dtype = t.dtype.burn();
            let bytes = burn_pack::Bytes::from_bytes_vec(element_bytes(t));
            burn_pack::Tensor::new(key.clone(), dtype, t.shape.clone(), None, bytes)
        })
        .collect();
    Ok(burn_pack::Writer::new(packed).into_bytes()?.to_vec())
}

/// A PyTorch `.pt` file, as `torch.save(state_dict)` writes it.
fn encode_pytorch(tensors: &BTreeMap<String, NamedTensor>) -> Result<Vec<u8>> {
    let torch: Vec<TorchTensor> = tensors
        .iter()
        .map(|(key, t)| TorchTensor {
            key,
            shape: &t.shape,
            dtype: t.dtype,
            bytes: element_bytes(t),
        })
        .collect();
    Ok(torch_zip::encode(&torch)?)
}

/// Writes `tensors` to a `.safetensors`, `.pdparams`, `.bpk`, `.pt` or `.pth` file, all or nothing: a
/// temporary file beside `path` is renamed over it only once complete.
pub fn write(path: &Path, tensors: &BTreeMap<String, NamedTensor>) -> Result<()> {
    let cannot_write = || format!("{}: cannot write", path.display());
    let bytes = match FileFormat::of(path) {
        Some(FileFormat::Safetensors) => encode_safetensors(tensors),
        Some(FileFormat::Pdparams) => encode_pdparams(tensors),
        Some(FileFormat::Burnpack) => encode_burnpack(tensors),
        Some(FileFormat::PyTorch) => encode_pytorch(tensors),
        None => bail!(
            "{}: output must be a .safetensors, .pdparams, .bpk, .pt or .pth file",
            path.display()
        ),
    }
    .with_context(cannot_write)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        // Leave nothing behind; the error below is what counts.
        let _ = std::fs::remove_file(&partial);
    }
    written.with_context(cannot_write)
}

#[cfg(test)]
mod tests {
    use super::{FloatDtype, NamedTensor, read, write};

    /// Values `(i − 3.5) / 8`, exact in every dtype for the first few hundred.
    fn tensor(shape: Vec<usize>, dtype: FloatDtype) -> NamedTensor {
        let n: usize = shape.iter().product();
        let values = (0..n).map(|i| (i as f64 - 3.5) / 8.0).collect();
        NamedTensor {
            shape,
            values,
            dtype,
        }
    }

    /// `.pt` files as `bake` writes them (`torch_zip`) read back exactly through
    /// pytorch-reader, as `inspect` reads them.
    #[test]
    fn written_files_read_back_exactly_with_pytorch_reader() {
        let tensors = std::collections::BTreeMap::from([
            ("fc.weight".to_string(), tensor(vec![3, 2], FloatDtype::F32)),
            ("scalar".to_string(), tensor(vec![], FloatDtype::F32)),
            (
                "five".to_string(),
                tensor(vec![1, 2, 1, 2, 3], FloatDtype::F64),
            ),
            ("long".to_string(), tensor(vec![70_000], FloatDtype::F64)),
        ]);
        let dir = std::env::temp_dir().join(format!("specnorm-pt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["state.pt", "state.pth"] {
            write(&dir.join(name), &tensors).unwrap();
            assert_eq!(read(&dir.join(name)).unwrap(), tensors, "{name}");
        }
        let one =
            std::collections::BTreeMap::from([("w".to_string(), tensor(vec![4], FloatDtype::F32))]);
        write(&dir.join("one.pt"), &one).unwrap();
        assert_eq!(read(&dir.join("one.pt")).unwrap(), one);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// f16 and bf16 tensors keep their dtype and values through every format that has them;
    /// `.pdparams` (numpy) has no bf16 and refuses it without writing anything.
    #[test]
    fn half_tensors_round_trip_in_every_format_that_has_them() {
        let both = std::collections::BTreeMap::from([
            ("fc.weight".to_string(), tensor(vec![3, 2], FloatDtype::F16)),
            (
                "conv.weight".to_string(),
                tensor(vec![2, 1, 2], FloatDtype::BF16),
            ),
        ]);
        let f16 = std::collections::BTreeMap::from([(
            "fc.weight".to_string(),
            tensor(vec![3, 2], FloatDtype::F16),
        )]);
        let dir = std::env::temp_dir().join(format!("specnorm-half-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["half.safetensors", "half.pt", "half.bpk"] {
            write(&dir.join(name), &both).unwrap();
            assert_eq!(read(&dir.join(name)).unwrap(), both, "{name}");
        }
        write(&dir.join("half.pdparams"), &f16).unwrap();
        assert_eq!(read(&dir.join("half.pdparams")).unwrap(), f16);
        let error = write(&dir.join("bf16.pdparams"), &both).unwrap_err();
        assert!(format!("{error:#}").contains("BF16"), "{error:#}");
        assert!(!dir.join("bf16.pdparams").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Hostile `.pt` files from the fuzz corpus: refused by what is wrong with them, in one
    /// line, before anything large is read.
    #[test]
    fn hostile_pytorch_files_are_refused_naming_the_problem() {
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pytorch");
        let dir = std::env::temp_dir().join(format!("specnorm-hostile-pt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (seed, says) in [
            ("global-os-system", "\"os.system\""),
            ("view-stride-zero-huge", "more than the file holds"),
            ("storage-inflates", "more than the file holds"),
        ] {
            let file = dir.join(format!("{seed}.pt"));
            std::fs::copy(corpus.join(seed), &file).unwrap();
            let error = format!("{:#}", read(&file).unwrap_err());
            assert!(
                error.contains(says) && !error.contains('\n'),
                "{seed}: {error}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

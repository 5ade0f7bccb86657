//! Loading and saving spectrally normalized models in Paddle's and PyTorch's checkpoint
//! layouts, through burn-store (feature `store`).
//!
//! Burn records a normalized weight `P` as `P` (the trainable W) with its vectors under
//! `P.spectral_norm.u` and `P.spectral_norm.v`. The other frameworks name the same three
//! tensors differently, and PyTorch also stores `Linear` weights transposed (`[out, in]`):
//!
//! | [`Checkpoint`] | W | u | v | Linear layout |
//! |---|---|---|---|---|
//! | `Burn` | `P` | `P.spectral_norm.u` | `P.spectral_norm.v` | `[in, out]` |
//! | `Paddle` | `P_orig` | `P_u` | `P_v` | `[in, out]` |
//! | `PyTorchHook` (`torch.nn.utils.spectral_norm`) | `P_orig` | `P_u` | `P_v` | `[out, in]` |
//! | `PyTorchParametrization` (`torch.nn.utils.parametrizations.spectral_norm`) | `M.parametrizations.N.original` | `M.parametrizations.N.0._u` | `M.parametrizations.N.0._v` | `[out, in]` |
//!
//! (for `P = M.N`). The vectors mean the same thing everywhere: `u` indexes the output axis and
//! `v` the rest, so they load unchanged. Only the keys of parameters that carry spectral norm
//! in the target module are renamed, exactly, so other keys that end in `_u` are left alone.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, Reparameterization};
use burn::prelude::*;
use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use thiserror::Error;

mod keys;
mod transcode;

use crate::format::{FileFormat, escaped};
use crate::mode::REPARAMETERIZATION_CONTAINER;
use crate::pdparams;
use crate::reparameterization::SpectralNorm;

pub use keys::{Checkpoint, NormalizedKeys};

/// Why a checkpoint could not be read or written. The module given is never changed.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be read, parsed or written.
    #[error("{file}: {message}")]
    Store {
        /// The checkpoint file.
        file: PathBuf,
        /// What the store reported.
        message: String,
    },
    /// The file and the module do not match: keys missing or left over, shapes or dtypes that
    /// differ.
    #[error("{file}: does not match the module: {problems}")]
    Mismatch {
        /// The checkpoint file.
        file: PathBuf,
        /// The problems, `; `-separated, with the keys named.
        problems: String,
    },
    /// This combination of file format and framework is not supported.
    #[error("{file}: {why}")]
    Unsupported {
        /// The checkpoint file.
        file: PathBuf,
        /// Why not.
        why: String,
    },
}

/// Reads `path` into a copy of `module` (whose spectral norms must already be attached, as
/// in the model that was saved) and returns it. `.safetensors` files of any [`Checkpoint`]
/// kind are read, `.pdparams` files of Paddle's and `.pt`/`.pth` files of the PyTorch kinds.
/// Every tensor of the module must be in the file and every tensor of the file must be used:
/// in particular a file without a normalized weight's u and v (a checkpoint of the plain
/// model) is refused, naming them, since their random start would make every eval σ wrong.
/// Load such weights into the plain model and attach spectral norm afterwards.
///
/// # Errors
///
/// [`CheckpointError`] naming the file and the offending keys.
pub fn load_checkpoint<M: Module>(
    module: &M,
    path: impl AsRef<Path>,
    kind: Checkpoint,
) -> Result<M, CheckpointError> {
    let path = path.as_ref();
    let remapper = remapper(module, kind, Direction::Load);
    let pytorch = matches!(
        kind,
        Checkpoint::PyTorchHook | Checkpoint::PyTorchParametrization
    );
    let mut loaded = module.clone();
    let store_error = |message: String| CheckpointError::Store {
        file: path.to_path_buf(),
        message,
    };
    let result = match FileFormat::of(path) {
        Some(FileFormat::Safetensors) => {
            let store = SafetensorsStore::from_file(path)
                .remap(remapper)
                .allow_partial(true);
            let mut store = if pytorch {
                store.with_from_adapter(PyTorchToBurnAdapter)
            } else {
                store
            };
            loaded
                .load_from(&mut store)
                .map_err(|e| store_error(e.to_string()))?
        }
        Some(FileFormat::PyTorch) if pytorch => {
            let mut store = PytorchStore::from_file(path)
                .remap(remapper)
                .allow_partial(true);
            loaded
                .load_from(&mut store)
                .map_err(|e| store_error(e.to_string()))?
        }
        Some(FileFormat::Pdparams) if kind == Checkpoint::Paddle => {
            let bytes = std::fs::read(path).map_err(|e| store_error(e.to_string()))?;
            let arrays = pdparams::read(&bytes).map_err(|e| store_error(e.to_string()))?;
            let bytes = transcode::arrays_to_safetensors(&arrays).map_err(store_error)?;
            let mut store = SafetensorsStore::from_bytes(Some(bytes))
                .remap(remapper)
                .allow_partial(true);
            loaded
                .load_from(&mut store)
                .map_err(|e| store_error(e.to_string()))?
        }
        _ => return Err(unsupported(path, kind)),
    };
    // Keys come from the file: control characters are shown escaped.
    let shown = escaped;
    let mut problems: Vec<String> = result
        .missing
        .iter()
        .map(|(key, _)| format!("missing {}", shown(key)))
        .collect();
    problems.extend(
        result
            .unused
            .iter()
            .map(|key| format!("unused {}", shown(key))),
    );
    problems.extend(result.errors.iter().map(|error| shown(&error.to_string())));
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(CheckpointError::Mismatch {
            file: path.to_path_buf(),
            problems: problems.join("; "),
        })
    }
}

/// Writes `module` with the key names and layouts of `kind`, for that framework to load: a
/// `.safetensors` file for any kind (PyTorch: `model.load_state_dict(safetensors.torch.load_file(...))`),
/// or a `.pdparams` file for Paddle (`layer.set_state_dict(paddle.load(path))`).
///
/// # Errors
///
/// [`CheckpointError::Unsupported`] for another extension; [`CheckpointError::Store`] when
/// the file cannot be written.
pub fn save_checkpoint<M: Module>(
    module: &M,
    path: impl AsRef<Path>,
    kind: Checkpoint,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let store_error = |message: String| CheckpointError::Store {
        file: path.to_path_buf(),
        message,
    };
    let store = match FileFormat::of(path) {
        Some(FileFormat::Safetensors) => SafetensorsStore::from_file(path),
        Some(FileFormat::Pdparams) if kind == Checkpoint::Paddle => {
            let mut store =
                SafetensorsStore::from_bytes(None).remap(remapper(module, kind, Direction::Save));
            module
                .save_into(&mut store)
                .map_err(|e| store_error(e.to_string()))?;
            let bytes = store.get_bytes().map_err(|e| store_error(e.to_string()))?;
            let arrays = transcode::safetensors_to_arrays(&bytes).map_err(store_error)?;
            let pickle = pdparams::write(&arrays).map_err(|e| store_error(e.to_string()))?;
            return std::fs::write(path, pickle).map_err(|e| store_error(e.to_string()));
        }
        _ => return Err(unsupported(path, kind)),
    };
    let store = store.remap(remapper(module, kind, Direction::Save));
    let mut store = match kind {
        Checkpoint::PyTorchHook | Checkpoint::PyTorchParametrization => {
            store.with_to_adapter(BurnToPyTorchAdapter)
        }
        Checkpoint::Burn | Checkpoint::Paddle => store,
    };
    module
        .save_into(&mut store)
        .map_err(|e| CheckpointError::Store {
            file: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn unsupported(path: &Path, kind: Checkpoint) -> CheckpointError {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    CheckpointError::Unsupported {
        file: path.to_path_buf(),
        why: format!(
            "cannot use {name:?} as a {kind:?} checkpoint: supported are .safetensors \
             (every kind, load and save), .pdparams (Paddle, load and save) and .pt/.pth \
             (PyTorch kinds, load)"
        ),
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Load,
    Save,
}

/// Exact renames between the file's keys and Burn's, for the normalized parameters of `module`.
fn remapper<M: Module>(module: &M, kind: Checkpoint, direction: Direction) -> KeyRemapper {
    let pairs = normalized_paths(module)
        .into_iter()
        .flat_map(|path| kind.renames(&path));
    let patterns: Vec<(String, String)> = pairs
        .map(|(file, burn)| match direction {
            Direction::Load => (format!("^{}$", regex::escape(&file)), burn),
            Direction::Save => (format!("^{}$", regex::escape(&burn)), file),
        })
        .collect();
    KeyRemapper::from_patterns(patterns).expect("escaped literal patterns are valid regexes")
}

/// Paths of the parameters that carry spectral norm.
pub fn normalized_paths<M: Module>(module: &M) -> Vec<String> {
    let mut finder = NormalizedPaths::default();
    module.visit(&mut finder);
    finder.found
}

#[derive(Default)]
struct NormalizedPaths {
    path: Vec<String>,
    found: Vec<String>,
}

impl ModuleVisitor for NormalizedPaths {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == REPARAMETERIZATION_CONTAINER && name == SpectralNorm::NAME {
            self.found.push(self.path.join("."));
        }
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {}
}

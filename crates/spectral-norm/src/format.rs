//! The file formats and float element types of checkpoints, named once for the library and the
//! `specnorm` tool (feature `store`).

use std::path::Path;

/// The float element types checkpoints carry.
///
/// ```
/// use spectral_norm::format::FloatDtype;
///
/// assert_eq!(FloatDtype::from_numpy("<f8"), Some(FloatDtype::F64));
/// assert_eq!(FloatDtype::F32.numpy(), "f4");
/// assert_eq!(FloatDtype::F64.size(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatDtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl FloatDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// numpy's type code without byte order (`"f4"`, `"f8"`), as Paddle's pickles name it.
    pub fn numpy(self) -> &'static str {
        match self {
            Self::F32 => "f4",
            Self::F64 => "f8",
        }
    }

    /// The dtype of a numpy type code (`"f4"`, `"<f8"`, …), byte order aside.
    pub fn from_numpy(code: &str) -> Option<Self> {
        match code.trim_start_matches(['<', '>', '=', '|']) {
            "f4" => Some(Self::F32),
            "f8" => Some(Self::F64),
            _ => None,
        }
    }

    /// The safetensors dtype.
    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            Self::F32 => safetensors::Dtype::F32,
            Self::F64 => safetensors::Dtype::F64,
        }
    }

    /// The float dtype of a safetensors dtype, if it is one of these.
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<Self> {
        match dtype {
            safetensors::Dtype::F32 => Some(Self::F32),
            safetensors::Dtype::F64 => Some(Self::F64),
            _ => None,
        }
    }

    /// Burn's dtype.
    pub fn burn(self) -> burn::tensor::DType {
        match self {
            Self::F32 => burn::tensor::DType::F32,
            Self::F64 => burn::tensor::DType::F64,
        }
    }
}

/// A checkpoint file's format, told by its extension (any case).
///
/// ```
/// use spectral_norm::format::FileFormat;
///
/// assert_eq!(FileFormat::of("gan.PT".as_ref()), Some(FileFormat::PyTorch));
/// assert_eq!(FileFormat::of("notes.txt".as_ref()), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// `.safetensors`.
    Safetensors,
    /// PyTorch's zip of a pickle, `.pt` or `.pth`.
    PyTorch,
    /// Paddle's pickle of numpy arrays, `.pdparams`.
    Pdparams,
    /// Burn's record format, `.bpk`.
    Burnpack,
}

impl FileFormat {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "safetensors" => Some(Self::Safetensors),
            "pt" | "pth" => Some(Self::PyTorch),
            "pdparams" => Some(Self::Pdparams),
            "bpk" => Some(Self::Burnpack),
            _ => None,
        }
    }
}

/// `text` with every control character (newlines, tabs, an ANSI escape sequence's ESC, …)
/// written as an escape (`\n`, `\u{1b}`): how strings from a file are shown, so that a key can
/// neither break an error onto two lines nor act on the terminal. Everything else is kept.
///
/// ```
/// use spectral_norm::format::escaped;
///
/// assert_eq!(escaped("fc.weight"), "fc.weight");
/// assert_eq!(escaped("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
/// ```
pub fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

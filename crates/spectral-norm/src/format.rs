//! The file formats and float element types of checkpoints, named once for the library and the
//! `specnorm` tool (feature `store`).

use std::path::Path;

/// The float element types checkpoints carry, and how their elements are encoded: the one
/// table of dtype names across numpy, safetensors, PyTorch and Burn.
///
/// ```
/// use spectral_norm::format::FloatDtype;
///
/// assert_eq!(FloatDtype::from_numpy("<f8"), Some(FloatDtype::F64));
/// assert_eq!(FloatDtype::F32.numpy(), Some("f4"));
/// assert_eq!(FloatDtype::BF16.numpy(), None); // numpy has no bfloat16
/// assert_eq!(FloatDtype::F64.size(), 8);
/// let mut bytes = Vec::new();
/// FloatDtype::F16.encode(0.1, &mut bytes);
/// assert_eq!(FloatDtype::F16.decode(&bytes), 0.0999755859375);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatDtype {
    /// IEEE binary16.
    F16,
    /// bfloat16 (binary32's exponent, an 8-bit significand).
    BF16,
    /// IEEE binary32.
    F32,
    /// IEEE binary64.
    F64,
}

impl FloatDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// numpy's type code without byte order (`"f2"`, `"f4"`, `"f8"`), as Paddle's pickles name
    /// it; `None` for bf16, which numpy lacks.
    pub fn numpy(self) -> Option<&'static str> {
        match self {
            Self::F16 => Some("f2"),
            Self::BF16 => None,
            Self::F32 => Some("f4"),
            Self::F64 => Some("f8"),
        }
    }

    /// The dtype of a numpy type code (`"f4"`, `"<f8"`, …), byte order aside.
    pub fn from_numpy(code: &str) -> Option<Self> {
        match code.trim_start_matches(['<', '>', '=', '|']) {
            "f2" => Some(Self::F16),
            "f4" => Some(Self::F32),
            "f8" => Some(Self::F64),
            _ => None,
        }
    }

    /// The safetensors dtype.
    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            Self::F16 => safetensors::Dtype::F16,
            Self::BF16 => safetensors::Dtype::BF16,
            Self::F32 => safetensors::Dtype::F32,
            Self::F64 => safetensors::Dtype::F64,
        }
    }

    /// The float dtype of a safetensors dtype, if it is one of these.
    pub fn from_safetensors(dtype: safetensors::Dtype) -> Option<Self> {
        match dtype {
            safetensors::Dtype::F16 => Some(Self::F16),
            safetensors::Dtype::BF16 => Some(Self::BF16),
            safetensors::Dtype::F32 => Some(Self::F32),
            safetensors::Dtype::F64 => Some(Self::F64),
            _ => None,
        }
    }

    /// Burn's dtype.
    pub fn burn(self) -> burn::tensor::DType {
        match self {
            Self::F16 => burn::tensor::DType::F16,
            Self::BF16 => burn::tensor::DType::BF16,
            Self::F32 => burn::tensor::DType::F32,
            Self::F64 => burn::tensor::DType::F64,
        }
    }

    /// The float dtype of a Burn dtype, if it is one of these.
    pub fn from_burn(dtype: burn::tensor::DType) -> Option<Self> {
        match dtype {
            burn::tensor::DType::F16 => Some(Self::F16),
            burn::tensor::DType::BF16 => Some(Self::BF16),
            burn::tensor::DType::F32 => Some(Self::F32),
            burn::tensor::DType::F64 => Some(Self::F64),
            _ => None,
        }
    }

    /// PyTorch's storage class for this dtype (`torch.FloatStorage`, …).
    pub fn torch_storage(self) -> &'static str {
        match self {
            Self::F16 => "HalfStorage",
            Self::BF16 => "BFloat16Storage",
            Self::F32 => "FloatStorage",
            Self::F64 => "DoubleStorage",
        }
    }

    /// One element from its little-endian bytes (`size()` of them), widened to f64 exactly.
    ///
    /// # Panics
    ///
    /// When `bytes` is shorter than `size()`; callers split a buffer with `chunks_exact`.
    pub fn decode(self, bytes: &[u8]) -> f64 {
        let pair = || [bytes[0], bytes[1]];
        match self {
            Self::F16 => half::f16::from_le_bytes(pair()).to_f64(),
            Self::BF16 => half::bf16::from_le_bytes(pair()).to_f64(),
            Self::F32 => f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            Self::F64 => f64::from_le_bytes(bytes[..8].try_into().expect("eight bytes")),
        }
    }

    /// Appends `x` rounded to this dtype (to nearest, ties to even) as little-endian bytes.
    pub fn encode(self, x: f64, out: &mut Vec<u8>) {
        match self {
            Self::F16 => out.extend(half::f16::from_f64(x).to_le_bytes()),
            Self::BF16 => out.extend(half::bf16::from_f64(x).to_le_bytes()),
            Self::F32 => out.extend((x as f32).to_le_bytes()),
            Self::F64 => out.extend(x.to_le_bytes()),
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

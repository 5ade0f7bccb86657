//! Paddle's `.pdparams` files: a pickle of a `dict` from names to numpy arrays, as
//! `paddle.save(layer.state_dict(), path)` writes it (feature `store`).
//!
//! Why a reader of our own: `pytorch-reader` (burn-store's pickle reader) reads numpy arrays
//! as opaque objects, and `serde-pickle` cannot rebuild objects made by `REDUCE` + `BUILD`,
//! which is how numpy pickles an array. The subset needed is small — the opcodes of pickle
//! protocols 2 to 5 that build dicts, tuples, strings, bytes, numbers and reduced objects —
//! and everything else is refused with the offset of the byte it stopped at. Every length is
//! checked against the bytes that remain, nesting is limited, memo copies are budgeted and the
//! values a file builds may take at most 16 bytes of memory per byte of file (plus 1 MiB), so a
//! malformed file fails instead of allocating without bound or overflowing the stack. Globals
//! other than numpy's array rebuild are refused by name; nothing is ever called.

mod read;
mod write;

use thiserror::Error;

use crate::format::FloatDtype;

pub use read::read;
pub use write::write;

/// One array of a `.pdparams` file.
#[derive(Debug, Clone, PartialEq)]
pub struct PdArray {
    /// The state-dict key (`fc.weight_orig`).
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The element type.
    pub dtype: FloatDtype,
    /// The little-endian element bytes, row-major.
    pub bytes: Vec<u8>,
}

/// Why a `.pdparams` file could not be read, or arrays could not be written as one.
#[derive(Debug, Error, PartialEq)]
#[error("not a Paddle state dict pickle: {0}")]
pub struct PdparamsError(String);

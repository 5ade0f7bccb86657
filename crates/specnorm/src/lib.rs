//! The checkpoint readers and writers of the `specnorm` command, as a library so that the
//! fuzz targets (`fuzz/`) and the malformed-corpus test call exactly what the command calls.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod tensors;
pub mod text;
mod torch_zip;

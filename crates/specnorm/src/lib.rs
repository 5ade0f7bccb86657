//! The checkpoint readers and writers of the `specnorm` command and what it computes from
//! them (σ, the axis u and v belong to, the baked weights), as a library so that the fuzz
//! targets (`fuzz/`) and the malformed-corpus test call exactly what the command calls.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod network;
pub mod sigma;
pub mod tensors;
mod torch_globals;
mod torch_zip;
pub mod weights;

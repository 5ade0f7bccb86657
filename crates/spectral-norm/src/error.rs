//! Why spectral normalization could not be applied or computed.

use thiserror::Error;

/// Everything that can be refused. Every refusal leaves the caller's module unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpectralNormError {
    /// `n_power_iterations` was 0; the hook form needs at least one step per use.
    #[error("n_power_iterations must be at least 1 (got 0)")]
    ZeroPowerIterations,

    /// `eps` was not a finite positive number. It bounds a vector's norm from below in
    /// `x / max(‖x‖, eps)`: a NaN disables the bound, 0 or a negative value lets a zero vector
    /// become NaN, and an infinite one makes every vector, and so σ, zero.
    #[error("eps must be finite and positive, got {eps}")]
    InvalidEps {
        /// The value given.
        eps: f64,
    },

    /// The target bound `c` of a normalized weight is not finite and positive.
    #[error("target_bound must be finite and positive, got {bound}")]
    InvalidTargetBound {
        /// The value given.
        bound: f64,
    },

    /// A power iteration run to convergence was given no steps to take.
    #[error("max_iterations must be at least 1 (got 0)")]
    ZeroMaxIterations,

    /// A convergence tolerance was not a finite positive number.
    #[error("tolerance must be finite and positive, got {tolerance}")]
    InvalidTolerance {
        /// The value given.
        tolerance: f64,
    },

    /// No float parameter has this path.
    #[error("no float parameter named `{name}`; the module has: {available}")]
    ParameterNotFound {
        /// The path asked for.
        name: String,
        /// The float parameters the module does have, comma-separated.
        available: String,
    },

    /// The path names the state of a reparameterization, not a parameter.
    #[error("`{name}` is reparameterization state, not a parameter")]
    NotAParameter {
        /// The path asked for.
        name: String,
    },

    /// `dim` is not an axis of the parameter.
    #[error("dim {dim} is out of range for `{name}` with shape {shape:?}: allowed 0..{rank}", rank = shape.len())]
    DimOutOfRange {
        /// The parameter's path.
        name: String,
        /// The axis asked for (or the layer's default).
        dim: usize,
        /// The parameter's shape.
        shape: Vec<usize>,
    },

    /// `dim = None` but the parameter's owner is not a layer with a known output axis.
    #[error(
        "no default dim for `{name}` (owned by `{owner}`): pass dim explicitly; defaults exist \
         for Linear, Conv1d/2d/3d, ConvTranspose1d/2d/3d, DeformConv2d and Embedding"
    )]
    DimRequired {
        /// The parameter's path.
        name: String,
        /// The type of the module that owns it.
        owner: String,
    },

    /// Spectral normalization is already attached to this parameter.
    #[error("spectral norm is already applied to `{name}`; remove it first")]
    AlreadyApplied {
        /// The parameter's path.
        name: String,
    },

    /// Another reparameterization (LoRA, weight norm, …) is attached; Burn cannot nest them.
    #[error("`{name}` already carries the `{kind}` reparameterization, and Burn cannot nest them")]
    OtherReparameterization {
        /// The parameter's path.
        name: String,
        /// The attached reparameterization's name.
        kind: String,
    },

    /// The parameter has no elements along some axis: there is no matrix to normalize.
    #[error("`{name}` has shape {shape:?}, with a zero-sized axis: nothing to normalize")]
    EmptyParameter {
        /// The parameter's path.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// A vector handed to [`SpectralNorm::set_vectors`](crate::SpectralNorm::set_vectors) does
    /// not have the stored vector's length.
    #[error("{vector} must have {expected} elements to fit the weight, got {got}")]
    VectorLength {
        /// `"u"` or `"v"`.
        vector: &'static str,
        /// The stored vector's length.
        expected: usize,
        /// The given vector's length.
        got: usize,
    },

    /// A convolution's geometry does not fit its weight or its input.
    #[error("convolution geometry: {why}")]
    InvalidGeometry {
        /// What does not fit.
        why: String,
    },

    /// The op form was given a weight shape or axis it cannot handle.
    #[error("spectral norm op: {0}")]
    InvalidOp(String),
}

//! The arguments of `paddle.nn.utils.spectral_norm`, as a Burn config.

use burn::config::Config;

/// What [`spectral_norm`](crate::spectral_norm) attaches, and where.
///
/// The defaults are Paddle's and PyTorch's: `name = "weight"`, one power iteration per
/// training-mode use of the weight, `eps = 1e-12`, and the layer's output axis as `dim`.
///
/// ```
/// use spectral_norm::SpectralNormConfig;
///
/// let config = SpectralNormConfig::new().with_n_power_iterations(3).with_dim(Some(0));
/// assert_eq!(config.name, "weight");
/// assert_eq!(config.eps, 1e-12);
/// ```
#[derive(Config, Debug, PartialEq)]
pub struct SpectralNormConfig {
    /// Path of the parameter to normalize: a field of the layer (`"weight"`, `"bias"`) or a
    /// dotted path into a larger module (`"disc.fc.weight"`, `"blocks.0.conv.weight"`).
    #[config(default = "String::from(\"weight\")")]
    pub name: String,
    /// Power-iteration steps per training-mode use of the weight. At least 1.
    #[config(default = 1)]
    pub n_power_iterations: usize,
    /// Lower bound on a vector norm: vectors are scaled by `1 / max(‖x‖, eps)`.
    #[config(default = 1e-12)]
    pub eps: f64,
    /// Axis of the weight whose size becomes the matrix height. `None` picks the output axis of
    /// a known Burn layer (1 for `Linear` and `ConvTranspose*`, 0 for `Conv*`, `DeformConv2d`
    /// and `Embedding`), Paddle's rule.
    pub dim: Option<usize>,
}

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
///
/// Beyond Paddle's arguments (all off by default, so the defaults stay Paddle-exact):
/// warm-up steps at attach, a target norm `c` (hard, or as a clamp), and a learned scale γ.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNorm, SpectralNormConfig, inspect, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let config = SpectralNormConfig::new()
///     .with_warmup_iterations(15) // σ is already converged at the first use
///     .with_target_bound(0.9)     // the layer's norm: 0.9 instead of 1 …
///     .with_clamp(true)           // … or less: W / max(1, σ / 0.9)
///     .with_learned_scale(true);  // times a trained γ
/// let layer = spectral_norm(&LinearConfig::new(8, 8).init(&device), &config).unwrap();
/// let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
/// assert_eq!((state.target_bound(), state.clamps(), state.gamma()), (0.9, true, Some(1.0)));
/// let _ = layer.forward(Tensor::<2>::ones([2, 8], &device));
/// assert!(inspect(&layer.weight).unwrap().sigma > 0.0);
/// ```
///
/// Instead of a fixed step count, a tolerance: each use iterates until σ settles.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNorm, SpectralNormConfig, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let config = SpectralNormConfig::new()
///     .with_convergence_tolerance(Some(1e-6))
///     .with_max_power_iterations(500);
/// let layer = spectral_norm(&LinearConfig::new(16, 16).init(&device), &config).unwrap();
/// let _ = layer.forward(Tensor::<2>::ones([2, 16], &device));
/// let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
/// assert!((2..=500).contains(&state.last_steps())); // from a random start: more than one
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
    /// Power-iteration steps run once when the norm is attached, so that the first use
    /// already divides by a σ close to the true one. 0 (Paddle's and PyTorch's hook form);
    /// PyTorch's parametrization form runs 15, see [`pytorch`](Self::pytorch). Measured on
    /// Burn's default initialization (10 seeds, f32): after the first training use with one
    /// step per use, σ is 0.73× the true σ of a 256 → 256 Linear (0.70× at worst) and 0.81×
    /// (0.77×) of a 64 → 64 3×3 conv; with 15 warm-up steps, 0.98× (0.96×) for both.
    #[config(default = 0)]
    pub warmup_iterations: usize,
    /// The norm `c` the used weight is given: `c · W / σ` (1, Paddle's `W / σ`). Finite and
    /// positive. Lipschitz networks that want `σ(W_eff) ≤ c` set it (and maybe `clamp`).
    #[config(default = 1.0)]
    pub target_bound: f64,
    /// Scale the weight down only when `σ > c`: `W / max(1, σ / c)`. While `σ ≤ c` the layer
    /// uses `W` unchanged and no gradient flows through σ; at `σ = c` exactly too (the
    /// derivative from below is the subgradient chosen).
    #[config(default = false)]
    pub clamp: bool,
    /// Learn a scale γ (one scalar, starting at 1): the layer uses `γ · W / σ`, giving back
    /// the capacity that fixing the norm takes from discriminators and classifiers. γ is a
    /// parameter like the weight (the optimizer trains it, records save it as
    /// `<param>.spectral_norm.gamma`); `remove_spectral_norm` bakes it in.
    #[config(default = false)]
    pub learned_scale: bool,
    /// Iterate each training use until σ's relative change over one step is at most this
    /// (after at least `n_power_iterations` steps, at most `max_power_iterations` in all
    /// unless `n_power_iterations` is more),
    /// as deel-lip's `eps_spectral`; `None`, the default, runs exactly `n_power_iterations`.
    /// The steps taken are reported by [`SpectralNorm::last_steps`](crate::SpectralNorm::last_steps).
    pub convergence_tolerance: Option<f64>,
    /// The cap on steps per use under `convergence_tolerance` (deel-lip's
    /// `maxiter_spectral`).
    #[config(default = 100)]
    pub max_power_iterations: usize,
}

impl SpectralNormConfig {
    /// The behaviour of `torch.nn.utils.parametrizations.spectral_norm` for users porting
    /// PyTorch models: one step per use, `eps = 1e-12`, the layer's output axis (PyTorch's
    /// `dim` rule, 0 except 1 for transposed convolutions, is that axis in Burn's layouts,
    /// where a `Linear` weight is `[in, out]`), and 15 warm-up steps at registration. (The
    /// older hook form, `torch.nn.utils.spectral_norm`, has no warm-up: that is
    /// [`new`](Self::new).)
    ///
    /// ```
    /// use spectral_norm::SpectralNormConfig;
    ///
    /// let config = SpectralNormConfig::pytorch();
    /// assert_eq!((config.n_power_iterations, config.warmup_iterations), (1, 15));
    /// assert_eq!(config.dim, None);
    /// ```
    pub fn pytorch() -> Self {
        Self::new().with_warmup_iterations(15)
    }
}

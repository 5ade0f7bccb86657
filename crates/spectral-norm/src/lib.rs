//! Spectral normalization ([Miyato et al., ICLR 2018](https://arxiv.org/abs/1802.05957)) for
//! [Burn](https://burn.dev) layers, with the exact semantics of PaddlePaddle's
//! `paddle.nn.utils.spectral_norm`.
//!
//! [`spectral_norm`] attaches the normalization to a weight of any Burn module. The module keeps
//! its type and its `forward`; the weight it uses becomes `W / σ`, where `σ` estimates the
//! largest singular value of `W` viewed as a matrix (axis `dim` first, the rest flattened).
//!
//! ```
//! use burn::nn::{LinearConfig, conv::Conv2dConfig};
//! use burn::prelude::*;
//! use spectral_norm::{SpectralNormConfig, inspect, remove_spectral_norm, spectral_norm};
//!
//! let device = Device::flex().autodiff();
//! let sn = SpectralNormConfig::new(); // name "weight", 1 iteration, eps 1e-12, dim = output axis
//! let fc = spectral_norm(&LinearConfig::new(16, 8).init(&device), &sn).unwrap();
//! let conv = spectral_norm(&Conv2dConfig::new([3, 8], [3, 3]).init(&device), &sn).unwrap();
//!
//! // Training mode (autodiff device): each forward advances the power iteration by one step
//! // and the gradient flows into W through σ.
//! let y = fc.forward(Tensor::<2>::ones([4, 16], &device));
//! let _grads = y.sum().backward();
//! let _features = conv.forward(Tensor::<4>::ones([1, 3, 8, 8], &device));
//!
//! // Read σ, u, v and W/σ without advancing anything; `valid()` gives eval mode.
//! let snapshot = inspect(&fc.weight).unwrap();
//! assert!(snapshot.sigma > 0.0);
//!
//! // Bake W/σ into a plain weight.
//! let plain = remove_spectral_norm(fc);
//! assert!(inspect(&plain.weight).is_none());
//! ```
//!
//! Also: the state itself, `param.reparameterization::<`[`SpectralNorm`]`>()`, gives `u()`,
//! `v()`, its settings and `set_vectors` (vectors from elsewhere); [`set_power_iteration`] stops
//! or resumes the iteration on the training device (for a gradient penalty, say);
//! [`largest_singular_value`], [`power_iteration`], [`matrix_view`] and [`sigma_from_vectors`]
//! measure any weight; [`conv_operator_norm`] measures a convolution as the linear map it is on
//! inputs of a given size ([`ConvOperator`]), its true Lipschitz constant, and
//! [`conv_operator_bound`] bounds it from above with a certificate;
//! [`spectral_norm_conv`] / [`spectral_norm_operator`] normalize by that norm instead of the
//! matrix view's (the operator mode: use it where a layer's Lipschitz constant must be 1; it
//! costs a convolution and its adjoint per power-iteration step, on the generic path); [`SpectralNormOp`] is Paddle's op layer.
//! [`SpectralNormConfig`] adds, off by default, warm-up steps at attach
//! ([`SpectralNormConfig::pytorch`] is PyTorch's parametrization), a target norm `c` (`c·W/σ`,
//! or the clamp `W / max(1, σ/c)`) and a learned scale γ. With the `store` feature,
//! `checkpoint` loads and saves Paddle's and PyTorch's checkpoint layouts (and names their
//! keys), `pdparams` reads and writes Paddle's pickles, and `format` names file formats and
//! float dtypes.
//!
//! # Two modes
//!
//! - **Matrix view** ([`spectral_norm`]): σ of the weight with axis `dim` first and the rest
//!   flattened, `u` `[shape[dim]]` and `v` `[numel / shape[dim]]`. This is the paper's, Paddle's
//!   and PyTorch's spectral norm. For a Linear layer it is the layer's Lipschitz constant; for a
//!   convolution it is not (the convolution as a map on images can have a norm up to about
//!   √(k·k)/stride times larger, or smaller). It costs a pass over `W` per iteration step and
//!   has the Flex fast path. Use it for what the paper uses it for: stable GAN discriminators.
//! - **Operator norm** ([`spectral_norm_conv`], [`spectral_norm_operator`]): σ of the map
//!   `x ↦ conv(x)` on inputs of one spatial size with the layer's stride, padding, dilation and
//!   groups; `u` is one output sample and `v` one input sample, flattened. After training, the
//!   layer's Lipschitz constant on inputs of that size is 1 up to the power iteration's accuracy,
//!   which [`conv_operator_bound`] certifies from above; [`FeedForwardBound`] multiplies the
//!   certified bounds of a feed-forward stack's layers, checking that they compose. Each iteration step costs a convolution of one sample and its adjoint,
//!   in Burn operations on every backend (no fast path), and the spatial size is fixed at attach.
//!   Use it for Lipschitz networks, certified robustness and invertible residual networks.
//!
//! Both share everything else: modes, records, `inspect`, removal, `set_power_iteration`.
//!
//! # Features and speed
//!
//! - `flex` (default): on Burn's Flex CPU backend, f32/f64 weights are read in place: the power
//!   iteration fuses `Wᵀu` and `W v` into one sweep per step, σ comes from the last normalization,
//!   `W/σ` reuses earlier outputs' storage (one per use within a step, up to four), which starts
//!   on a cache line (from 2 MiB on Linux, advised for transparent huge pages; streaming stores
//!   for weights of 32 MiB or more), the backward is one closed-form autodiff node that corrects
//!   the incoming gradient in place (a convolution's too, in the swapped layout Burn produces),
//!   and eval mode caches `W/σ` while `W` is the same tensor and neither vector was written.
//!   The storage survives optimizer steps. Large weights are split across the rayon pool.
//!   f16/bf16 weights run the fused power iteration and the closed-form division on their f32
//!   widening (see below). Every other backend, dtype or layout runs the generic path in Burn
//!   tensor operations, with the same results up to rounding.
//! - `store`: checkpoint interop (see above).
//!
//! # Semantics
//!
//! - Wrapping draws `u` `[h]` and `v` `[w]` from N(0, 1) and normalizes them. They are saved and
//!   loaded with the module's record under `<param>.spectral_norm.u` and `.v`, always as they
//!   are after the last forward, and never trained.
//! - Training mode (autodiff device, not [`valid`](burn::module::Module::valid) or
//!   [`freeze`](burn::module::Module::freeze)): every use of the weight runs
//!   `n_power_iterations` steps `v = normalize(Wᵀu)`, `u = normalize(W v)` with
//!   `normalize(x) = x / max(‖x‖₂, eps)`, stores `u`, `v`, and returns `W / σ` with
//!   `σ = u·(W v)`; `u`, `v` are constants of the graph, so `∂σ/∂W = u vᵀ`.
//!   Two forwards before one backward (a GAN discriminator on real and fake) each keep their
//!   own constants.
//! - Evaluation mode: no iteration; `σ` from the stored vectors.
//! - `‖x‖` is a plain sum of squares in the weight's compute dtype, as Paddle computes it: squares may
//!   overflow (f32 entries ≳ 1.8e19) or underflow like Paddle's do.
//!
//! # Half precision
//!
//! f16 and bf16 weights compute in f32: each use widens `W` to f32 (one pass), runs the power
//! iteration and σ there (on the fast path too), keeps `u`, `v` (and γ) in f32, and rounds
//! `W / σ`, computed in f32, once to the weight's dtype; the gradient reaches the half `W`
//! through that cast. So σ² beyond f16's 65504 does not overflow, `eps = 1e-12` is not
//! rounded to 0 (an `eps` below f32's smallest normal, 1.2e-38, is raised to it), and the
//! result is the f32 result rounded. f32 and f64 weights compute in their own dtype.
//!
//! ```
//! use burn::module::Param;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::prelude::*;
//! use burn::tensor::DType;
//! use spectral_norm::{SpectralNormConfig, inspect, spectral_norm};
//!
//! let device = Device::flex().autodiff();
//! let plain = LinearConfig::new(64, 32).with_bias(false).init(&device);
//! let big = Tensor::<2>::ones([64, 32], (&device, DType::F16)).mul_scalar(60.0); // σ = 2715
//! let layer = Linear { weight: Param::from_tensor(big), ..plain };
//! let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
//! assert_eq!(layer.weight.val().dtype(), DType::F16);
//! let snapshot = inspect(&layer.weight).unwrap();
//! assert_eq!(snapshot.u.dtype(), DType::F32);
//! assert!((snapshot.sigma - 60.0 * (64.0f64 * 32.0).sqrt()).abs() < 0.1);
//! ```
//!
//! # NaN and infinity
//!
//! Nothing is refused at run time and nothing panics: non-finite values propagate as in Paddle.
//! One NaN in `W` makes `u`, `v`, `σ` and `W/σ` NaN (the `max` keeps NaN); an infinite entry
//! makes the norm infinite and the result NaN; an all-zero `W` gives `u = v = 0`, `σ = 0` and
//! a NaN weight (`0 / 0`). The vectors then stay NaN until overwritten, as in Paddle. Finite
//! weights whose squares overflow give an infinite norm, so `v = Wᵀu / ∞ = 0`, `u = 0`, `σ = 0`
//! and `W/σ = ±∞` (NaN where `W` is 0); where `σ²` underflows (f32 weights ~1e-15) the gradient
//! is NaN, as autodiff through `W / σ` computes it. The Flex fast path takes the unfused
//! computation wherever its fused one would give other infinities or NaNs.
//!
//! # Differences from Paddle
//!
//! - Refusals are typed [`SpectralNormError`]s and leave the module unchanged.
//! - Paddle leaves `layer.weight` as a stale copy until the next forward; Burn computes the
//!   weight on use, so there is no stale value to read.
//! - [`SpectralNormOp`] (Paddle's `paddle.nn.SpectralNorm`) returns the true gradient.

#![deny(missing_docs)]

mod accel;
mod attach;
mod buffer;
#[cfg(feature = "store")]
pub mod checkpoint;
mod config;
mod conv_layers;
mod error;
mod estimate;
mod estimator;
#[cfg(all(test, feature = "flex"))]
mod fast_path_tests;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "store")]
pub mod format;
mod inspect;
mod lipschitz;
mod matrix;
mod mode;
mod op;
mod operator;
mod operator_bound;
#[cfg(feature = "store")]
pub mod pdparams;
mod precision;
mod remove;
mod reparameterization;
mod scratch;
mod target;

pub use attach::{default_dim, spectral_norm, spectral_norm_conv, spectral_norm_operator};
pub use config::SpectralNormConfig;
pub use conv_layers::ConvLayer;
pub use error::SpectralNormError;
pub use estimate::{
    Convergence, largest_singular_value, matrix_view, power_iteration, power_iteration_from,
    sigma_from_vectors,
};
pub use inspect::{SpectralNormSnapshot, inspect};
pub use lipschitz::{FeedForwardBound, LayerBound};
pub use mode::set_power_iteration;
pub use op::{SpectralNormOp, SpectralNormOpConfig, spectral_norm_op};
pub use operator::{
    ConvKind, ConvOperator, conv_operator_norm, conv_operator_norm_from, conv_sigma_from_vectors,
};
pub use operator_bound::{conv_operator_bound, matrix_norm_bound};
pub use remove::remove_spectral_norm;
pub use reparameterization::SpectralNorm;

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

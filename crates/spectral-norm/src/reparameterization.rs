//! The spectral-norm state attached to a weight: the Burn [`Reparameterization`] that turns the
//! stored `W` into `W / σ` on every use. It alone decides the mode, holds the lock and writes
//! `u` and `v`; how σ is estimated is its [`Estimator`]'s business. It also widens a half
//! weight to f32 once per use and rounds the result back (`precision.rs`), so that the
//! estimators only see the dtype they compute in.

use core::num::NonZeroUsize;

use burn::module::Flag;
use burn::module::{Module, Param, Reparameterization};
use burn::prelude::*;

use crate::accel::Storage;
use crate::buffer::Buffer;
use crate::error::SpectralNormError;
use crate::estimator::{Estimate, Estimator, SigmaEstimator};
use crate::operator::ConvOperator;
use crate::precision::{eps_for, in_dtype, widen};
use crate::scratch::Scratch;
use crate::target::NormTarget;

/// Spectral normalization state of one weight, attached by [`spectral_norm`](crate::spectral_norm).
///
/// The weight's `Param` keeps storing the trainable `W` (read it with [`Param::base`]);
/// [`Param::val`], and so the layer's own `forward`, returns `W / σ`. In records the vectors are
/// saved as `<param>.spectral_norm.u` (`[h]`) and `<param>.spectral_norm.v` (`[w]`).
///
/// Training mode (the weight lives on an autodiff device and the layer was not put in
/// [`valid`](Module::valid) or [`freeze`](Module::freeze) mode): each use runs
/// `n_power_iterations` steps without gradient, stores the new `u`, `v`, and computes
/// `σ = u·(W v)` with `u`, `v` constant, so the gradient reaches `W` through `σ`.
/// Evaluation mode: no iteration; `σ` comes from the stored vectors.
///
/// Reach it through the parameter:
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNorm, SpectralNormConfig, spectral_norm};
///
/// let device = Device::flex();
/// let layer = spectral_norm(&LinearConfig::new(4, 3).init(&device), &SpectralNormConfig::new()).unwrap();
/// let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
/// assert_eq!((state.dim(), state.n_power_iterations().get()), (Some(1), 1));
/// assert_eq!(state.u().dims(), [3]);
/// ```
#[derive(Module, Debug)]
pub struct SpectralNorm {
    /// Left singular vector estimate, `[h]`.
    u: Buffer<1>,
    /// Right singular vector estimate, `[w]`.
    v: Buffer<1>,
    /// Whether training behaviour (power iteration) is enabled.
    training: Param<Flag>,
    /// Power-iteration steps per training-mode use of the weight.
    #[module(skip)]
    n_power_iterations: NonZeroUsize,
    /// Lower bound on a vector norm in `x / max(‖x‖, eps)`.
    eps: f64,
    /// How σ is estimated.
    #[module(skip)]
    estimator: Estimator,
    /// The norm the used weight is given: `c · W / σ`, or `W / max(1, σ / c)`.
    #[module(skip)]
    target: NormTarget,
    /// A learned scale γ (`[1]`): the used weight is γ times the normalized one. Trained by
    /// the optimizer and saved as `<param>.spectral_norm.gamma`; absent by default.
    gamma: Option<Param<Tensor<1>>>,
    /// Iterate until σ's relative change is at most `.0`, in at most `.1` steps per use.
    #[module(skip)]
    convergence: Option<(f64, usize)>,
    /// Steps the last training use took (shared by clones, as the vectors are).
    #[module(skip)]
    last_steps: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Memory kept between uses (not saved).
    scratch: Scratch,
}

impl Reparameterization for SpectralNorm {
    const NAME: &'static str = "spectral_norm";

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        let dtype = base.dtype();
        let eps = eps_for(self.eps, dtype);
        let weight = if self.is_training(&base) {
            let base = widen(base);
            let estimate = self.advance(&base, eps);
            self.target.apply(
                base,
                |w| self.estimator.sigma_of(w, &estimate),
                |w| self.divide(w, &estimate),
            )
        } else if base.is_autodiff() {
            // Power iteration off on the training device: the stored vectors, and a gradient.
            let base = widen(base);
            let stored = self.stored();
            self.target.apply(
                base,
                |w| self.estimator.sigma_of(w, &stored),
                |w| self.divide(w, &stored),
            )
        } else {
            // Not widened here: the eval cache knows the weight by its own storage.
            let stored = self.stored();
            self.target.apply(
                base,
                |w| self.estimator.sigma_of(&widen(w.clone()), &stored),
                |w| self.evaluate(w),
            )
        };
        in_dtype(self.scaled(weight), dtype)
    }
}

impl SpectralNorm {
    /// `γ · weight` when a scale is learned.
    fn scaled<const D: usize>(&self, weight: Tensor<D>) -> Tensor<D> {
        match &self.gamma {
            None => weight,
            Some(gamma) => {
                let gamma = gamma.val();
                let gamma = if weight.is_autodiff() {
                    gamma
                } else {
                    gamma.without_autodiff()
                };
                let dtype = weight.dtype();
                weight * in_dtype(gamma, dtype).reshape([1; D])
            }
        }
    }

    /// Power-iteration steps the last training use took (0 before the first): always
    /// `n_power_iterations` without a convergence tolerance.
    pub fn last_steps(&self) -> usize {
        self.last_steps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The convergence tolerance and step cap, if set.
    pub fn convergence(&self) -> Option<(f64, usize)> {
        self.convergence
    }

    /// The learned scale γ, if there is one.
    pub fn gamma(&self) -> Option<f64> {
        self.gamma
            .as_ref()
            .map(|gamma| gamma.val().into_scalar::<f64>())
    }

    /// Fresh state for `estimator` from start vectors `u` and `v` (gradient tracking removed).
    pub(crate) fn new(
        estimator: Estimator,
        (u, v): (Tensor<1>, Tensor<1>),
        n_power_iterations: NonZeroUsize,
        eps: f64,
        target: NormTarget,
        gamma: Option<Param<Tensor<1>>>,
        convergence: Option<(f64, usize)>,
    ) -> Self {
        Self {
            convergence,
            last_steps: Default::default(),
            target,
            gamma,
            u: Buffer::new(u),
            v: Buffer::new(v),
            training: Param::from_bool(true),
            n_power_iterations,
            eps,
            estimator,
            scratch: Scratch::default(),
        }
    }

    /// The stored left vector `u`, `[h]`.
    pub fn u(&self) -> Tensor<1> {
        self.u.get()
    }

    /// The stored right vector `v`, `[w]`.
    pub fn v(&self) -> Tensor<1> {
        self.v.get()
    }

    /// The axis of the weight that becomes the matrix rows, in matrix-view mode; `None` in
    /// operator mode.
    pub fn dim(&self) -> Option<usize> {
        match &self.estimator {
            Estimator::MatrixView(view) => Some(view.dim()),
            Estimator::Operator(_) => None,
        }
    }

    /// The convolution whose norm σ estimates, in operator mode; `None` in matrix-view mode.
    pub fn operator(&self) -> Option<&ConvOperator> {
        match &self.estimator {
            Estimator::MatrixView(_) => None,
            Estimator::Operator(norm) => Some(norm.operator()),
        }
    }

    /// Power-iteration steps per training-mode use of the weight.
    pub fn n_power_iterations(&self) -> NonZeroUsize {
        self.n_power_iterations
    }

    /// The lower bound on a vector norm in `x / max(‖x‖, eps)`.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// The target bound `c` of the used weight's norm (1: Paddle's `W / σ`).
    pub fn target_bound(&self) -> f64 {
        self.target.bound
    }

    /// Whether the weight is only scaled down when `σ > c` (`W / max(1, σ / c)`) rather than
    /// always to `c` (`c · W / σ`).
    pub fn clamps(&self) -> bool {
        self.target.clamp
    }

    /// Whether training-mode uses run the power iteration (see
    /// [`set_power_iteration`](crate::set_power_iteration)).
    pub fn is_iterating(&self) -> bool {
        self.training.is_enabled()
    }

    /// Replaces both vectors, as a record load would: for restoring a state from elsewhere
    /// (another framework's checkpoint, a recorded test case). Clones share the change.
    ///
    /// ```
    /// use burn::nn::LinearConfig;
    /// use burn::prelude::*;
    /// use spectral_norm::{SpectralNorm, SpectralNormConfig, inspect, spectral_norm};
    ///
    /// let device = Device::flex();
    /// let layer = spectral_norm(&LinearConfig::new(2, 2).init(&device), &SpectralNormConfig::new()).unwrap();
    /// let state = layer.weight.reparameterization::<SpectralNorm>().unwrap();
    /// let e0 = Tensor::<1>::from_data([1.0, 0.0], &device);
    /// state.set_vectors(e0.clone(), e0.clone()).unwrap();
    /// assert!(state.set_vectors(e0.clone(), Tensor::zeros([3], &device)).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`SpectralNormError::VectorLength`] when a length differs from the stored vector's;
    /// nothing is changed then.
    pub fn set_vectors(&self, u: Tensor<1>, v: Tensor<1>) -> Result<(), SpectralNormError> {
        for (name, stored, new) in [("u", self.u.get(), &u), ("v", self.v.get(), &v)] {
            if stored.dims() != new.dims() {
                return Err(SpectralNormError::VectorLength {
                    vector: name,
                    expected: stored.dims()[0],
                    got: new.dims()[0],
                });
            }
        }
        self.u.update(|stored_u| {
            self.v.set(v);
            *stored_u = u.detach();
        });
        Ok(())
    }

    /// Whether a use of `weight` runs the power iteration: Burn's rule for modules with
    /// training behaviour (as in `BatchNorm`), an autodiff device and an enabled flag.
    fn is_training<const D: usize>(&self, weight: &Tensor<D>) -> bool {
        weight.is_autodiff() && self.training.is_enabled()
    }

    fn stored(&self) -> Estimate {
        Estimate::of_vectors(self.u.get(), self.v.get())
    }

    /// Runs the power iteration on the weight without gradient and stores the result.
    ///
    /// `u`'s lock is held from reading it to storing the new pair: concurrent forwards then
    /// behave as if run one after another, and the stored `u`, `v` always belong together.
    fn advance<const D: usize>(&self, base: &Tensor<D>, eps: f64) -> Estimate {
        self.u.update(|stored_u| {
            // The tracked weight: the iteration takes it as a constant, and the generic path
            // keeps its last product in the graph for σ (see `Estimate::product`).
            let (estimate, steps) = self.iterate(base, stored_u.clone(), eps);
            self.last_steps
                .store(steps, std::sync::atomic::Ordering::Relaxed);
            self.v.set(estimate.v.clone());
            *stored_u = estimate.u.clone();
            estimate
        })
    }

    /// `n_power_iterations` steps from `u`; with a tolerance, then one more at a time until
    /// σ's relative change over a step is within it or the cap is reached. Returns the
    /// estimate and the steps taken.
    fn iterate<const D: usize>(
        &self,
        weight: &Tensor<D>,
        u: Tensor<1>,
        eps: f64,
    ) -> (Estimate, usize) {
        let n = self.n_power_iterations;
        let mut estimate = self.estimator.iterate(weight, u, n, eps);
        let Some((tolerance, cap)) = self.convergence else {
            return (estimate, n.get());
        };
        let mut sigma = self.estimator.sigma_of(weight, &estimate);
        let mut steps = n.get();
        while steps < cap {
            let next = self
                .estimator
                .iterate(weight, estimate.u.clone(), NonZeroUsize::MIN, eps);
            let next_sigma = self.estimator.sigma_of(weight, &next);
            steps += 1;
            estimate = next;
            let change = (next_sigma - sigma).abs();
            sigma = next_sigma;
            if change <= tolerance * sigma.abs() {
                break;
            }
        }
        estimate.sigma = Some(sigma);
        (estimate, steps)
    }

    /// `W / σ` for a training-device use, written into kept storage where it can be.
    fn divide<const D: usize>(&self, base: Tensor<D>, estimate: &Estimate) -> Tensor<D> {
        let (len, dtype) = (base.shape().num_elements(), base.dtype());
        let divided = self
            .estimator
            .divide(base, estimate, || self.scratch.take(len, dtype));
        if let Some(storage) = divided.storage {
            self.scratch.keep(storage);
        }
        divided.weight
    }

    /// Evaluation: `W / σ` from the stored vectors, in the weight's dtype, served again while
    /// `W` is the very same tensor and neither vector's buffer was written (a hit reads only
    /// the buffers' stamps).
    fn evaluate<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        if let Some(hit) = self.scratch.cached(&base, self.u.stamp(), self.v.stamp())
            && let Some(weight) = hit.tensor::<D>()
        {
            return weight;
        }
        let (u, u_stamp) = self.u.get_stamped();
        let (v, v_stamp) = self.v.get_stamped();
        let weight = Storage::of(&base);
        let (len, dtype) = (base.shape().num_elements(), base.dtype());
        let widened = widen(base);
        let compute = widened.dtype();
        let estimate = Estimate::of_vectors(u, v);
        let divided = self
            .estimator
            .divide(widened, &estimate, || self.scratch.take(len, compute));
        let result = in_dtype(divided.weight, dtype);
        // What is cached is the result itself (for a half weight, not the f32 storage the
        // division wrote), where the backend computed it in storage of its own.
        let output = divided.storage.and(Storage::of(&result));
        if let (Some(output), Some(weight)) = (output, weight) {
            self.scratch.keep_eval(weight, u_stamp, v_stamp, output);
        }
        result
    }

    /// σ from the stored vectors and the weight that evaluation mode uses, `W / σ`, computed
    /// as evaluation computes them, without advancing or caching anything.
    pub(crate) fn snapshot<const D: usize>(&self, base: Tensor<D>) -> (f64, Tensor<D>) {
        let base = base.without_autodiff();
        let dtype = base.dtype();
        let mut estimate = self.stored();
        let sigma = self
            .estimator
            .sigma(&widen(base.clone()), &estimate.u, &estimate.v);
        estimate.sigma = Some(sigma);
        let weight = self.target.apply(
            base,
            |_| sigma,
            |w| {
                let divided = self.estimator.divide(widen(w), &estimate, || None);
                in_dtype(divided.weight, dtype)
            },
        );
        (sigma, self.scaled(weight))
    }

    /// How many outputs' storage is kept (for tests).
    #[cfg(all(test, feature = "flex"))]
    pub(crate) fn kept_outputs(&self) -> usize {
        self.scratch.kept()
    }
}

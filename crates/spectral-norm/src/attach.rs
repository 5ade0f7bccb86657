//! `spectral_norm`: validate the request against the module, then attach the state.

use burn::module::{Module, ModuleVisitor, Param, Reparameterization, Reparameterizer};
use burn::prelude::*;
use burn::tensor::Distribution;

use core::num::NonZeroUsize;

use crate::accel;
use crate::config::SpectralNormConfig;
use crate::conv_layers::ConvLayer;
use crate::error::SpectralNormError;
use crate::estimator::{Estimator, MatrixView, OperatorNorm, SigmaEstimator};
use crate::matrix::{Normalization, normalize};
use crate::mode::REPARAMETERIZATION_CONTAINER;
use crate::operator::ConvOperator;
use crate::precision::{compute_dtype, eps_for, widen};
use crate::reparameterization::SpectralNorm;
use crate::target::NormTarget;

/// Attaches spectral normalization to one parameter of `module` and returns the new module;
/// `module` itself is left as it was, also when an error is returned.
///
/// The module keeps its type and its `forward`: [`Param::val`] now yields `W / σ`. Works on
/// any Burn module. `config.name` is the parameter's path (`"weight"` for a layer,
/// `"disc.fc.weight"` deeper down); `config.dim = None` picks the output axis when the
/// parameter belongs to a Burn layer (see [`default_dim`]).
///
/// The vectors `u` (`[h]`) and `v` (`[w]`) are drawn from N(0, 1) with the device's random
/// generator, in the parameter's dtype (f32 for f16 and bf16 parameters, whose arithmetic runs
/// in f32), and normalized; then `config.warmup_iterations`
/// power-iteration steps run on the weight (none by default, as in Paddle).
///
/// On Flex, a weight that does not start on a cache line is copied into storage that does
/// (the fast path's training uses took 3–8% less time there), so the new module's weight no
/// longer shares storage with `module`'s: the copy that Burn's first optimizer step would
/// otherwise make of a shared weight is made here instead.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNormConfig, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let layer = LinearConfig::new(8, 4).init(&device);
/// let layer = spectral_norm(&layer, &SpectralNormConfig::new()).unwrap();
/// let y = layer.forward(Tensor::<2>::ones([2, 8], &device));
/// assert_eq!(y.dims(), [2, 4]);
/// ```
///
/// # Errors
///
/// See [`SpectralNormError`]: zero iterations, an `eps` that is not finite and positive, an
/// unknown path, a `dim` out of
/// range or missing, a zero-sized axis, or a parameter that is already reparameterized.
pub fn spectral_norm<M: Module>(
    module: &M,
    config: &SpectralNormConfig,
) -> Result<M, SpectralNormError> {
    let (target, n_power_iterations) = validate(module, config)?;
    let name = || config.name.clone();
    let dim = match config.dim {
        Some(dim) => dim,
        None => default_dim(&target.owner).ok_or_else(|| SpectralNormError::DimRequired {
            name: name(),
            owner: target.owner.clone(),
        })?,
    };
    if dim >= target.shape.len() {
        return Err(SpectralNormError::DimOutOfRange {
            name: name(),
            dim,
            shape: target.shape,
        });
    }
    if target.shape.contains(&0) {
        return Err(SpectralNormError::EmptyParameter {
            name: name(),
            shape: target.shape,
        });
    }
    let estimator = Estimator::MatrixView(MatrixView::new(dim));
    Ok(attach(module, config, estimator, n_power_iterations))
}

/// Attaches spectral normalization by the **operator norm** of a convolution: σ is the largest
/// singular value of the map `x ↦ conv(x)` (no bias) on inputs of `operator.input_size`, with
/// the layer's stride, padding, dilation and groups, instead of σ of the weight's matrix view.
/// `u` is one output sample and `v` one input sample, flattened; each training use runs
/// `n_power_iterations` steps `v = normalize(convᵀ(u))`, `u = normalize(conv(v))`, then uses
/// `W / σ` with `σ = ⟨u, conv_W(v)⟩`, the gradient reaching `W` through σ. Everything else
/// (modes, records, `inspect`, removal, typed errors) is as for [`spectral_norm`]; `config.dim`
/// does not apply. For a layer itself, [`spectral_norm_conv`] reads the geometry from it.
///
/// ```
/// use burn::nn::conv::Conv2dConfig;
/// use burn::nn::PaddingConfig2d;
/// use burn::prelude::*;
/// use spectral_norm::{ConvLayer, SpectralNormConfig, spectral_norm_operator};
///
/// let device = Device::flex().autodiff();
/// let conv = Conv2dConfig::new([3, 8], [3, 3])
///     .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
///     .init(&device);
/// let operator = conv.conv_operator(vec![16, 16]);
/// let conv = spectral_norm_operator(&conv, &SpectralNormConfig::new(), operator).unwrap();
/// let y = conv.forward(Tensor::<4>::ones([2, 3, 16, 16], &device));
/// assert_eq!(y.dims(), [2, 8, 16, 16]);
/// ```
///
/// # Errors
///
/// As [`spectral_norm`], and [`SpectralNormError::InvalidGeometry`] when `operator` does not
/// fit the parameter (not a convolution weight, the kernel larger than the input, …) or a
/// `dim` was given.
pub fn spectral_norm_operator<M: Module>(
    module: &M,
    config: &SpectralNormConfig,
    operator: ConvOperator,
) -> Result<M, SpectralNormError> {
    let (target, n_power_iterations) = validate(module, config)?;
    if config.dim.is_some() {
        return Err(SpectralNormError::InvalidGeometry {
            why: "dim chooses a matrix view; the operator mode has none".into(),
        });
    }
    operator.output_shape(&target.shape)?;
    let estimator = Estimator::Operator(OperatorNorm::new(operator));
    Ok(attach(module, config, estimator, n_power_iterations))
}

/// [`spectral_norm_operator`] on a convolution layer's `weight`, with the geometry read from
/// the layer for inputs of `input_size`.
///
/// ```
/// use burn::nn::conv::Conv1dConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNormConfig, inspect, spectral_norm_conv};
///
/// let device = Device::flex().autodiff();
/// let conv = Conv1dConfig::new(2, 4, 3).init(&device);
/// let conv = spectral_norm_conv(&conv, vec![10], &SpectralNormConfig::new()).unwrap();
/// let snapshot = inspect(&conv.weight).unwrap();
/// assert_eq!((snapshot.u.dims(), snapshot.v.dims()), ([4 * 8], [2 * 10]));
/// ```
///
/// # Errors
///
/// As [`spectral_norm_operator`].
pub fn spectral_norm_conv<L: ConvLayer + Module>(
    layer: &L,
    input_size: Vec<usize>,
    config: &SpectralNormConfig,
) -> Result<L, SpectralNormError> {
    spectral_norm_operator(layer, config, layer.conv_operator(input_size))
}

fn attach<M: Module>(
    module: &M,
    config: &SpectralNormConfig,
    estimator: Estimator,
    n_power_iterations: NonZeroUsize,
) -> M {
    module.clone().apply_reparameterization(Attach {
        path: &config.name,
        estimator,
        n_power_iterations,
        eps: config.eps,
        warmup: config.warmup_iterations,
        target: NormTarget {
            bound: config.target_bound,
            clamp: config.clamp,
        },
        learned_scale: config.learned_scale,
        convergence: config
            .convergence_tolerance
            .map(|tolerance| (tolerance, config.max_power_iterations)),
    })
}

/// Checks the request in Paddle's order (an existing attachment first, then the iteration
/// count and eps, then the parameter) and returns the parameter found and the step count.
fn validate<M: Module>(
    module: &M,
    config: &SpectralNormConfig,
) -> Result<(Target, NonZeroUsize), SpectralNormError> {
    let name = || config.name.clone();
    let survey = Survey::run(module, &config.name);
    if let Some(kind) = &survey.attached {
        return Err(match kind.as_str() {
            SpectralNorm::NAME => SpectralNormError::AlreadyApplied { name: name() },
            _ => SpectralNormError::OtherReparameterization {
                name: name(),
                kind: kind.clone(),
            },
        });
    }
    let n_power_iterations = NonZeroUsize::new(config.n_power_iterations)
        .ok_or(SpectralNormError::ZeroPowerIterations)?;
    if !(config.eps.is_finite() && config.eps > 0.0) {
        return Err(SpectralNormError::InvalidEps { eps: config.eps });
    }
    if let Some(tolerance) = config.convergence_tolerance {
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(SpectralNormError::InvalidTolerance { tolerance });
        }
        if config.max_power_iterations == 0 {
            return Err(SpectralNormError::ZeroMaxIterations);
        }
    }
    if !(config.target_bound.is_finite() && config.target_bound > 0.0) {
        return Err(SpectralNormError::InvalidTargetBound {
            bound: config.target_bound,
        });
    }
    let target = match survey.found {
        None => {
            let available = survey.available.join(", ");
            return Err(SpectralNormError::ParameterNotFound {
                name: name(),
                available,
            });
        }
        Some(_) if survey.inside_state => {
            return Err(SpectralNormError::NotAParameter { name: name() });
        }
        Some(target) => target,
    };
    Ok((target, n_power_iterations))
}

/// Paddle's `dim=None` rule for Burn's layers, from the type name of the module that owns the
/// parameter: the axis that indexes the layer's outputs.
///
/// `Linear` stores `[d_input, d_output]` (as Paddle does) and `ConvTranspose*` stores
/// `[in, out / groups, k…]`: axis 1. `Conv*`, `DeformConv2d` (`[out, in / groups, k…]`) and
/// `Embedding` (`[n, d]`): axis 0. Other owners have no default.
///
/// ```
/// assert_eq!(spectral_norm::default_dim("Struct:Linear"), Some(1));
/// assert_eq!(spectral_norm::default_dim("Struct:Conv2d"), Some(0));
/// assert_eq!(spectral_norm::default_dim("Struct:MyBlock"), None);
/// ```
pub fn default_dim(owner: &str) -> Option<usize> {
    match owner.strip_prefix("Struct:")? {
        "Linear" | "ConvTranspose1d" | "ConvTranspose2d" | "ConvTranspose3d" => Some(1),
        "Conv1d" | "Conv2d" | "Conv3d" | "DeformConv2d" | "Embedding" => Some(0),
        _ => None,
    }
}

/// What the survey learned about the target parameter.
struct Target {
    shape: Vec<usize>,
    owner: String,
}

/// A read-only pass over the module that finds the target parameter and checks that it can
/// take a reparameterization, before anything is changed.
struct Survey<'a> {
    target: &'a str,
    path: Vec<String>,
    owners: Vec<String>,
    found: Option<Target>,
    inside_state: bool,
    attached: Option<String>,
    available: Vec<String>,
}

impl<'a> Survey<'a> {
    fn run<M: Module>(module: &M, target: &'a str) -> Self {
        let mut survey = Survey {
            target,
            path: Vec::new(),
            owners: Vec::new(),
            found: None,
            inside_state: false,
            attached: None,
            available: Vec::new(),
        };
        module.visit(&mut survey);
        survey
    }

    fn is_target(&self, path: &[String]) -> bool {
        path.join(".") == self.target
    }
}

impl ModuleVisitor for Survey<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // A reparameterized parameter is visited as its base, followed by its state entered
        // as a module of container type "Reparameterization" named after the state.
        if container_type == REPARAMETERIZATION_CONTAINER && self.is_target(&self.path) {
            self.attached = Some(name.to_string());
        }
        self.path.push(name.to_string());
        self.owners.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        self.owners.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        let inside_state = self
            .owners
            .iter()
            .any(|owner| owner == REPARAMETERIZATION_CONTAINER);
        if path == self.target {
            self.inside_state = inside_state;
            self.found = Some(Target {
                shape: param.base().dims().to_vec(),
                owner: self.owners.last().cloned().unwrap_or_default(),
            });
        } else if !inside_state {
            self.available.push(path);
        }
    }
}

/// The reparameterizer: attaches fresh state to the one parameter at `path`.
struct Attach<'a> {
    path: &'a str,
    estimator: Estimator,
    n_power_iterations: NonZeroUsize,
    eps: f64,
    warmup: usize,
    target: NormTarget,
    learned_scale: bool,
    convergence: Option<(f64, usize)>,
}

/// `param` with its weight, and every weight later loaded into it (after the load mapper it
/// already has), in storage of our own where the kernels read it fastest (see
/// [`accel::rehome`]), which Burn's optimizers then update in place. The user's layer keeps
/// its weight.
fn rehomed_param<const D: usize>(param: Param<Tensor<D>>) -> Param<Tensor<D>> {
    let rehomed = |weight: Tensor<D>| accel::rehome(&weight).unwrap_or(weight);
    let (id, weight, mapper) = param.consume();
    let earlier = mapper.clone();
    Param::from_mapped_value(id, rehomed(weight), mapper)
        .load_mapper(move |loaded| rehomed(earlier.on_load(loaded)))
}

impl Reparameterizer for Attach<'_> {
    type Reparam = SpectralNorm;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<SpectralNorm>) {
        if path != self.path {
            return (param, None);
        }
        let param = rehomed_param(param);
        let base = param.base();
        let (rows, cols) = self.estimator.vector_lengths(&base.dims());
        let device = base.clone().without_autodiff().device();
        let options = (&device, compute_dtype(base.dtype()));
        let eps = eps_for(self.eps, base.dtype());
        let rule = Normalization::MaxEps(eps);
        let random = |len: usize| {
            normalize(
                Tensor::random([len], Distribution::Normal(0.0, 1.0), options),
                rule,
            )
        };
        let (mut u, mut v) = (random(rows), random(cols));
        if let Some(steps) = NonZeroUsize::new(self.warmup) {
            let weight = widen(base.clone().without_autodiff());
            let estimate = self.estimator.iterate(&weight, u, steps, eps);
            (u, v) = (estimate.u, estimate.v);
        }
        let state = SpectralNorm::new(
            self.estimator.clone(),
            (u, v),
            self.n_power_iterations,
            self.eps,
            self.target,
            self.learned_scale.then(|| {
                let one = Tensor::<1>::ones([1], (&base.device(), compute_dtype(base.dtype())));
                Param::from_tensor(one)
            }),
            self.convergence,
        );
        (param, Some(state))
    }
}

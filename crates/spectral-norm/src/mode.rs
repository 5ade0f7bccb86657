//! Switching the power iteration on and off without leaving the training device.

use burn::module::{Flag, Module, ModuleMapper, Param, Reparameterization};

use crate::reparameterization::SpectralNorm;

/// Turns the power iteration of every spectral-norm state in `module` on or off, leaving
/// everything else (autodiff, other modules' training flags, trainability) as it is.
///
/// Off, the weight is `W / σ` from the stored vectors and the gradient still reaches `W`: the
/// evaluation semantics on the training device. Use it for forwards that must not move `u`, `v`
/// (a gradient penalty on interpolated samples, a second look at the same batch).
/// [`Module::valid`] and [`Module::freeze`] also stop the iteration; `train()` restores the
/// last state set here.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNormConfig, inspect, set_power_iteration, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let layer = spectral_norm(&LinearConfig::new(4, 3).init(&device), &SpectralNormConfig::new()).unwrap();
/// let layer = set_power_iteration(layer, false);
/// let u = inspect(&layer.weight).unwrap().u;
/// let _ = layer.forward(Tensor::<2>::ones([1, 4], &device));
/// inspect(&layer.weight).unwrap().u.into_data().assert_eq(&u.into_data(), true);
/// ```
pub fn set_power_iteration<M: Module>(module: M, enabled: bool) -> M {
    module.map(&mut SetTrainingFlag {
        enabled,
        path: Vec::new(),
    })
}

/// Sets the flag of every [`SpectralNorm`] state: a module entered as the reparameterization
/// named [`SpectralNorm::NAME`] (a user's own field that happens to have that name is not
/// one).
struct SetTrainingFlag {
    enabled: bool,
    /// The modules entered so far: `(name, container type)`.
    path: Vec<(String, String)>,
}

impl ModuleMapper for SetTrainingFlag {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path
            .push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        // The state's only flag is its `training` field: entered as the last module, inside
        // the state.
        let inside_state = self.path.iter().rev().nth(1).is_some_and(|(name, kind)| {
            name == SpectralNorm::NAME && kind == REPARAMETERIZATION_CONTAINER
        });
        if inside_state {
            flag.with_value(self.enabled)
        } else {
            flag
        }
    }
}

/// The container type Burn reports when it enters a parameter's reparameterization state.
pub(crate) const REPARAMETERIZATION_CONTAINER: &str = "Reparameterization";

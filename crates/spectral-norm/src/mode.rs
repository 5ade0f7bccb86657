//! Switching the power iteration on and off without leaving the training device.

use burn::module::{Flag, Module, ModuleMapper, Param, Reparameterization};

use crate::SpectralNorm;

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

/// Sets the `training` flag of states entered under the name [`SpectralNorm::NAME`].
struct SetTrainingFlag {
    enabled: bool,
    path: Vec<String>,
}

impl ModuleMapper for SetTrainingFlag {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        // The flag is the `training` field of a state entered as `<param>.spectral_norm`.
        match self.path.iter().rev().nth(1) {
            Some(owner) if owner == SpectralNorm::NAME => flag.with_value(self.enabled),
            _ => flag,
        }
    }
}

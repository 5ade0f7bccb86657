//! `remove_spectral_norm`: fold `W / σ` into plain weights.

use burn::module::Module;

use crate::mode::set_power_iteration;

/// Replaces every spectrally normalized weight of `module` with a plain parameter holding
/// `W / σ` as evaluation mode computes it (no power iteration), and drops `u` and `v`.
/// Parameter ids and trainability are kept, so an optimizer can continue on the result.
///
/// This is Burn's [`Module::materialize`] with the power iteration switched off first; like
/// it, it also folds any other reparameterization (such as LoRA) the module carries.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::prelude::*;
/// use spectral_norm::{SpectralNormConfig, inspect, remove_spectral_norm, spectral_norm};
///
/// let device = Device::flex().autodiff();
/// let layer = spectral_norm(&LinearConfig::new(5, 2).init(&device), &SpectralNormConfig::new()).unwrap();
/// let expected = inspect(&layer.weight).unwrap().weight;
/// let plain = remove_spectral_norm(layer);
/// assert!(inspect(&plain.weight).is_none());
/// plain.weight.val().without_autodiff().into_data().assert_eq(&expected.into_data(), true);
/// ```
pub fn remove_spectral_norm<M: Module>(module: M) -> M {
    set_power_iteration(module, false).materialize()
}

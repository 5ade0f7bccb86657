//! Scratch memory of a spectral norm's fast path: never saved, never shared across module
//! transformations.

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

/// Scratch memory of [`SpectralNorm`](crate::SpectralNorm)'s fast path on the Flex backend:
/// the last `W / σ` (reused in place once nobody holds it) and the eval-mode cache.
///
/// It holds no state of the model: records skip it, and [`map`](Module::map) (optimizer steps,
/// record loads), [`valid`](Module::valid), [`train`](Module::train) and
/// [`to_device`](Module::to_device) all start an empty one. Clones share it, like the vectors.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    #[cfg(feature = "flex")]
    pub(crate) flex: crate::flex::FlexWorkspace,
}

impl Module for Workspace {
    fn visit<V: ModuleVisitor>(&self, _visitor: &mut V) {}

    fn map<M: ModuleMapper>(self, _mapper: &mut M) -> Self {
        Self::default()
    }

    fn to_device(self, _device: &Device) -> Self {
        Self::default()
    }

    fn fork(self, _device: &Device) -> Self {
        Self::default()
    }

    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        devices
    }

    fn materialize(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        Self::default()
    }

    fn train(self) -> Self {
        Self::default()
    }
}

impl ModuleDisplayDefault for Workspace {
    fn content(&self, content: Content) -> Option<Content> {
        content.add_formatted(&"Workspace").optional()
    }
}

impl ModuleDisplay for Workspace {}

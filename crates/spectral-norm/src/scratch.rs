//! Memory a spectral norm keeps between uses of its weight: the storage of recent outputs
//! `W / σ` (written over once nobody else holds them) and what the newest eval-mode output was
//! computed from. Never saved; it survives optimizer steps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::{DType, Device, Tensor};

use crate::accel::Storage;

/// Outputs kept for their storage. A GAN discriminator uses its weights on real and on fake
/// data (and a gradient penalty a third time) before one backward, so each use of a step needs
/// its own storage; with one kept output, every use after the first allocated and zeroed a
/// fresh W-sized tensor on every step. The pool grows only to as many as a step uses at once;
/// the bound stops outputs that a caller keeps (a `val()` for logging) from piling up.
pub(crate) const KEPT_OUTPUTS: usize = 4;

/// What an eval-mode `W / σ` was computed from: the weight's storage and the stamps of the vectors' buffers. Holding the weight's handle keeps its storage alive
/// and shared, so the backend cannot write into it in place: storage equality then means
/// "the same values". A buffer's stamp changes with every write to it.
#[derive(Debug, Clone)]
struct EvalInputs {
    weight: Storage,
    u: u64,
    v: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Recent outputs' storage, oldest first.
    outputs: VecDeque<Storage>,
    /// Set when the newest output is an eval-mode result of exactly these inputs.
    eval_inputs: Option<EvalInputs>,
}

impl State {
    fn keep(&mut self, output: Storage) {
        self.outputs.push_back(output);
        if self.outputs.len() > KEPT_OUTPUTS {
            self.outputs.pop_front();
        }
    }
}

/// Scratch memory of one spectral norm. Clones share it, as they share the vectors.
///
/// [`map`](Module::map) (optimizer steps, record loads, [`set_power_iteration`]) and
/// [`train`](Module::train) keep it: a weight that changes gets new storage, and vectors that
/// change get new stamps, so nothing kept can be mistaken for current. [`valid`](Module::valid),
/// [`to_device`](Module::to_device) and [`fork`](Module::fork) start an empty one.
///
/// [`set_power_iteration`]: crate::set_power_iteration
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    state: Arc<Mutex<State>>,
}

impl Scratch {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The storage of the eval-mode output for `weight` and these vector stamps, if it is
    /// still valid.
    pub fn cached<const D: usize>(&self, weight: &Tensor<D>, u: u64, v: u64) -> Option<Storage> {
        self.with(|state| match &state.eval_inputs {
            Some(inputs) if inputs.u == u && inputs.v == v && inputs.weight.holds(weight) => {
                state.outputs.back().cloned()
            }
            _ => None,
        })
    }

    /// Keeps an eval-mode output's storage and what it was computed from.
    pub fn keep_eval(&self, weight: Storage, u: u64, v: u64, output: Storage) {
        self.with(|state| {
            state.eval_inputs = Some(EvalInputs { weight, u, v });
            state.keep(output);
        });
    }

    /// Keeps a training-mode output's storage.
    pub fn keep(&self, output: Storage) {
        self.with(|state| {
            state.eval_inputs = None;
            state.keep(output);
        });
    }

    /// Takes the oldest kept storage of `len` elements of `dtype` that nobody else holds, for
    /// the backend to write over.
    pub fn take(&self, len: usize, dtype: DType) -> Option<Storage> {
        self.with(|state| {
            let index = state
                .outputs
                .iter()
                .position(|out| out.len() == len && out.dtype() == dtype && out.is_exclusive())?;
            if index + 1 == state.outputs.len() {
                // The eval cache's value is about to be overwritten.
                state.eval_inputs = None;
            }
            state.outputs.remove(index)
        })
    }

    /// How many outputs are kept (for tests).
    #[cfg(all(test, feature = "flex"))]
    pub fn kept(&self) -> usize {
        self.with(|state| state.outputs.len())
    }
}

impl Module for Scratch {
    fn visit<V: ModuleVisitor>(&self, _visitor: &mut V) {}

    fn map<M: ModuleMapper>(self, _mapper: &mut M) -> Self {
        self
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
        self
    }
}

impl ModuleDisplayDefault for Scratch {
    fn content(&self, content: Content) -> Option<Content> {
        content.add_formatted(&"Scratch").optional()
    }
}

impl ModuleDisplay for Scratch {}

//! Memory kept between uses of one spectrally-normalized weight on the Flex backend: the recent
//! outputs `W / σ` (their storage is reused once nobody else holds it) and the eval-mode cache key.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use burn::backend::flex::FlexTensor;

/// What an eval-mode `W / σ` was computed from: the weight, and the stamps of the vectors'
/// buffers. Holding the weight's handle keeps its storage alive and shared, and Flex only writes
/// in place into storage it owns alone, so handle equality means "the same values"; a buffer's
/// stamp changes with every write to it.
#[derive(Debug, Clone)]
struct Inputs {
    weight: FlexTensor,
    u: u64,
    v: u64,
}

impl Inputs {
    fn are(&self, weight: &FlexTensor, u: u64, v: u64) -> bool {
        self.u == u && self.v == v && same_storage(&self.weight, weight)
    }
}

/// Whether `a` and `b` view the very same storage (the same shared handle, not only the same
/// address) the same way.
fn same_storage(a: &FlexTensor, b: &FlexTensor) -> bool {
    Arc::ptr_eq(&a.data_arc(), &b.data_arc()) && a.dtype() == b.dtype() && a.layout() == b.layout()
}

/// Outputs kept for their storage. A GAN discriminator uses its weights on real and on fake
/// data (and a gradient penalty a third time) before one backward, so each use of a step needs
/// its own storage; with one kept output, every use after the first allocated and zeroed a
/// fresh W-sized tensor on every step. The pool grows only to as many as a step uses at once;
/// the bound stops outputs that a caller keeps (a `val()` for logging) from piling up.
pub(crate) const KEPT_OUTPUTS: usize = 4;

#[derive(Debug, Default)]
struct State {
    /// Recent outputs `W / σ`, oldest first.
    outputs: VecDeque<FlexTensor>,
    /// Set when the newest output is an eval-mode result of exactly these inputs.
    eval_inputs: Option<Inputs>,
}

impl State {
    fn keep(&mut self, output: &FlexTensor) {
        self.outputs.push_back(output.clone());
        if self.outputs.len() > KEPT_OUTPUTS {
            self.outputs.pop_front();
        }
    }
}

/// Shared by clones (as the vectors are); every module transformation starts a new one.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlexWorkspace {
    state: Arc<Mutex<State>>,
}

impl FlexWorkspace {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cached eval-mode output for this weight and these vector stamps, if still valid.
    pub fn cached(&self, weight: &FlexTensor, u: u64, v: u64) -> Option<FlexTensor> {
        self.with(|state| match &state.eval_inputs {
            Some(inputs) if inputs.are(weight, u, v) => state.outputs.back().cloned(),
            _ => None,
        })
    }

    /// Remembers an eval-mode output and what it was computed from.
    pub fn remember_eval(&self, weight: &FlexTensor, u: u64, v: u64, output: &FlexTensor) {
        self.with(|state| {
            state.eval_inputs = Some(Inputs {
                weight: weight.clone(),
                u,
                v,
            });
            state.keep(output);
        });
    }

    /// Remembers a training-mode output, for its storage only.
    pub fn remember_output(&self, output: &FlexTensor) {
        self.with(|state| {
            state.eval_inputs = None;
            state.keep(output);
        });
    }

    /// Takes the storage of the oldest kept output that nobody else holds any more and that
    /// fits `like`.
    pub fn take_reusable(&self, like: &FlexTensor) -> Option<FlexTensor> {
        self.with(|state| {
            let index = state.outputs.iter().position(|out| {
                out.is_unique() && out.layout() == like.layout() && out.dtype() == like.dtype()
            })?;
            if index + 1 == state.outputs.len() {
                // The eval cache's value is about to be overwritten.
                state.eval_inputs = None;
            }
            state.outputs.remove(index)
        })
    }

    /// How many outputs are kept (for tests).
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.with(|state| state.outputs.len())
    }
}

//! Memory kept between uses of one spectrally-normalized weight on the Flex backend: the last
//! `W / σ` (its storage is reused once nobody else holds it) and the eval-mode cache key.

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

#[derive(Debug, Default)]
struct State {
    /// The last output, `W / σ`.
    output: Option<FlexTensor>,
    /// Set when `output` is an eval-mode result of exactly these inputs.
    eval_inputs: Option<Inputs>,
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
            Some(inputs) if inputs.are(weight, u, v) => state.output.clone(),
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
            state.output = Some(output.clone());
        });
    }

    /// Remembers a training-mode output, for its storage only.
    pub fn remember_output(&self, output: &FlexTensor) {
        self.with(|state| {
            state.eval_inputs = None;
            state.output = Some(output.clone());
        });
    }

    /// Takes the last output's storage if nobody else holds it any more and it fits `like`.
    pub fn take_reusable(&self, like: &FlexTensor) -> Option<FlexTensor> {
        self.with(|state| {
            let fits = state.output.as_ref().is_some_and(|out| {
                out.is_unique() && out.layout() == like.layout() && out.dtype() == like.dtype()
            });
            if fits {
                state.eval_inputs = None;
                state.output.take()
            } else {
                None
            }
        })
    }
}

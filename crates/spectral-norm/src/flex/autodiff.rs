//! `W → W / σ` as one autodiff node with its closed-form backward, instead of Burn autodiff
//! through a division, a mat-vec and a dot product (which costs several W-sized temporaries).

use core::marker::PhantomData;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};

use super::gradient::{Swapped, backward_in_place, backward_swapped_in_place};
use super::real::Real;
use super::view::View;

/// What the backward needs: `W` (shared, not copied), the vectors and σ of this use.
#[derive(Debug, Clone)]
struct Saved<T> {
    weight: FlexTensor,
    u: Vec<T>,
    v: Vec<T>,
    sigma: T,
    view: View,
    dim: usize,
}

#[derive(Debug)]
struct DivideBySigma<T>(PhantomData<T>);

impl<T> Backward<Flex, 1> for DivideBySigma<T>
where
    T: Real,
{
    type State = Saved<T>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let mut grad = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let saved = ops.state;
        let weight = saved
            .weight
            .as_slice::<T>()
            .expect("W was checked contiguous");
        let corrected = match swapped_layout::<T>(&grad, &saved.weight, saved.dim) {
            // A convolution's weight gradient: updated where it lies, handed on as it came.
            Some(layout) => backward_swapped_in_place(
                grad.storage_mut::<T>(),
                weight,
                layout,
                saved.dim,
                &saved.u,
                &saved.v,
                saved.sigma,
            ),
            None => false,
        };
        if !corrected {
            // Usually ours alone (storage_mut copies only if shared): the result overwrites it.
            if !(grad.is_contiguous() && grad.layout().start_offset() == 0) {
                grad = grad.to_contiguous();
            }
            let g = grad.storage_mut::<T>();
            backward_in_place(
                &mut g[..weight.len()],
                weight,
                saved.view,
                &saved.u,
                &saved.v,
                saved.sigma,
            );
        }
        grads.register::<Flex>(parent.id, grad);
    }
}

/// The [`Swapped`] layout of `grad` when it is exactly that (the whole storage, no offset) and
/// the matrix rows are on axis 0 or 1.
fn swapped_layout<T>(grad: &FlexTensor, weight: &FlexTensor, dim: usize) -> Option<Swapped> {
    let layout = grad.layout();
    let bytes = layout.num_elements() * core::mem::size_of::<T>();
    let whole = grad.bytes().len() == bytes && layout.start_offset() == 0;
    if dim > 1 || !whole || layout.is_contiguous() || layout.shape() != weight.layout().shape() {
        return None;
    }
    Swapped::of(layout.shape().as_slice(), layout.strides())
}

/// Wraps `output = W / σ` (already computed from `weight`'s primitive) in an autodiff node
/// whose gradient with respect to `W` is `(G − ⟨G, W⟩/σ · u vᵀ) / σ`.
pub(super) fn divide_by_sigma<T>(
    weight: FloatTensor<Autodiff<Flex>>,
    output: FlexTensor,
    u: Vec<T>,
    v: Vec<T>,
    sigma: T,
    view: View,
    dim: usize,
) -> FloatTensor<Autodiff<Flex>>
where
    T: Real,
{
    let prep = DivideBySigma::<T>(PhantomData)
        .prepare::<NoCheckpointing>([weight.node()])
        .compute_bound()
        .stateful();
    match prep {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                weight: weight.primitive().clone(),
                u,
                v,
                sigma,
                view,
                dim,
            };
            prep.finish(saved, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

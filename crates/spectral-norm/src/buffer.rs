//! A recorded, never-trainable tensor that a `&self` forward can overwrite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
    ParamId,
};
use burn::tensor::{Device, Tensor};

/// A persistent buffer: saved and loaded by Burn records, moved by `to_device`, never seen as
/// trainable by an optimizer, and writable through `&self`.
///
/// Burn's [`RunningState`](burn::module::RunningState) is built for averaged statistics: it
/// records the value from *before* the last update unless synced, and averages updates made on
/// different threads. The power-iteration vectors need neither: every write is a complete unit
/// vector, so the last writer wins and a record always holds the value after the last forward.
///
/// Clones share the value, as Burn's `RunningState` does (and as Paddle's state dict aliases its
/// buffers): a forward through any clone of a module advances the vectors of all of them.
/// [`valid`](Module::valid), [`fork`](Module::fork), [`to_device`](Module::to_device) and
/// every [`map`](Module::map) (optimizer steps, record loads) produce an independent buffer.
#[derive(Debug, Clone)]
pub(crate) struct Buffer<const D: usize> {
    id: ParamId,
    value: Arc<Stamped<D>>,
}

/// The value and a stamp that changes with every write.
#[derive(Debug)]
struct Stamped<const D: usize> {
    tensor: Mutex<Tensor<D>>,
    stamp: AtomicU64,
}

/// Gives the stamp a fresh value when dropped.
struct Restamp<'a>(&'a AtomicU64);

impl Drop for Restamp<'_> {
    fn drop(&mut self) {
        self.0.store(next_stamp(), Ordering::Release);
    }
}

/// Stamps are unique across all buffers of the process: equal stamps mean the same buffer,
/// unwritten since.
fn next_stamp() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<const D: usize> Buffer<D> {
    /// A buffer holding `value` (gradient tracking removed).
    pub fn new(value: Tensor<D>) -> Self {
        Self::with_id(ParamId::new(), value)
    }

    fn with_id(id: ParamId, value: Tensor<D>) -> Self {
        Self {
            id,
            value: Arc::new(Stamped {
                tensor: Mutex::new(value.detach()),
                stamp: AtomicU64::new(next_stamp()),
            }),
        }
    }

    /// The current value.
    pub fn get(&self) -> Tensor<D> {
        self.lock().clone()
    }

    /// Replaces the current value (gradient tracking removed).
    pub fn set(&self, value: Tensor<D>) {
        self.update(|stored| *stored = value.detach());
    }

    /// Runs `update` on the value while holding the buffer's lock, so that read-modify-write
    /// sequences on the same buffer never interleave. Counts as a write: the stamp changes.
    pub fn update<R>(&self, update: impl FnOnce(&mut Tensor<D>) -> R) -> R {
        let mut stored = self.lock();
        // Declared after the lock: dropped first, so the stamp changes before the lock is
        // released, also when `update` panics.
        let _restamp = Restamp(&self.value.stamp);
        update(&mut stored)
    }

    /// The current value and its stamp, read together.
    pub fn get_stamped(&self) -> (Tensor<D>, u64) {
        let stored = self.lock();
        (stored.clone(), self.value.stamp.load(Ordering::Acquire))
    }

    /// A number that changes with every write to this buffer (and its clones, which share the
    /// value) and differs between buffers: equal stamps mean an unchanged value. Reading it takes
    /// no lock.
    pub fn stamp(&self) -> u64 {
        self.value.stamp.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Tensor<D>> {
        // A panic while the lock was held cannot leave a half-written tensor: writes are a
        // single handle swap. So a poisoned lock still holds a valid value.
        self.value
            .tensor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn as_param(&self) -> Param<Tensor<D>> {
        Param::initialized(self.id, self.get())
    }
}

impl<const D: usize> Module for Buffer<D> {
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.visit_float(&self.as_param());
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let (id, tensor, _) = mapper.map_float(self.as_param()).consume();
        Self::with_id(id, tensor.set_require_grad(false))
    }

    fn to_device(self, device: &Device) -> Self {
        Self::with_id(self.id, self.get().to_device(device))
    }

    fn fork(self, device: &Device) -> Self {
        self.to_device(device)
    }

    fn collect_devices(&self, mut devices: Vec<Device>) -> Vec<Device> {
        let device = self.get().device();
        if !devices.contains(&device) {
            devices.push(device);
        }
        devices
    }

    fn materialize(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        Self::with_id(self.id, self.get().without_autodiff())
    }

    fn train(self) -> Self {
        // The vectors are constants of the graph: they need no autodiff association, and the
        // forward moves them to the weight's device on use.
        self
    }
}

impl<const D: usize> ModuleDisplayDefault for Buffer<D> {
    fn content(&self, content: Content) -> Option<Content> {
        content
            .add_formatted(&format!("Buffer {{shape: {:?}}}", self.get().dims()))
            .optional()
    }
}

impl<const D: usize> ModuleDisplay for Buffer<D> {}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use burn::module::Module;
    use burn::tensor::{Device, Tensor};

    use super::Buffer;

    fn buffer(values: [f32; 2]) -> Buffer<1> {
        Buffer::new(Tensor::<1>::from_floats(values, &Device::flex()))
    }

    #[test]
    fn every_write_changes_the_stamp_and_clones_share_it() {
        let (a, b) = (buffer([1.0, 2.0]), buffer([1.0, 2.0]));
        assert_ne!(a.stamp(), b.stamp(), "equal values, different buffers");

        let shared = a.clone();
        let before = a.stamp();
        assert_eq!(shared.stamp(), before);
        shared.set(a.get());
        assert_ne!(a.stamp(), before, "writing the same value is still a write");
        assert_eq!(a.stamp(), shared.stamp());
        assert_eq!(a.get_stamped().1, a.stamp());

        let before = a.stamp();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            a.update(|value| {
                *value = value.clone() * 2.0;
                panic!("fails after writing");
            })
        }));
        assert!(outcome.is_err());
        assert_ne!(
            a.stamp(),
            before,
            "a write that panicked still changes the stamp"
        );

        assert_ne!(
            a.valid().stamp(),
            a.stamp(),
            "valid() makes an independent buffer"
        );
    }
}

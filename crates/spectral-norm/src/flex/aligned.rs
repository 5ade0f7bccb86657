//! Storage for `W / σ` that starts on a cache line.
//!
//! Burn's Flex tensors live in allocations aligned to 16 bytes, so a weight starts at one of
//! four offsets within a 64-byte line, by chance of the allocator. The matrix kernels behind a
//! Flex Linear forward are much faster on a weight that starts on a line: for a 1024² weight
//! and a batch of 32, 880 µs against 1260–1370 µs at the other three offsets, on the same
//! values. `W / σ` is written into storage of our own, so it is allocated on a line boundary
//! once and reused from then on.
//!
//! Outputs of 2 MiB and more go further on Linux: they get a mapping of their own (`mmap`),
//! trimmed to start on a 2 MiB boundary and to span whole 2 MiB pages, and advised for
//! transparent huge pages before anything touches it, so the kernel can back them with huge
//! pages even where it does so only on request (the `madvise` setting). A fresh anonymous
//! mapping reads as zeros, so nothing is written until `W / σ` is. On 4 KiB pages every pass
//! that reads or writes `W / σ` needs a TLB entry per 4 KiB; writing a conv 512×512×3×3
//! `W / σ` inside a training step took 0.45–0.50 ms on huge pages against 0.82–0.85 ms on
//! 4 KiB pages. This is a hint: where the kernel declines, the memory is ordinary memory.

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use burn::backend::flex::{FlexTensor, Layout as FlexLayout};
use burn::tensor::{DType, Shape};
use burn_std::{AccessError, AccessPolicy, AllocationController, AllocationProperty, Bytes};

/// A cache line on the CPUs this crate targets.
pub(crate) const CACHE_LINE: usize = 64;

/// The alignment reported to Burn: the most its own allocations promise. Burn re-allocates a
/// buffer's copies and halves with the alignment reported here and asserts (in debug builds)
/// that it is at most 16, so reporting 64 panics there. 64-byte-aligned memory is 16-byte
/// aligned as well, and the memory is released with its own layout, not with this value.
const REPORTED_ALIGN: usize = 16;

/// A huge page on the CPUs this crate targets (x86-64 and AArch64 with 4 KiB base pages).
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Zero-initialized memory on a cache-line boundary, owned alone: from the global allocator,
/// or (Linux, from [`HUGE_PAGE`] on) a mapping of whole huge pages of its own.
struct LineAligned {
    ptr: NonNull<u8>,
    len: usize,
    origin: Origin,
}

/// Where the memory came from, and so how it is released.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// `std::alloc::alloc_zeroed` with this layout.
    Heap(Layout),
    /// An anonymous `mmap` of `len` bytes.
    #[cfg(target_os = "linux")]
    Mapped,
}

// SAFETY: `LineAligned` owns its memory alone (nothing else holds `ptr`), has no interior
// mutability, and gives out the bytes only as `&[_]` through `&self` and `&mut [_]` through
// `&mut self`; so moving it to another thread or sharing `&LineAligned` between threads is as
// safe as for a `Box<[u8]>`. `Bytes` (which holds it) is `Send + Sync` and Flex tensors cross
// rayon threads, so this is relied on.
unsafe impl Send for LineAligned {}
// SAFETY: as for `Send` above.
unsafe impl Sync for LineAligned {}

impl LineAligned {
    /// `size > 0` zeroed bytes on a cache-line boundary, or `None` when memory is refused.
    fn zeroed(size: usize) -> Option<Self> {
        if size >= HUGE_PAGE
            && let Some(memory) = Self::mapped_huge_pages(size)
        {
            return Some(memory);
        }
        let layout = Layout::from_size_align(size, CACHE_LINE).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: `layout` has a non-zero size, checked just above.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Self {
            ptr,
            len: size,
            origin: Origin::Heap(layout),
        })
    }

    /// A fresh anonymous mapping of `size > 0` bytes rounded up to whole huge pages, starting
    /// on a huge-page boundary and advised for transparent huge pages before its first touch.
    #[cfg(target_os = "linux")]
    fn mapped_huge_pages(size: usize) -> Option<Self> {
        let len = size.checked_next_multiple_of(HUGE_PAGE)?;
        // One huge page more than needed, so that an aligned start lies inside; the excess at
        // both ends is unmapped again.
        let reserved = len.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choice: it
        // aliases no memory of this process.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                reserved,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let head = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        let tail = reserved - head - len;
        // SAFETY: `base..base + reserved` is the mapping just made, and `head` and `tail` are
        // whole pages (mmap returns page-aligned memory, HUGE_PAGE is a multiple of the page
        // size) at its two ends, outside `start..start + len`; nothing refers to them. The
        // advice on the rest may be refused (a kernel without THP): it is only a hint.
        let start = unsafe {
            let start = base.cast::<u8>().add(head);
            if head > 0 {
                libc::munmap(base, head);
            }
            if tail > 0 {
                libc::munmap(start.add(len).cast(), tail);
            }
            libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE);
            start
        };
        Some(Self {
            ptr: NonNull::new(start)?,
            len,
            origin: Origin::Mapped,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn mapped_huge_pages(_size: usize) -> Option<Self> {
        None
    }
}

impl AllocationController for LineAligned {
    fn alloc_align(&self) -> usize {
        REPORTED_ALIGN
    }

    fn property(&self) -> AllocationProperty {
        AllocationProperty::Native
    }

    unsafe fn memory_mut(
        &mut self,
        _policy: AccessPolicy,
    ) -> Result<&mut [MaybeUninit<u8>], AccessError> {
        // SAFETY: `ptr` points to `len` initialized (zeroed, then written) bytes that this
        // value owns alone, and the `&mut self` borrow keeps them unaliased for the slice's
        // lifetime.
        Ok(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len) })
    }

    fn memory(&self, _policy: AccessPolicy) -> Result<&[MaybeUninit<u8>], AccessError> {
        // SAFETY: as in `memory_mut`, for a shared borrow.
        Ok(unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len) })
    }
}

impl Drop for LineAligned {
    fn drop(&mut self) {
        match self.origin {
            // SAFETY: allocated in `zeroed` with exactly this layout, and released only here.
            Origin::Heap(layout) => unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) },
            // SAFETY: `ptr..ptr + len` is what remains of the mapping made in
            // `mapped_huge_pages`, unmapped only here; nothing borrows it any more.
            #[cfg(target_os = "linux")]
            Origin::Mapped => unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            },
        }
    }
}

/// A contiguous zero-filled tensor whose storage starts on a cache line; Burn's own
/// [`FlexTensor::empty`] when the tensor is empty or the allocation fails.
pub(crate) fn zeros(shape: Shape, dtype: DType) -> FlexTensor {
    #[cfg(test)]
    ALLOCATIONS.with(|count| count.set(count.get() + 1));
    let size = shape.num_elements() * dtype.size();
    match LineAligned::zeroed(size) {
        Some(memory) => {
            // SAFETY: all `size` bytes are initialized (zeroed) by `LineAligned::zeroed`.
            let bytes = unsafe { Bytes::from_controller(Box::new(memory), size) };
            FlexTensor::new(bytes, FlexLayout::contiguous(shape), dtype)
        }
        None => FlexTensor::empty(shape, dtype),
    }
}

#[cfg(test)]
thread_local! {
    /// Calls to [`zeros`] on this thread, for tests that check storage is reused.
    pub(crate) static ALLOCATIONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(tensor: &FlexTensor) -> usize {
        tensor.bytes().as_ptr() as usize
    }

    #[test]
    fn storage_starts_on_a_cache_line_and_is_zeroed() {
        for (dims, dtype) in [
            (vec![3usize, 5], DType::F32),
            (vec![1024, 1024], DType::F32),
            (vec![7, 2, 3, 3], DType::F64),
        ] {
            let tensor = zeros(Shape::from(dims.clone()), dtype);
            assert_eq!(address(&tensor) % CACHE_LINE, 0, "{dims:?}");
            assert_eq!(tensor.layout().start_offset(), 0);
            assert!(tensor.layout().is_contiguous());
            let numel: usize = dims.iter().product();
            assert_eq!(tensor.bytes().len(), numel * dtype.size());
            assert!(tensor.bytes().iter().all(|&b| b == 0));
        }
    }

    /// The `VmFlags` of the mapping that holds `address`, from `/proc/self/smaps`.
    #[cfg(target_os = "linux")]
    fn mapping_flags(address: usize) -> Vec<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("Linux has smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'));
            if let Some((start, end)) = range
                && let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                )
            {
                inside = (start..end).contains(&address);
            } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
                return flags.split_whitespace().map(str::to_owned).collect();
            }
        }
        panic!("no mapping holds {address:#x}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn large_storage_spans_whole_huge_pages_advised_for_thp() {
        // 4 MiB, and 2.4 MB (not a whole number of huge pages).
        for dims in [vec![1024usize, 1024], vec![600, 1000]] {
            let tensor = zeros(Shape::from(dims.clone()), DType::F32);
            let numel: usize = dims.iter().product();
            assert_eq!(address(&tensor) % HUGE_PAGE, 0, "{dims:?}");
            assert_eq!(tensor.bytes().len(), numel * 4);
            let memory = LineAligned::zeroed(numel * 4).expect("the kernel maps a few MiB");
            assert_eq!(memory.len % HUGE_PAGE, 0, "{dims:?}");
            assert_eq!(memory.ptr.as_ptr() as usize % HUGE_PAGE, 0, "{dims:?}");
            assert!(tensor.bytes().iter().all(|&b| b == 0));
            // `hg`: the mapping carries MADV_HUGEPAGE (kernels built without THP refuse it).
            if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
                let flags = mapping_flags(address(&tensor));
                assert!(flags.iter().any(|f| f == "hg"), "{dims:?}: {flags:?}");
            }
        }
        // Below a huge page: a cache line only, no rounding up.
        let small = LineAligned::zeroed(100 * 100 * 4).expect("the allocator serves 40 kB");
        assert_eq!(small.len, 100 * 100 * 4);
        assert!(matches!(small.origin, Origin::Heap(layout) if layout.align() == CACHE_LINE));
    }

    #[test]
    fn writes_stay_in_place_and_copies_are_ordinary_tensors() {
        let mut tensor = zeros(Shape::from(vec![4, 4]), DType::F32);
        let before = address(&tensor);
        tensor.storage_mut::<f32>()[5] = 2.5;
        assert_eq!(
            address(&tensor),
            before,
            "a unique buffer is written in place"
        );
        // A second holder makes Burn copy on write, through its own allocator: no panic, and
        // the copy holds the same values.
        let held = tensor.clone();
        tensor.storage_mut::<f32>()[6] = 1.0;
        assert_eq!(held.as_slice::<f32>().unwrap()[5], 2.5);
        assert_eq!(tensor.as_slice::<f32>().unwrap()[5], 2.5);
        assert_eq!(tensor.as_slice::<f32>().unwrap()[6], 1.0);
        assert_eq!(held.as_slice::<f32>().unwrap()[6], 0.0);
    }
}

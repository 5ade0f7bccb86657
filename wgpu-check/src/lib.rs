//! What the checks in `tests/` share: the device they run on. The checks themselves are there.

use burn::backend::{WgpuBackend, WgpuDevice, WgpuDeviceKind};
use burn::prelude::*;

/// A wgpu adapter on Vulkan, with autodiff: the first CPU-type one (lavapipe, where Mesa
/// provides it) unless `WGPU_CHECK_ADAPTER` says `discrete` or `integrated` (a real GPU). The
/// graphics API is pinned: Burn's `Device::wgpu` falls back to OpenGL (llvmpipe) where Vulkan
/// has no adapter, and the checks would then pass on the wrong API.
pub fn wgpu_device() -> Device {
    let kind = match std::env::var("WGPU_CHECK_ADAPTER").as_deref() {
        Ok("discrete") => WgpuDeviceKind::DiscreteGpu(0),
        Ok("integrated") => WgpuDeviceKind::IntegratedGpu(0),
        Ok("cpu") | Err(_) => WgpuDeviceKind::Cpu,
        Ok(other) => panic!("WGPU_CHECK_ADAPTER={other:?}: expected cpu, discrete or integrated"),
    };
    Device::new(WgpuDevice::new(kind).on(WgpuBackend::Vulkan)).autodiff()
}

//! A GAN's two networks on one autodiff device, as every demo builds them: seeded, and with the
//! listed discriminator weights spectrally normalized in the SN runs.

use burn::module::Module;
use burn::prelude::*;
use spectral_norm::{SpectralNormConfig, spectral_norm};

/// A generator and a discriminator, and the device both live on.
pub struct Networks<G, D> {
    /// Maps noise to samples.
    pub generator: G,
    /// Scores samples.
    pub discriminator: D,
    /// The Flex autodiff device.
    pub device: Device,
}

impl<G, D: Module> Networks<G, D> {
    /// Seeds the device with `seed`, builds both networks, and normalizes the discriminator's
    /// weights at `normalized` (paths such as `conv1.weight`) with Paddle's defaults.
    pub fn new(
        seed: u64,
        normalized: &[String],
        generator: impl FnOnce(&Device) -> G,
        discriminator: impl FnOnce(&Device) -> D,
    ) -> Self {
        let device = Device::flex().autodiff();
        device.seed(seed);
        let generator = generator(&device);
        let mut discriminator = discriminator(&device);
        for name in normalized {
            let sn = SpectralNormConfig::new().with_name(name.clone());
            discriminator = spectral_norm(&discriminator, &sn).expect("a weight of the network");
        }
        Self {
            generator,
            discriminator,
            device,
        }
    }
}

//! The layers peers.py measures, built on Burn's Flex backend, and the calls timed on them.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use spectral_norm::{SpectralNormConfig, remove_spectral_norm, spectral_norm, spectral_norm_conv};

/// One benchmarked layer shape, named as in peers.py.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// peers.py's name for it.
    pub name: &'static str,
    /// Weight shape in PyTorch's convention: `[out, in]` or `[out, in, k, k]`.
    pub weight: &'static [usize],
    /// Input batch shape.
    pub input: &'static [usize],
}

impl Shape {
    /// Number of weight elements.
    pub fn numel(&self) -> usize {
        self.weight.iter().product()
    }

    fn is_linear(&self) -> bool {
        self.weight.len() == 2
    }
}

/// peers.py's `SHAPES`, in its order.
pub const SHAPES: &[Shape] = &[
    Shape {
        name: "lin256",
        weight: &[256, 256],
        input: &[32, 256],
    },
    Shape {
        name: "lin1024",
        weight: &[1024, 1024],
        input: &[32, 1024],
    },
    Shape {
        name: "lin4096",
        weight: &[4096, 4096],
        input: &[32, 4096],
    },
    Shape {
        name: "lin8192",
        weight: &[8192, 8192],
        input: &[32, 8192],
    },
    Shape {
        name: "conv64x3x3x3",
        weight: &[64, 3, 3, 3],
        input: &[8, 3, 32, 32],
    },
    Shape {
        name: "conv256x128x3x3",
        weight: &[256, 128, 3, 3],
        input: &[8, 128, 16, 16],
    },
    Shape {
        name: "conv512x512x3x3",
        weight: &[512, 512, 3, 3],
        input: &[8, 512, 8, 8],
    },
];

/// A boxed timed call.
pub type Call = Box<dyn FnMut() + Send>;

/// The calls measured for one shape and one `n_power_iterations`.
pub struct Calls {
    /// Forward + backward + SGD step of the plain layer (input requires grad: a middle layer).
    pub step_plain: Call,
    /// The same step with the weight spectrally normalized.
    pub step_sn: Call,
    /// The spectral-norm computation alone in training mode: `Param::val()`.
    pub sn_train: Call,
    /// Eval-mode forward (`valid()`, no autodiff) of the plain layer.
    pub eval_plain: Call,
    /// Eval-mode forward of the spectrally normalized layer.
    pub eval_sn: Call,
    /// The spectral-norm computation alone in eval mode.
    pub sn_eval: Call,
    /// The spectral-norm computation alone in training mode with σ estimated as the
    /// convolution's operator norm on the benchmark's input size (convolutions only).
    pub sn_train_operator: Option<Call>,
    /// Bytes from the last 64-byte boundary to the plain layer's weight (0: [`same_layout`]
    /// put it on a line, and its SGD steps keep it there).
    pub plain_weight_offset: usize,
}

/// Bytes from the last 64-byte boundary to the first element of `weight`.
fn offset_in_line<const D: usize>(weight: Tensor<D>) -> usize {
    address(weight) % 64
}

/// The address of the first element of `weight` (a Flex tensor).
fn address<const D: usize>(weight: Tensor<D>) -> usize {
    let weight = weight
        .without_autodiff()
        .try_into_primitive::<burn::backend::Flex>()
        .unwrap_or_else(|_| panic!("the harness runs on Flex"));
    let first = weight.layout().start_offset() * weight.dtype().size();
    weight.bytes().as_ptr() as usize + first
}

/// Builds the layers for `shape` (f32, Flex backend, autodiff) and the calls to time. A training
/// step makes `uses` forwards (as a discriminator does on real and on fake data; 1 in the
/// comparison with peers.py) and one backward of their summed outputs.
pub fn calls(shape: &Shape, n_power_iterations: usize, uses: usize) -> Calls {
    let device = Device::flex().autodiff();
    device.seed(0);
    let config = SpectralNormConfig::new().with_n_power_iterations(n_power_iterations);
    let x = Tensor::<4>::random(pad4(shape.input), Distribution::Normal(0.0, 1.0), &device);
    if shape.is_linear() {
        let linear = LinearConfig::new(shape.weight[1], shape.weight[0]);
        let x = x.reshape([shape.input[0], shape.input[1]]).require_grad();
        let layers = Layers::new(
            move || linear.init(&device),
            &config,
            |l: &Linear| &l.weight,
        );
        layers.calls(x, Linear::forward, None, uses)
    } else {
        let conv = Conv2dConfig::new([shape.weight[1], shape.weight[0]], [shape.weight[2]; 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        let operator = spectral_norm_conv(&conv.init(&device), shape.input[2..].to_vec(), &config)
            .expect("a Conv2d takes the operator mode");
        let layers = Layers::new(move || conv.init(&device), &config, |l: &Conv2d| &l.weight);
        layers.calls(
            x.require_grad(),
            Conv2d::forward,
            Some(alone(operator.weight)),
            uses,
        )
    }
}

/// Layers of one shape, normalized and plain (in our layout), each call's its own instance,
/// and how to reach their weight.
struct Layers<M, const W: usize> {
    make: Box<dyn Fn() -> M>,
    config: SpectralNormConfig,
    weight: fn(&M) -> &Param<Tensor<W>>,
}

impl<M: Module + 'static, const W: usize> Layers<M, W> {
    fn new(
        make: impl Fn() -> M + 'static,
        config: &SpectralNormConfig,
        weight: fn(&M) -> &Param<Tensor<W>>,
    ) -> Self {
        Self {
            make: Box::new(make),
            config: config.clone(),
            weight,
        }
    }

    fn normalized(&self) -> M {
        spectral_norm(&(self.make)(), &self.config).expect("the layer's weight takes spectral norm")
    }

    fn plain(&self) -> M {
        same_layout(&(self.make)(), &self.config)
    }

    /// The calls to time. Each is built on a layer of its own: a training step's weight is then
    /// held by that step alone, so SGD updates it in place, as in real training. (An eval copy
    /// from `valid()` shares the weight's storage, and SGD would then write a fresh weight on
    /// the first step, 16 bytes past a line on 4 KiB pages: the plain arm would lose the layout
    /// it is given to match ours.)
    fn calls<const D: usize>(
        self,
        x: Tensor<D>,
        forward: fn(&M, Tensor<D>) -> Tensor<D>,
        sn_train_operator: Option<Call>,
        uses: usize,
    ) -> Calls {
        let weight = self.weight;
        let (plain, sn) = (self.plain(), self.normalized());
        let (plain_eval, sn_eval) = (self.plain().valid(), self.normalized().valid());
        let plain_weight_offset = offset_in_line(weight(&plain).val());
        Calls {
            sn_train: alone(weight(&self.normalized()).clone()),
            sn_eval: alone(weight(&sn_eval).clone()),
            sn_train_operator,
            step_plain: step(plain, x.clone(), forward, uses),
            step_sn: step(sn, x.clone(), forward, uses),
            eval_plain: step_eval(plain_eval, x.clone().without_autodiff(), forward),
            eval_sn: step_eval(sn_eval, x.without_autodiff(), forward),
            plain_weight_offset,
        }
    }
}

/// `layer` with its weight moved into the kind of storage our `W / σ` lives in (it starts on a
/// cache line and, from 2 MiB on Linux, is advised for huge pages; Burn's allocations are
/// 16-byte aligned and are not), by attaching spectral norm and removing it again, which leaves
/// the weight as `W / σ` in that storage. The overheads are measured against this layer, so
/// that the layout of the weight is not counted as spectral norm's cost or gain: on a Linear
/// 1024² weight the same values take 880 µs in a forward at a line and 1260–1370 µs off it.
/// The SGD step updates the weight in place, so it keeps the storage (see
/// `plain_weight_offset`).
fn same_layout<M: Module>(layer: &M, config: &SpectralNormConfig) -> M {
    remove_spectral_norm(spectral_norm(layer, config).expect("the layer takes spectral norm"))
}

/// The spectral-norm computation alone: the weight's value, dropped.
fn alone<const D: usize>(weight: Param<Tensor<D>>) -> Call {
    Box::new(move || drop(weight.val()))
}

fn pad4(dims: &[usize]) -> [usize; 4] {
    let mut out = [1; 4];
    out[..dims.len()].copy_from_slice(dims);
    out
}

/// Learning rate of the training step's SGD update: small, so that thousands of steps leave
/// the weights where they started, to the precision that matters for timing.
const LEARNING_RATE: f64 = 1e-7;

/// A training step as real training runs it: `uses` forwards, one backward, and an optimizer
/// step, which maps the whole module (the spectral norm's state included) as Burn's optimizers
/// do. Plain and normalized layers take the same SGD step, so its cost on `W` cancels in their
/// difference.
fn step<M: Module + 'static, const D: usize>(
    layer: M,
    x: Tensor<D>,
    forward: fn(&M, Tensor<D>) -> Tensor<D>,
    uses: usize,
) -> Call {
    let mut layer = Some(layer);
    let mut optimizer = SgdConfig::new().init();
    Box::new(move || {
        let Some(current) = layer.take() else { return };
        let first = forward(&current, x.clone()).sum();
        let loss = (1..uses).fold(first, |loss, _| loss + forward(&current, x.clone()).sum());
        let grads = GradientsParams::from_grads(loss.backward(), &current);
        layer = Some(optimizer.step(LEARNING_RATE, current, grads));
    })
}

fn step_eval<M: Send + 'static, const D: usize>(
    layer: M,
    x: Tensor<D>,
    forward: fn(&M, Tensor<D>) -> Tensor<D>,
) -> Call {
    Box::new(move || drop(forward(&layer, x.clone())))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::nn::LinearConfig;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::prelude::*;
    use spectral_norm::SpectralNormConfig;

    use super::{LEARNING_RATE, Layers, address};

    /// The addresses of `plain`'s weight over three SGD steps.
    fn addresses_through_steps(mut plain: burn::nn::Linear, device: &Device) -> Vec<usize> {
        let x = Tensor::<2>::ones([4, 1024], device).require_grad();
        let mut optimizer = SgdConfig::new().init();
        let mut seen = vec![address(plain.weight.val())];
        for _ in 0..3 {
            let grads =
                GradientsParams::from_grads(plain.forward(x.clone()).sum().backward(), &plain);
            plain = optimizer.step(LEARNING_RATE, plain, grads);
            seen.push(address(plain.weight.val()));
        }
        seen
    }

    /// The step overheads rest on this: the plain layer's weight starts on a cache line, and
    /// the SGD steps update it where it lies (so a 4 MiB weight stays on its huge pages too),
    /// with the eval copies of the harness alive, since they are layers of their own. An eval
    /// copy of the same layer would share the weight and make the first step move it.
    #[test]
    fn the_plain_layers_weight_keeps_its_line_aligned_storage_through_sgd_steps() {
        let device = Device::flex().autodiff();
        let on = device.clone();
        let layers = Layers::new(
            move || LinearConfig::new(1024, 1024).init(&on),
            &SpectralNormConfig::new(),
            |l: &burn::nn::Linear| &l.weight,
        );
        let (plain, _eval) = (layers.plain(), layers.plain().valid());
        let seen = addresses_through_steps(plain, &device);
        assert_eq!(seen[0] % 64, 0);
        assert!(seen.iter().all(|&a| a == seen[0]), "{seen:x?}");

        let plain = layers.plain();
        let _shared = plain.valid();
        let seen = addresses_through_steps(plain, &device);
        assert_ne!(
            seen[1], seen[0],
            "a shared weight is written afresh: {seen:x?}"
        );
    }
}

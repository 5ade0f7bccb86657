//! The layers peers.py measures, built on Burn's Flex backend, and the calls timed on them.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use spectral_norm::{SpectralNormConfig, spectral_norm};

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
    /// Bytes from the last 64-byte boundary to the plain layer's weight: Burn allocates on
    /// 16-byte boundaries, and the Flex matmul runs faster on a weight that starts on a line
    /// (our `W / σ` always does), so this tells a reader which case the plain layer drew.
    pub plain_weight_offset: usize,
}

/// Bytes from the last 64-byte boundary to the first element of `weight`.
fn offset_in_line<const D: usize>(weight: Tensor<D>) -> usize {
    let weight = weight
        .without_autodiff()
        .try_into_primitive::<burn::backend::Flex>()
        .unwrap_or_else(|_| panic!("the harness runs on Flex"));
    let first = weight.layout().start_offset() * weight.dtype().size();
    (weight.bytes().as_ptr() as usize + first) % 64
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
        let plain = LinearConfig::new(shape.weight[1], shape.weight[0]).init(&device);
        let sn = spectral_norm(&plain, &config).expect("a Linear weight takes spectral norm");
        linear_calls(
            plain,
            sn,
            x.reshape([shape.input[0], shape.input[1]]).require_grad(),
            uses,
        )
    } else {
        let plain = Conv2dConfig::new([shape.weight[1], shape.weight[0]], [shape.weight[2]; 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let sn = spectral_norm(&plain, &config).expect("a Conv2d weight takes spectral norm");
        conv_calls(plain, sn, x.require_grad(), uses)
    }
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

fn linear_calls(plain: Linear, sn: Linear, x: Tensor<2>, uses: usize) -> Calls {
    let plain_weight_offset = offset_in_line(plain.weight.val());
    let x_eval = x.clone().without_autodiff();
    let (plain_eval, sn_eval) = (plain.valid(), sn.valid());
    let (weight, weight_eval) = (sn.weight.clone(), sn_eval.weight.clone());
    Calls {
        step_plain: step(plain, x.clone(), Linear::forward, uses),
        step_sn: step(sn, x, Linear::forward, uses),
        sn_train: Box::new(move || drop(weight.val())),
        eval_plain: step_eval(plain_eval, x_eval.clone(), Linear::forward),
        eval_sn: step_eval(sn_eval, x_eval, Linear::forward),
        sn_eval: Box::new(move || drop(weight_eval.val())),
        plain_weight_offset,
    }
}

fn conv_calls(plain: Conv2d, sn: Conv2d, x: Tensor<4>, uses: usize) -> Calls {
    let plain_weight_offset = offset_in_line(plain.weight.val());
    let x_eval = x.clone().without_autodiff();
    let (plain_eval, sn_eval) = (plain.valid(), sn.valid());
    let (weight, weight_eval) = (sn.weight.clone(), sn_eval.weight.clone());
    Calls {
        step_plain: step(plain, x.clone(), Conv2d::forward, uses),
        step_sn: step(sn, x, Conv2d::forward, uses),
        sn_train: Box::new(move || drop(weight.val())),
        eval_plain: step_eval(plain_eval, x_eval.clone(), Conv2d::forward),
        eval_sn: step_eval(sn_eval, x_eval, Conv2d::forward),
        sn_eval: Box::new(move || drop(weight_eval.val())),
        plain_weight_offset,
    }
}

fn step_eval<M: Send + 'static, const D: usize>(
    layer: M,
    x: Tensor<D>,
    forward: fn(&M, Tensor<D>) -> Tensor<D>,
) -> Call {
    Box::new(move || drop(forward(&layer, x.clone())))
}

use burn::backend::Flex;
use burn::nn::LinearConfig;
use burn::prelude::*;
use std::time::Instant;

fn main() {
    let device = Device::flex().autodiff();
    let plain = LinearConfig::new(4096, 4096).init(&device);
    let sn =
        spectral_norm::spectral_norm(&plain, &spectral_norm::SpectralNormConfig::new()).unwrap();
    for layer in [plain, sn] {
        let x = Tensor::<2>::random(
            [32, 4096],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        for _ in 0..3 {
            let t = Instant::now();
            let y = layer.forward(x.clone());
            let t1 = t.elapsed();
            let grads = y.sum().backward();
            let t2 = t.elapsed();
            let g = layer.weight.grad(&grads).unwrap();
            let p = g.try_into_primitive::<Flex>().unwrap();
            println!(
                "fwd {t1:?} total {t2:?} grad layout {:?} contiguous {}",
                p.layout().strides(),
                p.is_contiguous()
            );
        }
    }
}

//! Lesson 6, gradient checking: the 784-50-10 network's backprop gradients against numerical ones on
//! three MNIST images, on the GPU and on the CPU.
//!
//! `cargo run --release --example gradcheck`

#[allow(dead_code)]
mod support;

use nabla::curriculum::gradcheck::check;
use nabla::init::Init;
use nabla::mnist::{CLASSES, Mnist, PIXELS};
use nabla::model::Truth;
use nabla::model::{Model, ModelSpec};
use nabla::{Activation, Backend};

/// Entries checked per parameter tensor (W1 alone has 39 200).
const PER_PARAM: usize = 300;
/// The central difference's step (see the lesson module on why not 1e-4 in float32).
const H: f32 = 1e-2;

fn lesson<B: Backend>(b: &B, mnist: &Mnist) -> anyhow::Result<()> {
    println!("\n== on {} ==", b.describe());
    let spec = ModelSpec::mlp(PIXELS, &[50], CLASSES, Activation::Sigmoid);
    let mut model = Model::new(b, spec, Init::Xavier, 7, 0)?;
    let images: Vec<f32> = (0..3).flat_map(|i| mnist.train.image(i, true)).collect();
    let labels: Vec<u32> = mnist.train.labels[..3]
        .iter()
        .map(|&l| u32::from(l))
        .collect();
    let (x, y) = (b.tensor(3, PIXELS, &images)?, b.indices(&labels)?);
    for c in check(b, &mut model, &x, Truth::Labels(&y), H, PER_PARAM, 1)? {
        println!(
            "  {:>2}: mean |backprop - numerical| {:.2e} (max {:.2e}, mean |gradient| {:.2e}) over {} of {} entries",
            c.name, c.mean_abs_diff, c.max_abs_diff, c.mean_abs_grad, c.checked, c.total
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new("data/mnist");
    nabla::fetch::ensure(dir, |msg| eprintln!("{msg}"))?;
    let mnist = Mnist::load(dir)?;
    println!(
        "784-50-10 sigmoid network, 3 training images, central differences with h = {H} on {PER_PARAM} \
         entries per tensor"
    );
    let (cpu, gpu) = support::backends();
    if let Some(gpu) = &gpu {
        lesson(gpu, &mnist)?;
    }
    lesson(&cpu, &mnist)?;
    Ok(())
}

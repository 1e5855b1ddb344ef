//! Lesson 16, filters: SimpleConvNet's 30 first-layer 5×5 filters before training (noise drawn
//! from N(0, 0.01²), as the book) and after, drawn as a grid: the top block before, the bottom block after. Each filter is
//! scaled to its own range, black the most negative weight and white the most positive.
//!
//! `cargo run --release --example filters [OUT.png] [EPOCHS]` (default `runs/filters.png`, 1 epoch;
//! runs on the GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::cnn;
use nabla::init::Init;
use nabla::mnist::Mnist;
use nabla::plot::write_tiles;

fn lesson<B: Backend>(b: &B, mnist: &Mnist, epochs: usize) -> anyhow::Result<()> {
    let mut model = cnn::simple_conv_net(b, Init::Normal(0.01), 42)?;
    let before = cnn::first_filters(b, &model)?;
    let history = cnn::train_on_mnist(b, &mut model, &mnist.train, &mnist.test, epochs)?;
    for e in &history {
        println!(
            "epoch {}: test accuracy {:.2}%",
            e.epoch,
            e.test_accuracy.unwrap_or(f32::NAN) * 100.0
        );
    }
    let after = cnn::first_filters(b, &model)?;
    let path = support::output("filters.png");
    write_tiles(&path, &[before, after], (5, 5), 10, 8)?;
    println!(
        "filters drawn to {} (top: before, bottom: after)",
        path.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(2).map_or(Ok(1), |e| e.parse())?;
    let mnist = support::mnist()?;
    let (cpu, gpu) = support::backends();
    match &gpu {
        Some(gpu) => lesson(gpu, &mnist, epochs),
        None => lesson(&cpu, &mnist, epochs),
    }
}

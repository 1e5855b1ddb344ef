//! Lesson 17, a convolutional network: the book's SimpleConvNet trained on all of MNIST, with its loss
//! and accuracy curves.
//!
//! `cargo run --release --example cnn [OUT.png] [EPOCHS]` (default `runs/cnn.png`, 3 epochs; runs on
//! the GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::cnn;
use nabla::init::Init;
use nabla::mnist::Mnist;
use nabla::plot::{training_curves, write_png};

fn lesson<B: Backend>(b: &B, mnist: &Mnist, epochs: usize) -> anyhow::Result<()> {
    println!("{}", cnn::spec().describe());
    let mut model = cnn::simple_conv_net(b, Init::He, 42)?;
    let history = cnn::train_on_mnist(b, &mut model, &mnist.train, &mnist.test, epochs)?;
    for e in &history {
        println!(
            "epoch {}: loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%",
            e.epoch,
            e.train_loss,
            e.train_accuracy * 100.0,
            e.test_accuracy.unwrap_or(f32::NAN) * 100.0
        );
    }
    let path = support::output("cnn.png");
    write_png(&path, &training_curves(&history, "test"), 2, (420, 320))?;
    println!("curves drawn to {}", path.display());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(2).map_or(Ok(3), |e| e.parse())?;
    let mnist = support::mnist()?;
    let (cpu, gpu) = support::backends();
    match &gpu {
        Some(gpu) => lesson(gpu, &mnist, epochs),
        None => lesson(&cpu, &mnist, epochs),
    }
}

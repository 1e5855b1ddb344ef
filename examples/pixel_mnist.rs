//! Pixel-by-pixel MNIST, the long-memory benchmark for recurrent networks: each image is a sequence of
//! 784 steps of one pixel, read by an LSTM of 128 units, whose last state a dense layer classifies. The
//! digit's strokes lie hundreds of steps before the end, so the gates start with chrono initialisation
//! (`chrono`: forget-gate biases `log u`, `u ~ U(1, 783)`), which gives the cells memories of every
//! length up to the sequence's. On the CPU (an epoch takes about 160 s on two cores of a Xeon with
//! AVX-512; 30 epochs reached 96.07%); prints the running loss and each epoch's test accuracy as it
//! ends.
//!
//! `cargo run --release --example pixel_mnist [EPOCHS] [LR]` (defaults 30 and Adam's 1e-3)

#[allow(dead_code)]
mod support;

use nabla::CpuBackend;
use nabla::data::Prep;
use nabla::init::Init;
use nabla::model::{Model, ModelSpec};
use nabla::optim::Optimizer;
use nabla::schedule::LrSchedule;
use nabla::train::{DeviceSplit, Event, TrainConfig, train};

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(30), |e| e.parse())?;
    let lr = std::env::args().nth(2).map_or(Ok(1e-3), |l| l.parse())?;
    let mnist = support::mnist()?;
    let b = CpuBackend::new();
    let spec = ModelSpec::parse("input 784, lstm 128 steps 784 chrono, dense 10")?;
    println!("{} on the CPU, {epochs} epochs, Adam {lr}", spec.describe());
    let mut model = Model::new(&b, spec, Init::He, 7, 2)?;
    let input = Prep::mnist(true);
    let set = DeviceSplit::upload(&b, &mnist.train, &input)?;
    let test = DeviceSplit::upload(&b, &mnist.test, &input)?;
    let mut optimizer = Optimizer::adam(lr);
    optimizer.clip_norm = Some(1.0);
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer,
        schedule: LrSchedule::parse("cosine", 0)?,
        seed: 7,
        max_steps: None,
        report_every: 100,
        patience: None,
    };
    train(
        &b,
        &mut model,
        &set,
        Some(&test),
        &config,
        |event, _| match event {
            Event::Progress {
                epoch,
                step,
                steps,
                loss,
                ..
            } => {
                println!("  epoch {epoch}, step {step}/{steps}: loss {loss:.4}");
            }
            Event::Epoch(e) => println!(
                "epoch {}: loss {:.4}, test accuracy {:.2}% ({:.0} s)",
                e.epoch,
                e.train_loss,
                e.test_accuracy.unwrap_or(f32::NAN) * 100.0,
                e.seconds
            ),
        },
    )?;
    Ok(())
}

//! Long runs keep their memory flat: trains 784-256-256-10 for 100 short epochs (1 000 images each) on
//! the GPU backend and prints the process's resident memory after every tenth, with the growth from the
//! end of epoch 10 (by then every buffer, pipeline and cached bind group exists) to the end.
//!
//! `cargo run --release --example memory [EPOCHS]` (Linux: reads /proc/self/statm)

#[allow(dead_code)]
mod support;

use nabla::data::Prep;
use nabla::init::Init;
use nabla::mnist::{CLASSES, PIXELS};
use nabla::model::{Model, ModelSpec};
use nabla::schedule::LrSchedule;
use nabla::train::{DeviceSplit, Event, TrainConfig, train};
use nabla::{Activation, Backend, GpuBackend, Optimizer};

fn main() -> anyhow::Result<()> {
    let epochs: usize = std::env::args().nth(1).map_or(Ok(100), |a| a.parse())?;
    let mnist = support::mnist()?;
    let b = GpuBackend::new()?;
    println!("GPU: {}", b.describe());
    let train_set =
        DeviceSplit::upload(&b, &mnist.train.clone().truncated(1000), &Prep::mnist(true))?;
    let test_set =
        DeviceSplit::upload(&b, &mnist.test.clone().truncated(1000), &Prep::mnist(true))?;
    let spec = ModelSpec::mlp(PIXELS, &[256, 256], CLASSES, Activation::Relu);
    let config = TrainConfig {
        epochs,
        batch: 100,
        optimizer: Optimizer::adam(1e-3),
        schedule: LrSchedule::constant(),
        seed: 1,
        max_steps: None,
        report_every: 5,
        patience: None,
    };
    let mut model = Model::new(&b, spec, Init::He, 1, config.optimizer.state_count())?;
    let mut samples = Vec::new();
    train(
        &b,
        &mut model,
        &train_set,
        Some(&test_set),
        &config,
        |event, _| {
            if let Event::Epoch(stats) = event
                && stats.epoch % 10 == 0
            {
                let mib = nabla::bench::resident_mib().unwrap_or(f64::NAN);
                samples.push((stats.epoch, mib));
                println!("epoch {:>4}: resident {mib:.1} MiB", stats.epoch);
            }
        },
    )?;
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        println!(
            "growth from epoch {} to {}: {:+.1} MiB",
            first.0,
            last.0,
            last.1 - first.1
        );
    }
    Ok(())
}

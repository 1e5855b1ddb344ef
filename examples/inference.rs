//! Lesson 8, inference: a trained model classifies the 10 000 test images in batches, on the GPU and on
//! the CPU; a few of its mistakes are shown as ASCII art.
//!
//! `cargo run --release --example inference [MODEL.safetensors]` uses the model `cargo run --release`
//! saved (`runs/model.safetensors`); without one it first trains the curriculum's 784-50-10 net for an
//! epoch on the CPU.

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};

use nabla::data::Prep;
use nabla::init::Init;
use nabla::mnist::{CLASSES, Mnist, PIXELS, ascii_art};
use nabla::model::{Model, ModelSpec};
use nabla::schedule::LrSchedule;
use nabla::train::{DeviceSplit, TrainConfig, predict, train};
use nabla::{Activation, Backend, CpuBackend, Optimizer, checkpoint};

const BATCH: usize = 1000;

/// Trains the curriculum's first net for one epoch and saves it to `path`.
fn quick_model(mnist: &Mnist, path: &Path) -> anyhow::Result<()> {
    let cpu = CpuBackend::new();
    let spec = ModelSpec::mlp(PIXELS, &[50], CLASSES, Activation::Sigmoid);
    let mut model = Model::new(&cpu, spec, Init::Normal(0.01), 42, 0)?;
    let config = TrainConfig {
        epochs: 1,
        batch: 100,
        optimizer: Optimizer::sgd(0.1),
        schedule: LrSchedule::constant(),
        seed: 42,
        max_steps: None,
        report_every: 100,
        patience: None,
    };
    let train_set = DeviceSplit::upload(&cpu, &mnist.train, &Prep::mnist(true))?;
    train(&cpu, &mut model, &train_set, None, &config, |_, _| {})?;
    checkpoint::save(&cpu, &model, &Prep::mnist(true), path)?;
    Ok(())
}

fn lesson<B: Backend>(b: &B, path: &Path, mnist: &Mnist) -> anyhow::Result<Vec<usize>> {
    let model: Model<B> = checkpoint::load(b, path, 0)?.model;
    let test = DeviceSplit::upload(b, &mnist.test, &Prep::mnist(true))?;
    let start = std::time::Instant::now();
    let predicted = predict(b, &model, &test, BATCH)?;
    let seconds = start.elapsed().as_secs_f64();
    let correct = predicted
        .iter()
        .zip(&mnist.test.labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count();
    println!(
        "{}: {} on {} images in batches of {BATCH}: accuracy {:.2}% ({:.0} images/s)",
        b.describe(),
        model.spec.describe(),
        predicted.len(),
        100.0 * correct as f64 / predicted.len() as f64,
        predicted.len() as f64 / seconds
    );
    Ok(predicted)
}

fn main() -> anyhow::Result<()> {
    let dir = Path::new("data/mnist");
    nabla::fetch::ensure(dir, |msg| eprintln!("{msg}"))?;
    let mnist = Mnist::load(dir)?;
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("runs/model.safetensors"), PathBuf::from);
    let path = if path.exists() {
        path
    } else {
        let quick = PathBuf::from("runs/lesson_model.safetensors");
        println!(
            "{} not found: training 784-50-10 sigmoid for one epoch on the CPU first",
            path.display()
        );
        quick_model(&mnist, &quick)?;
        quick
    };
    let (cpu, gpu) = support::backends();
    let predicted = match &gpu {
        Some(gpu) => {
            let on_gpu = lesson(gpu, &path, &mnist)?;
            let on_cpu = lesson(&cpu, &path, &mnist)?;
            let differ = on_gpu.iter().zip(&on_cpu).filter(|(g, c)| g != c).count();
            println!(
                "GPU and CPU disagree on {differ} of {} images",
                on_gpu.len()
            );
            on_gpu
        }
        None => lesson(&cpu, &path, &mnist)?,
    };
    let mistakes: Vec<usize> = (0..predicted.len())
        .filter(|&i| predicted[i] != usize::from(mnist.test.labels[i]))
        .take(3)
        .collect();
    for i in mistakes {
        println!(
            "\ntest image {i}: label {}, predicted {}",
            mnist.test.labels[i], predicted[i]
        );
        let art = ascii_art(&mnist.test.images[i * PIXELS..(i + 1) * PIXELS]);
        for line in art.lines().filter(|l| !l.trim().is_empty()) {
            println!("    {line}");
        }
    }
    Ok(())
}

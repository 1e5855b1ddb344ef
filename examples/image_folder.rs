//! A binary image classifier from a folder of RGB pictures (the course's "cat or not", here stripes
//! across or down): the lesson paints 64×64 pictures into `train/` and `test/` class folders, then
//! trains on them as `nabla train --data DIR` would: a single neuron on the pixels (logistic
//! regression), a network with two hidden layers, and a small convolutional network. Draws test
//! pictures with each model's answer.
//!
//! `cargo run --release --example image_folder [OUT.png]` (default `runs/image_folder.png`)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::image_folder::{self, CLASSES, SIDE};
use nabla::curriculum::tables::fit;
use nabla::data::{LoadOptions, Loaded, Targets, open};
use nabla::init::Init;
use nabla::optim::{Optimizer, OptimizerKind};
use nabla::schedule::LrSchedule;
use nabla::train::TrainConfig;

/// The models compared: name, layers, epochs.
const MODELS: [(&str, &str, usize); 3] = [
    ("logistic regression", "dense 1", 30),
    (
        "2 hidden layers",
        "dense 64, relu, dense 16, relu, dense 1",
        30,
    ),
    (
        "CNN",
        "conv 8x5x5, relu, max_pool 4, conv 16x3x3, relu, max_pool 4, dense 1",
        15,
    ),
];

fn lesson<B: Backend>(b: &B, name: &str, data: &Loaded) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut answers = Vec::new();
    for (model, layers, epochs) in MODELS {
        let config = TrainConfig {
            epochs,
            batch: 20,
            optimizer: Optimizer::new(
                OptimizerKind::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                },
                1e-3,
            ),
            schedule: LrSchedule::constant(),
            seed: 1,
            max_steps: None,
            report_every: 50,
            patience: None,
        };
        let fitted = fit(b, data, layers, Init::He, &config, true)?;
        println!(
            "  {name}: {model:<20} ({layers}): train accuracy {:.1}%, test {}",
            fitted.history.last().map_or(f32::NAN, |e| e.train_accuracy) * 100.0,
            fitted.metrics.summary()
        );
        answers.push(fitted.predicted);
    }
    Ok(answers)
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("nabla-stripes-{}", std::process::id()));
    image_folder::write_folder(&dir, 200, 100, 5)?;
    let data = open(&dir, &LoadOptions::default())?;
    println!(
        "{} training and {} test pictures of {} ({} task; classes {}):",
        data.train.len(),
        data.test.len(),
        data.train.shape,
        data.task.name(),
        CLASSES.join(", ")
    );
    let (cpu, gpu) = support::backends();
    let answers = lesson(&cpu, "CPU", &data)?;
    if let Some(gpu) = &gpu {
        lesson(gpu, "GPU", &data)?;
    }
    // The first test pictures of each class, with each model's probability of "vertical".
    let Targets::Classes { labels, .. } = &data.test.targets else {
        unreachable!("a folder's targets are classes")
    };
    let picks: Vec<usize> = (0..2)
        .flat_map(|c| {
            labels
                .iter()
                .enumerate()
                .filter(move |(_, l)| **l == c)
                .map(|(i, _)| i)
                .take(4)
        })
        .collect();
    let images: Vec<Vec<u8>> = picks
        .iter()
        .map(|&i| match &data.test.features {
            nabla::data::Features::Bytes(v) => {
                v[i * 3 * SIDE * SIDE..(i + 1) * 3 * SIDE * SIDE].to_vec()
            }
            _ => unreachable!("pictures are bytes"),
        })
        .collect();
    let captions: Vec<String> = picks
        .iter()
        .map(|&i| {
            let p = |k: usize| 100.0 / (1.0 + (-answers[k][i]).exp());
            format!(
                "{}: {:.0}%, {:.0}%, {:.0}%",
                CLASSES[labels[i] as usize],
                p(0),
                p(1),
                p(2)
            )
        })
        .collect();
    let path = support::output("image_folder.png");
    nabla::plot::write_pictures(&path, &images, (3, SIDE, SIDE), &captions, 4)?;
    println!(
        "Test pictures with P(vertical) by logistic regression, 2 hidden layers and the CNN drawn to {}",
        path.display()
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

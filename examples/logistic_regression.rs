//! Lesson 10, logistic regression: one sigmoid neuron learns to tell a 0 from every other digit by
//! full-batch gradient descent, on the CPU and on the GPU. Draws the cost curve.
//!
//! `cargo run --release --example logistic_regression [OUT.png]` (default
//! `runs/logistic_regression.png`)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::logistic_regression::{Run, TRAIN_IMAGES, train};
use nabla::mnist::Mnist;
use nabla::plot::{Chart, Series, Style, write_png};

const DIGIT: u8 = 0;
const STEPS: usize = 300;
const LR: f32 = 0.3;

fn lesson<B: Backend>(b: &B, mnist: &Mnist, name: &str) -> anyhow::Result<Run> {
    let run = train(b, mnist, DIGIT, STEPS, LR, 1)?;
    for (step, cost) in run.costs.iter().filter(|(s, _)| *s == 1 || s % 50 == 0) {
        println!("  {name} step {step:>3}: cost {cost:.5}");
    }
    println!(
        "  {name}: train accuracy {:.2}%, test accuracy {:.2}% (always answering \"not a {DIGIT}\" scores {:.2}%)",
        run.train_accuracy * 100.0,
        run.test_accuracy * 100.0,
        run.test_base_rate * 100.0
    );
    Ok(run)
}

fn main() -> anyhow::Result<()> {
    let mnist = support::mnist()?;
    println!(
        "A {DIGIT} or not: σ(x·w + b) on {TRAIN_IMAGES} training images, {STEPS} steps of gradient descent at rate {LR}:"
    );
    let (cpu, gpu) = support::backends();
    let run = lesson(&cpu, &mnist, "CPU")?;
    if let Some(gpu) = &gpu {
        lesson(gpu, &mnist, "GPU")?;
    }
    let chart = Chart {
        title: format!("Logistic regression: a {DIGIT} or not"),
        x_label: "step".into(),
        y_label: "cost (binary cross-entropy)".into(),
        series: vec![Series {
            style: Style::Line,
            ..Series::line(
                "cost",
                run.costs
                    .iter()
                    .map(|&(s, c)| (s as f64, f64::from(c)))
                    .collect(),
            )
        }],
        y_range: None,
    };
    let path = support::output("logistic_regression.png");
    write_png(&path, &[chart], 1, (560, 360))?;
    println!("cost curve drawn to {}", path.display());
    Ok(())
}

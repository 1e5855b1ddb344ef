//! Lesson 14, hyper-parameter search: 100 trials of random learning rates and weight decays (log
//! scales), each trained for 50 epochs on 400 MNIST images and judged on 100 held-out validation images.
//! Prints the best trials and draws the validation curves of the best twenty, and every trial's final
//! accuracy against its two hyper-parameters.
//!
//! `cargo run --release --example hyperparameters [OUT.png]` (default `runs/hyperparameters.png`; runs
//! on the GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::curriculum::hyperparameters::{self, IMAGES, Trial, VALIDATION};
use nabla::plot::{Chart, Series, Style, write_png};

const TRIALS: usize = 100;
const EPOCHS: usize = 50;
const SHOWN: usize = 20;

fn main() -> anyhow::Result<()> {
    let mnist = support::mnist()?;
    println!(
        "{TRIALS} trials, {EPOCHS} epochs each on {} images, validation on the last {VALIDATION}:",
        IMAGES - VALIDATION
    );
    let (cpu, gpu) = support::backends();
    let trials: Vec<Trial> = match &gpu {
        Some(gpu) => hyperparameters::search(gpu, &mnist, TRIALS, EPOCHS, 1)?,
        None => hyperparameters::search(&cpu, &mnist, TRIALS, EPOCHS, 1)?,
    };
    for (rank, t) in trials.iter().take(5).enumerate() {
        println!(
            "  best {}: validation {:.1}%, lr {:.2e}, weight decay {:.2e}",
            rank + 1,
            t.accuracy() * 100.0,
            t.lr,
            t.weight_decay
        );
    }
    let curves = Chart {
        title: format!("best {SHOWN} of {TRIALS} trials"),
        x_label: "epoch".into(),
        y_label: "validation accuracy %".into(),
        // The best five in colour, the other fifteen grey.
        series: trials
            .iter()
            .take(SHOWN)
            .enumerate()
            .rev()
            .map(|(rank, t)| Series {
                style: if rank < 5 { Style::Line } else { Style::Guide },
                ..Series::line(
                    format!("lr {:.1e}", t.lr),
                    t.validation
                        .iter()
                        .enumerate()
                        .map(|(i, a)| ((i + 1) as f64, f64::from(*a) * 100.0))
                        .collect(),
                )
            })
            .collect(),
        y_range: Some((0.0, 100.0)),
    };
    let scatter = |name: &str, value: fn(&Trial) -> f32| Chart {
        title: format!("final accuracy against log₁₀ {name}"),
        x_label: format!("log₁₀ {name}"),
        y_label: "validation accuracy %".into(),
        series: vec![Series {
            style: Style::Dots,
            ..Series::line(
                "trial",
                trials
                    .iter()
                    .map(|t| (f64::from(value(t)).log10(), f64::from(t.accuracy()) * 100.0))
                    .collect(),
            )
        }],
        y_range: Some((0.0, 100.0)),
    };
    let charts = [
        curves,
        scatter("learning rate", |t| t.lr),
        scatter("weight decay", |t| t.weight_decay),
    ];
    let path = support::output("hyperparameters.png");
    write_png(&path, &charts, 3, (420, 340))?;
    println!("search drawn to {}", path.display());
    Ok(())
}

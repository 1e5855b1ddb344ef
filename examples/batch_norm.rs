//! Lesson 13, batch normalisation: a 6-layer ReLU network trained on 1 000 MNIST images from weights of
//! six initial scales, each without and with batch normalisation from the same weights. Prints the
//! training accuracy per epoch and draws one chart per scale.
//!
//! `cargo run --release --example batch_norm [OUT.png]` (default `runs/batch_norm.png`; runs on the GPU
//! when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::batch_norm::{self, Comparison, Curve, SCALES, TRAIN_IMAGES};
use nabla::mnist::Mnist;
use nabla::plot::{Chart, Series, Style, write_png};

/// Epochs of training per run.
const EPOCHS: usize = 20;

fn lesson<B: Backend>(b: &B, mnist: &Mnist) -> anyhow::Result<Vec<Comparison>> {
    let mut all = Vec::new();
    for scale in SCALES {
        let c = batch_norm::compare(b, mnist, scale, EPOCHS)?;
        let describe = |curve: &Curve| match curve.diverged_in {
            Some(epoch) => format!("diverged in epoch {epoch:<2}          "),
            None => format!(
                "{:5.1}% after 5 epochs, {:5.1}% after {EPOCHS}",
                curve.at(5) * 100.0,
                curve.at(EPOCHS) * 100.0
            ),
        };
        println!(
            "σ = {scale:<6} plain: {}   batch norm: {}",
            describe(&c.plain),
            describe(&c.normalised)
        );
        all.push(c);
    }
    Ok(all)
}

fn main() -> anyhow::Result<()> {
    let mnist = support::mnist()?;
    println!(
        "{} / with batch norm: {}; SGD lr 0.01, batch 100, {TRAIN_IMAGES} training images, N(0, σ²) \
         weights. Training accuracy:",
        batch_norm::spec(false).describe(),
        batch_norm::spec(true).describe()
    );
    let (cpu, gpu) = support::backends();
    let all = match &gpu {
        Some(gpu) => lesson(gpu, &mnist)?,
        None => lesson(&cpu, &mnist)?,
    };
    let percent = |c: &Curve| -> Vec<(f64, f64)> {
        c.accuracy
            .iter()
            .enumerate()
            .map(|(i, a)| ((i + 1) as f64, f64::from(*a) * 100.0))
            .collect()
    };
    let charts: Vec<Chart> = all
        .iter()
        .map(|c| Chart {
            title: match c.plain.diverged_in {
                Some(_) => format!("σ = {} (plain diverged)", c.scale),
                None => format!("σ = {}", c.scale),
            },
            x_label: "epoch".into(),
            y_label: "train accuracy %".into(),
            series: vec![
                Series {
                    style: Style::Line,
                    ..Series::line("batch norm", percent(&c.normalised))
                },
                Series {
                    style: Style::Line,
                    ..Series::line("plain", percent(&c.plain))
                },
            ],
            y_range: Some((0.0, 100.0)),
        })
        .collect();
    let path = support::output("batch_norm.png");
    write_png(&path, &charts, 3, (360, 300))?;
    println!("curves drawn to {}", path.display());
    Ok(())
}

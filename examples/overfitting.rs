//! Lesson 9, overfitting: a 7-layer network memorises 300 MNIST images; weight decay and dropout narrow
//! the gap between its training and test accuracy. Draws both accuracies of every variant per epoch.
//!
//! `cargo run --release --example overfitting [OUT.png]` (default `runs/overfitting.png`; runs on the
//! GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::overfitting::{self, Curves, TEST_IMAGES, TRAIN_IMAGES, VARIANTS};
use nabla::mnist::Mnist;
use nabla::plot::{Chart, Series, Style, write_png};

/// Epochs of training, as in the reference lesson.
const EPOCHS: usize = 200;

fn lesson<B: Backend>(b: &B, mnist: &Mnist) -> anyhow::Result<Vec<Curves>> {
    let mut all = Vec::new();
    for variant in VARIANTS {
        let curves = overfitting::run(b, mnist, variant, EPOCHS)?;
        println!(
            "{:<18} after {EPOCHS} epochs: train {:.1}%, test {:.1}%, gap {:.1} points",
            variant.name,
            curves.train.last().copied().unwrap_or(f32::NAN) * 100.0,
            curves.test.last().copied().unwrap_or(f32::NAN) * 100.0,
            curves.final_gap() * 100.0
        );
        all.push(curves);
    }
    Ok(all)
}

fn main() -> anyhow::Result<()> {
    let mnist = support::mnist()?;
    println!(
        "784-100-100-100-100-100-100-10 ReLU, SGD lr 0.01, batch 100, trained on {TRAIN_IMAGES} images; \
         test accuracy on {TEST_IMAGES}:"
    );
    let (cpu, gpu) = support::backends();
    let all = match &gpu {
        Some(gpu) => lesson(gpu, &mnist)?,
        None => lesson(&cpu, &mnist)?,
    };
    let percent = |v: &[f32]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .map(|(i, a)| ((i + 1) as f64, f64::from(*a) * 100.0))
            .collect()
    };
    let charts: Vec<Chart> = VARIANTS
        .iter()
        .zip(&all)
        .map(|(variant, curves)| Chart {
            title: variant.name.into(),
            x_label: "epoch".into(),
            y_label: "accuracy %".into(),
            series: vec![
                Series {
                    style: Style::Line,
                    ..Series::line("train", percent(&curves.train))
                },
                Series {
                    style: Style::Line,
                    ..Series::line("test", percent(&curves.test))
                },
            ],
            y_range: Some((0.0, 100.0)),
        })
        .collect();
    let path = support::output("overfitting.png");
    write_png(&path, &charts, 3, (420, 340))?;
    println!("curves drawn to {}", path.display());
    Ok(())
}

//! Lesson 12, weight initialisation: histograms of five layers' activations for N(0, 1), N(0, 0.01²)
//! and Xavier weights with sigmoid, and He weights with ReLU, on random inputs.
//!
//! `cargo run --release --example weight_init [OUT.png]` (default `runs/weight_init.png`; runs on the
//! GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::Activation;
use nabla::Backend;
use nabla::curriculum::weight_init::{
    LAYERS, SAMPLES, SETTINGS, WIDTH, activations, histogram, saturated, spread,
};
use nabla::plot::{Chart, Series, Style, write_png};

const BINS: usize = 30;

fn lesson<B: Backend>(b: &B) -> anyhow::Result<Vec<Chart>> {
    let mut charts = Vec::new();
    for setting in SETTINGS {
        let layers = activations(b, setting, 7)?;
        let relu = setting.activation == Activation::Relu;
        let high = if relu { 4.0 } else { 1.0 };
        print!("{:<22}", setting.name);
        for (i, a) in layers.iter().enumerate() {
            if relu {
                let zeros = a.iter().filter(|&&v| v == 0.0).count() as f32 / a.len() as f32;
                print!(
                    "  L{}: sd {:.3}, {:.0}% zero",
                    i + 1,
                    spread(a),
                    zeros * 100.0
                );
            } else {
                print!(
                    "  L{}: sd {:.3}, {:.0}% saturated",
                    i + 1,
                    spread(a),
                    saturated(a, 0.1) * 100.0
                );
            }
            let counts = histogram(a, BINS, 0.0, high);
            let width = f64::from(high) / BINS as f64;
            let points = counts
                .iter()
                .enumerate()
                .map(|(k, &c)| ((k as f64 + 0.5) * width, c as f64 / a.len() as f64 * 100.0))
                .collect();
            charts.push(Chart {
                title: format!("{}: layer {}", setting.name, i + 1),
                x_label: "activation".into(),
                y_label: "% of units".into(),
                series: vec![Series {
                    style: Style::Line,
                    ..Series::line("share", points)
                }],
                y_range: None,
            });
        }
        println!();
    }
    Ok(charts)
}

fn main() -> anyhow::Result<()> {
    println!(
        "{SAMPLES} random inputs through {LAYERS} layers of {WIDTH} units; sd = spread of the activations, \
         saturated = within 0.1 of 0 or 1:"
    );
    let (cpu, gpu) = support::backends();
    let charts = match &gpu {
        Some(gpu) => lesson(gpu)?,
        None => lesson(&cpu)?,
    };
    let path = support::output("weight_init.png");
    write_png(&path, &charts, LAYERS, (240, 180))?;
    println!("histograms drawn to {}", path.display());
    Ok(())
}

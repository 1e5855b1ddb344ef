//! Lesson 11, optimizers: the paths of SGD, momentum, AdaGrad and Adam on f(x, y) = x²/20 + y² from
//! (−7, 2), each step run by the backend's optimizer kernel. Draws the four paths over the contours.
//!
//! `cargo run --release --example optimizers [OUT.png]` (default `runs/optimizers.png`)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::optimizers::{STEPS, f, optimizers, path};
use nabla::plot::{Chart, Series, Style, write_png};

fn paths<B: Backend>(b: &B, name: &str) -> anyhow::Result<Vec<Vec<[f32; 2]>>> {
    let mut all = Vec::new();
    for (optimizer, settings) in optimizers() {
        let points = path(b, settings, STEPS)?;
        let end = points[points.len() - 1];
        println!(
            "  {name} {optimizer:<8} after {STEPS} steps: ({:>9.5}, {:>9.5}), f = {:.6}",
            end[0],
            end[1],
            f(end)
        );
        all.push(points);
    }
    Ok(all)
}

fn main() -> anyhow::Result<()> {
    println!("f(x, y) = x²/20 + y² from (-7, 2), {STEPS} steps:");
    let (cpu, gpu) = support::backends();
    let all = paths(&cpu, "CPU")?;
    if let Some(gpu) = &gpu {
        paths(gpu, "GPU")?;
    }
    let contours: Vec<Series> = [0.25f64, 1.0, 2.5, 4.5, 7.0]
        .iter()
        .map(|c| {
            let points = (0..=120)
                .map(|i| {
                    let a = i as f64 / 120.0 * std::f64::consts::TAU;
                    ((20.0 * c).sqrt() * a.cos(), c.sqrt() * a.sin())
                })
                .collect();
            Series {
                style: Style::Guide,
                ..Series::line(format!("f = {c}"), points)
            }
        })
        .collect();
    let charts: Vec<Chart> = optimizers()
        .iter()
        .zip(&all)
        .map(|((name, _), points)| {
            let mut series = contours.clone();
            series.push(Series {
                style: Style::LineWithDots,
                ..Series::line(
                    *name,
                    points
                        .iter()
                        .map(|p| (f64::from(p[0]), f64::from(p[1])))
                        .collect(),
                )
            });
            Chart {
                title: (*name).into(),
                x_label: "x".into(),
                y_label: "y".into(),
                series,
                y_range: Some((-6.0, 6.0)),
            }
        })
        .collect();
    let out = support::output("optimizers.png");
    write_png(&out, &charts, 2, (480, 360))?;
    println!("paths drawn to {}", out.display());
    Ok(())
}

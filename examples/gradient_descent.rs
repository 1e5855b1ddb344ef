//! Lesson 4, numerical differentiation and gradient descent, with a picture of the descent's path.
//!
//! `cargo run --release --example gradient_descent [OUT.png]` (default `runs/gradient_descent.png`)

#[allow(dead_code)]
mod support;

use nabla::curriculum::gradient_descent::{H, descend, numerical_gradient, numerical_slope};
use nabla::plot::{Chart, Series, Style, write_png};

fn main() -> anyhow::Result<()> {
    println!("f(x) = 0.01x² + 0.1x, central difference with h = {H}:");
    for x in [5.0, 10.0] {
        println!(
            "  f'({x}) ≈ {:.10} (exactly {:.1})",
            numerical_slope(x),
            0.02 * x + 0.1
        );
    }
    println!("f(x0, x1) = x0² + x1², numerical gradient:");
    for x in [[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]] {
        let g = numerical_gradient(x);
        println!("  at {x:?}: [{:.6}, {:.6}]", g[0], g[1]);
    }
    let start = [-3.0, 4.0];
    for lr in [0.1, 10.0, 1e-10] {
        let path = descend(start, lr, 100);
        let end = path[path.len() - 1];
        println!(
            "gradient descent from {start:?}, lr {lr:e}, 100 steps: ends at [{:.4e}, {:.4e}]",
            end[0], end[1]
        );
    }
    println!(
        "lr 0.1 reaches the minimum at the origin; lr 10 overshoots further every step and is"
    );
    println!("stranded far away; lr 1e-10 barely moves.");

    let path = descend(start, 0.1, 20);
    let circles: Vec<Series> = [1.0f64, 2.0, 3.0, 4.0, 5.0]
        .iter()
        .map(|r| {
            let points = (0..=100)
                .map(|i| {
                    let a = i as f64 / 100.0 * std::f64::consts::TAU;
                    (r * a.cos(), r * a.sin())
                })
                .collect();
            Series {
                style: Style::Guide,
                ..Series::line(format!("f = {}", r * r), points)
            }
        })
        .collect();
    let mut series = circles;
    series.push(Series {
        label: "path".into(),
        points: path.iter().map(|p| (p[0], p[1])).collect(),
        style: Style::LineWithDots,
    });
    let out = support::output("gradient_descent.png");
    let chart = Chart {
        title: "Gradient descent on x0² + x1² from (-3, 4), lr 0.1".into(),
        x_label: "x0".into(),
        y_label: "x1".into(),
        series,
        y_range: Some((-5.5, 5.5)),
    };
    write_png(&out, &[chart], 1, (560, 520))?;
    println!("path drawn to {}", out.display());
    Ok(())
}

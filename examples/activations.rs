//! Lesson 3, activation functions: every activation and its derivative over [-5, 5], computed by the
//! GPU kernels (the CPU reference where there is no GPU), drawn as one PNG; and softmax's properties.
//!
//! `cargo run --release --example activations [OUT.png]` (default `runs/activations.png`)

#[allow(dead_code)]
mod support;

use nabla::plot::{Chart, Series, write_png};
use nabla::{Activation, Backend};

const POINTS: usize = 401;

fn curves<B: Backend>(b: &B) -> anyhow::Result<Vec<Chart>> {
    let xs: Vec<f32> = (0..POINTS)
        .map(|i| -5.0 + 10.0 * i as f32 / (POINTS - 1) as f32)
        .collect();
    let x = b.tensor(1, POINTS, &xs)?;
    let ones = b.tensor(1, POINTS, &vec![1.0; POINTS])?;
    let (mut y, mut dy) = (b.zeros(1, POINTS)?, b.zeros(1, POINTS)?);
    let mut charts = Vec::new();
    for f in Activation::ALL {
        b.activation_forward(f, &x, &mut y)?;
        b.activation_backward(f, &x, &ones, &mut dy)?;
        let pairs = |v: Vec<f32>| -> Vec<(f64, f64)> {
            xs.iter()
                .zip(v)
                .map(|(&x, y)| (f64::from(x), f64::from(y)))
                .collect()
        };
        charts.push(Chart {
            title: f.name().into(),
            x_label: "x".into(),
            y_label: String::new(),
            series: vec![
                Series::line("f(x)", pairs(b.read(&y)?)),
                Series::line("f'(x)", pairs(b.read(&dy)?)),
            ],
            y_range: None,
        });
    }
    Ok(charts)
}

fn softmax<B: Backend>(b: &B) -> anyhow::Result<()> {
    let logits = [0.3f32, 2.9, 4.0];
    let mut y = b.zeros(1, 3)?;
    b.softmax(&b.tensor(1, 3, &logits)?, &mut y)?;
    let p = b.read(&y)?;
    println!(
        "softmax({logits:?}) = [{:.4}, {:.4}, {:.4}], sum {:.6}: probabilities, in the logits' order",
        p[0],
        p[1],
        p[2],
        p.iter().sum::<f32>()
    );
    let shifted: Vec<f32> = logits.iter().map(|v| v + 1000.0).collect();
    b.softmax(&b.tensor(1, 3, &shifted)?, &mut y)?;
    let q = b.read(&y)?;
    println!(
        "softmax of the same logits + 1000 = [{:.4}, {:.4}, {:.4}]: unchanged (the max is subtracted \
         before exp, so nothing overflows)",
        q[0], q[1], q[2]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let (cpu, gpu) = support::backends();
    let charts = match &gpu {
        Some(gpu) => curves(gpu)?,
        None => curves(&cpu)?,
    };
    let sigmoid = &charts[Activation::ALL
        .iter()
        .position(|&f| f == Activation::Sigmoid)
        .expect("sigmoid is listed")];
    let peak = sigmoid.series[1]
        .points
        .iter()
        .fold(0.0f64, |m, p| m.max(p.1));
    println!("sigmoid' peaks at {peak:.4} (at x = 0)");
    match &gpu {
        Some(gpu) => softmax(gpu)?,
        None => softmax(&cpu)?,
    }
    let out = support::output("activations.png");
    write_png(&out, &charts, 4, (300, 240))?;
    println!(
        "{} activations and their derivatives drawn to {}",
        charts.len(),
        out.display()
    );
    Ok(())
}

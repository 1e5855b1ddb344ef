//! Lessons 11 and 12 on real data: the training loss of 784-100-100-100-100-10 ReLU on MNIST over 2 000
//! steps of 128 images, for each optimizer (SGD, momentum, AdaGrad, Adam; He weights) and for each
//! initialisation (N(0, 0.01²), Xavier, He; SGD lr 0.01), every run from the same seed. Draws both sets
//! of curves.
//!
//! `cargo run --release --example mnist_curves [OUT.png]` (default `runs/mnist_curves.png`; runs on the
//! GPU when there is an adapter, else on the CPU)

#[allow(dead_code)]
mod support;

use nabla::curriculum::mnist_curves::{self, INITS, WINDOW, optimizers};
use nabla::data::Prep;
use nabla::init::Init;
use nabla::mnist::Mnist;
use nabla::optim::Optimizer;
use nabla::plot::{Chart, Series, Style, write_png};
use nabla::train::DeviceSplit;
use nabla::{Backend, Error};

/// Steps per run, as in the reference lessons.
const STEPS: usize = 2000;

type Curve = (&'static str, Vec<(usize, f32)>);

fn lesson<B: Backend>(b: &B, mnist: &Mnist) -> anyhow::Result<[Vec<Curve>; 2]> {
    let set = DeviceSplit::upload(b, &mnist.train, &Prep::mnist(true))?;
    let run = |name: &'static str, init: Init, optimizer: Optimizer| -> anyhow::Result<Curve> {
        let curve = match mnist_curves::loss_curve(b, &set, init, optimizer, STEPS) {
            Ok(curve) => curve,
            Err(Error::Diverged { epoch, .. }) => {
                println!("  {name:<12} diverged in epoch {epoch}");
                return Ok((name, Vec::new()));
            }
            Err(e) => return Err(e.into()),
        };
        let mean = |points: &[(usize, f32)]| {
            points.iter().map(|p| p.1).sum::<f32>() / points.len().max(1) as f32
        };
        let last = &curve[curve.len().saturating_sub(10)..];
        println!(
            "  {name:<12} loss over steps 1–{WINDOW}: {:.3}, over the last 100: {:.3}",
            curve.first().map_or(f32::NAN, |p| p.1),
            mean(last)
        );
        Ok((name, curve))
    };
    println!("optimizers (He init):");
    let by_optimizer = optimizers()
        .into_iter()
        .map(|(name, o)| run(name, Init::He, o))
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!("initialisations (SGD lr 0.01):");
    let by_init = INITS
        .into_iter()
        .map(|(name, init)| run(name, init, Optimizer::sgd(0.01)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok([by_optimizer, by_init])
}

fn main() -> anyhow::Result<()> {
    let mnist = support::mnist()?;
    println!(
        "{}, {STEPS} steps of 128 images, mean loss per {WINDOW} steps:",
        mnist_curves::spec().describe()
    );
    let (cpu, gpu) = support::backends();
    let [by_optimizer, by_init] = match &gpu {
        Some(gpu) => lesson(gpu, &mnist)?,
        None => lesson(&cpu, &mnist)?,
    };
    let chart = |title: &str, curves: &[Curve]| Chart {
        title: title.into(),
        x_label: "step".into(),
        y_label: "training loss".into(),
        series: curves
            .iter()
            .map(|(name, points)| Series {
                style: Style::Line,
                ..Series::line(
                    *name,
                    points
                        .iter()
                        .map(|&(s, l)| (s as f64, f64::from(l)))
                        .collect(),
                )
            })
            .collect(),
        y_range: Some((0.0, 2.5)),
    };
    let charts = [
        chart("optimizers on MNIST", &by_optimizer),
        chart("weight initialisation on MNIST", &by_init),
    ];
    let path = support::output("mnist_curves.png");
    write_png(&path, &charts, 2, (480, 360))?;
    println!("curves drawn to {}", path.display());
    Ok(())
}

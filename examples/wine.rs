//! Regression on a real table with its errors drawn: the quality (3–8) of 1 599 red wines from 11
//! measurements, the CSV file the `linfa-datasets` crate ships. One linear neuron (linear regression)
//! against the `table` preset's network (two hidden layers of 128 ReLU units with dropout 0.2), each
//! over the same five seeded 80/20 splits: the test RMSE, MAE and R², in quality points. Draws the
//! network's predictions against the truth and its loss curves on the first split.
//!
//! `cargo run --release --example wine [OUT.png]` (default `runs/wine.png`)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::tables::{Fitted, fit};
use nabla::data::metrics::Metrics;
use nabla::data::{LoadOptions, Loaded, Targets, Task, open};
use nabla::init::Init;
use nabla::model::presets;
use nabla::plot::{regression_errors, training_curves, write_png};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

fn split(seed: u64) -> anyhow::Result<Loaded> {
    let options = LoadOptions {
        targets: vec!["quality".into()],
        task: Some(Task::Regress),
        seed,
        ..LoadOptions::default()
    };
    Ok(open(&support::tables::wine(), &options)?)
}

/// The model `name` fitted on `data` with the `table` preset's training (Adam, cosine, batch 16).
fn fitted<B: Backend>(b: &B, data: &Loaded, layers: &str, seed: u64) -> anyhow::Result<Fitted<B>> {
    let preset = presets::named("table")?;
    let config = preset.config(seed)?;
    Ok(fit(b, data, layers, Init::He, &config, true)?)
}

fn figures(m: &Metrics) -> [f64; 3] {
    match m {
        Metrics::Values { rmse, mae, r2, .. } => [rmse[0], mae[0], r2[0]],
        _ => [f64::NAN; 3],
    }
}

fn main() -> anyhow::Result<()> {
    let (cpu, _) = support::backends();
    let preset = presets::named("table")?;
    let first = split(SEEDS[0])?;
    let network = preset.spec_for(first.train.shape, 1)?.describe();
    println!(
        "Wine quality, five seeded 80/20 splits, CPU backend (test RMSE / MAE / R², quality points):"
    );
    let mut drawn = None;
    for (name, layers) in [
        ("linear regression", "dense 1"),
        ("table preset", network.as_str()),
    ] {
        let mut sums = [0.0; 3];
        for &seed in &SEEDS {
            let data = split(seed)?;
            let f = fitted(&cpu, &data, layers, seed)?;
            let [r, m, q] = figures(&f.metrics);
            println!("  {name:<18} seed {seed}: RMSE {r:.4}  MAE {m:.4}  R² {q:.4}");
            sums = [sums[0] + r, sums[1] + m, sums[2] + q];
            if seed == SEEDS[0] && layers == network {
                drawn = Some((f, data));
            }
        }
        let n = SEEDS.len() as f64;
        println!(
            "  {name:<18} mean:   RMSE {:.4}  MAE {:.4}  R² {:.4}",
            sums[0] / n,
            sums[1] / n,
            sums[2] / n
        );
    }
    let (f, data) = drawn.expect("the network ran");
    let Targets::Values { values, .. } = &data.test.targets else {
        anyhow::bail!("a regression's targets are values")
    };
    let mut charts = training_curves(&f.history, "test");
    charts.push(regression_errors(&f.predicted, values, "quality"));
    let path = support::output("wine.png");
    write_png(&path, &charts, 2, (460, 380))?;
    println!(
        "Loss curves and test predictions (seed {}) drawn to {}",
        SEEDS[0],
        path.display()
    );
    Ok(())
}

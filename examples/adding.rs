//! Why LSTM: the adding problem. Sequences of 200 steps (a value and a marker per step); the target is
//! the sum of the two marked values. A tanh RNN stays at the 0.167 of always answering 1, LSTM and GRU
//! learn the sum; the second panel shows why: after training, how much the loss's gradient reaches
//! each step of the input, for each cell.
//!
//! `cargo run --release --example adding [OUT.png]` (default `runs/adding.png`), about 5 minutes on
//! two cores; `NABLA_ADDING_STEPS`, `NABLA_ADDING_EPOCHS` and `NABLA_ADDING_TRAIN` (sequences) shorten it.

#[allow(dead_code)]
mod support;

use nabla::CpuBackend;
use nabla::curriculum::adding::{self, BASELINE_MSE};
use nabla::plot::{Chart, Series, write_png};
use nabla::recurrent::Cell;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let steps = setting("NABLA_ADDING_STEPS", 200);
    let epochs = setting("NABLA_ADDING_EPOCHS", 20);
    let train = setting("NABLA_ADDING_TRAIN", 10_000);
    println!(
        "The adding problem, T = {steps}: always answering 1 scores MSE {BASELINE_MSE:.3}. \
         32 units, {train} training sequences, {epochs} epochs, on the CPU:"
    );
    let b = CpuBackend::new();
    let (mut runs, mut first) = (Vec::new(), Vec::new());
    for cell in [Cell::Rnn, Cell::Lstm, Cell::Gru] {
        first.push(adding::train_cell(&b, cell, 32, steps, train, 1, 5)?);
        let started = std::time::Instant::now();
        let run = adding::train_cell(&b, cell, 32, steps, train, epochs, 5)?;
        println!(
            "  {:>4}: test MSE {:.4} ({}; {:.0} s); gradient at the first step {:.2e}, at the last {:.2e}",
            cell.name(),
            run.final_mse(),
            if adding::learnt(&run) {
                "learnt the sum"
            } else {
                "stays at the baseline"
            },
            started.elapsed().as_secs_f64(),
            run.gradient_norms[0],
            run.gradient_norms[steps - 1],
        );
        runs.push(run);
    }
    let losses = Chart {
        title: format!("Adding problem, T = {steps}: test error"),
        x_label: "epoch".into(),
        y_label: "mean squared error".into(),
        series: runs
            .iter()
            .map(|r| {
                let points = r.test_mse.iter().enumerate();
                Series::line(
                    r.cell.name(),
                    points.map(|(e, &m)| ((e + 1) as f64, m)).collect(),
                )
            })
            .chain([Series::line(
                "answer 1",
                vec![(1.0, BASELINE_MSE), (epochs as f64, BASELINE_MSE)],
            )])
            .collect(),
        y_range: Some((0.0, 0.25)),
    };
    let gradients = |title: String, runs: &[adding::AddingRun]| Chart {
        title,
        x_label: "input step t".into(),
        y_label: "log₁₀ ‖∂L/∂x_t‖".into(),
        series: runs
            .iter()
            .map(|r| {
                let points = r.gradient_norms.iter().enumerate();
                // Norms that underflowed to 0 are drawn at the panel's floor.
                let log = points.map(|(t, &g)| (t as f64, g.max(1e-45).log10().max(-45.0)));
                Series::line(r.cell.name(), log.collect())
            })
            .collect(),
        y_range: Some((-46.0, 0.0)),
    };
    let after_one = gradients("Gradient reaching each step, epoch 1".into(), &first);
    let after_all = gradients(format!("… and after epoch {epochs}"), &runs);
    let path = support::output("adding.png");
    write_png(&path, &[losses, after_one, after_all], 3, (420, 380))?;
    println!("Drawn to {}", path.display());
    Ok(())
}

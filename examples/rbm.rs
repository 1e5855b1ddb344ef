//! Lesson 22, part 1: an RBM learns MNIST's strokes without labels. A 784–500 RBM is trained by CD-1
//! (Hinton's practical guide: rate 0.1, momentum 0.5 then 0.9, weight cost 2·10⁻⁴, batch 100); the
//! lesson prints each epoch's reconstruction error and free-energy gap, draws the filters after the
//! first and the last epoch, ten test digits with their reconstructions and the samples of Gibbs
//! chains started at them, and then asks a linear classifier to read the RBM's hidden probabilities
//! against raw pixels.
//!
//! `cargo run --release --example rbm [EPOCHS] [OUT_DIR]` (default 15 epochs, `runs/`): writes
//! `rbm-filters.png`, `rbm-samples.png` and `rbm-curves.png`; under a minute on two cores.

#[allow(dead_code)]
mod support;

use std::path::PathBuf;

use nabla::CpuBackend;
use nabla::curriculum::rbm::{self, CHAIN_SNAPSHOTS};
use nabla::data::Prep;
use nabla::plot::{Chart, Series, write_png, write_tiles};
use nabla::rbm::Rbm;
use nabla::train::DeviceSplit;

fn main() -> anyhow::Result<()> {
    let epochs = std::env::args().nth(1).map_or(Ok(15), |e| e.parse())?;
    let out = PathBuf::from(std::env::args().nth(2).unwrap_or_else(|| "runs".into()));
    let data = support::mnist()?;
    let b = CpuBackend::new();
    println!("A 784-500 RBM on MNIST's 60 000 training images, CD-1, {epochs} epochs, on the CPU:");
    println!("epoch  seconds  reconstruction error (train, test)  free energy (train, test, gap)");
    let strokes = rbm::learn_strokes(&b, &data, 500, epochs, 1)?;
    for e in &strokes.history {
        let test = e.held_out.expect("the lesson watches the test set");
        println!(
            "{:>5}  {:>7.1}  {:>13.2} {:>8.2}  {:>20.1} {:>8.1} {:>6.2}",
            e.epoch,
            e.seconds,
            e.train.reconstruction_error,
            test.reconstruction_error,
            e.train.free_energy,
            test.free_energy,
            e.free_energy_gap().unwrap_or(f64::NAN)
        );
    }
    std::fs::create_dir_all(&out)?;
    let filters = out.join("rbm-filters.png");
    write_tiles(
        &filters,
        &[strokes.filters_first.clone(), strokes.filters_last.clone()],
        (28, 28),
        20,
        2,
    )?;
    let samples = out.join("rbm-samples.png");
    let mut grids = strokes.reconstructions.to_vec();
    grids.extend(strokes.samples.iter().cloned());
    write_tiles(&samples, &grids, (28, 28), 10, 2)?;
    let epochs_axis = |f: &dyn Fn(&nabla::rbm::train::RbmEpoch) -> f64| {
        strokes
            .history
            .iter()
            .map(|e| (e.epoch as f64, f(e)))
            .collect::<Vec<_>>()
    };
    let curves = [
        Chart {
            title: "RBM 784-500: reconstruction error".into(),
            x_label: "epoch".into(),
            y_label: "Σ (v − v̂)² per image".into(),
            series: vec![
                Series::line("train", epochs_axis(&|e| e.train.reconstruction_error)),
                Series::line(
                    "test",
                    epochs_axis(&|e| e.held_out.map_or(f64::NAN, |h| h.reconstruction_error)),
                ),
            ],
            y_range: None,
        },
        Chart {
            title: "free-energy gap, test − train".into(),
            x_label: "epoch".into(),
            y_label: "F(test) − F(train)".into(),
            series: vec![Series::line(
                "gap",
                epochs_axis(&|e| e.free_energy_gap().unwrap_or(f64::NAN)),
            )],
            y_range: None,
        },
    ];
    let chart_path = out.join("rbm-curves.png");
    write_png(&chart_path, &curves, 2, (480, 320))?;
    println!(
        "filters after epoch 1 (top) and {epochs} (bottom): {}\ntest digits, reconstructions, then \
         Gibbs chains after {CHAIN_SNAPSHOTS:?} steps: {}\ncurves: {}",
        filters.display(),
        samples.display(),
        chart_path.display()
    );

    println!("\nLogistic regression (dense 10, Adam, 10 epochs) on what the RBM computes:");
    let prep = Prep::mnist(true);
    let train = DeviceSplit::upload(&b, &data.train, &prep)?;
    let test = DeviceSplit::upload(&b, &data.test, &prep)?;
    let stack = [Rbm::from_values(&b, &strokes.values)?];
    for (name, lower, width) in [
        ("raw pixels (784)", &stack[..0], 784),
        ("RBM hidden probabilities (500)", &stack[..], 500),
    ] {
        let features = [
            rbm::features(&b, lower, &train)?,
            rbm::features(&b, lower, &test)?,
        ];
        let accuracy = rbm::logistic_regression(&b, &data, features, width, 10)?;
        println!("  {name:<32} test accuracy {:.2}%", accuracy * 100.0);
    }
    Ok(())
}

//! The real tables' targets: five seeded 80/20 splits of each `linfa-datasets` table, the mean test
//! figure of each model, on the CPU backend (`NABLA_TABLES_GPU=1` runs the GPU backend as well).
//!
//! `cargo bench --bench tables`

#[path = "../examples/support/tables.rs"]
mod tables;

use nabla::curriculum::tables::fit;
use nabla::data::metrics::Metrics;
use nabla::data::{LoadOptions, Task, open};
use nabla::init::Init;
use nabla::model::presets;
use nabla::optim::{Optimizer, OptimizerKind};
use nabla::schedule::LrSchedule;
use nabla::train::TrainConfig;
use nabla::{Backend, CpuBackend, GpuBackend};

const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

/// One table's runs: its file, target, task, the layers and how to train them (from the seed).
struct Case {
    name: &'static str,
    path: std::path::PathBuf,
    target: &'static str,
    task: Task,
    layers: Option<&'static str>,
    config: fn(u64) -> TrainConfig,
}

fn table_preset(seed: u64) -> TrainConfig {
    presets::named("table")
        .and_then(|p| p.config(seed))
        .expect("the table preset")
}

fn table_preset_50_epochs(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 50,
        ..table_preset(seed)
    }
}

fn softmax_regression(seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: 300,
        batch: 8,
        optimizer: Optimizer::new(
            OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            0.01,
        ),
        schedule: LrSchedule::constant(),
        seed,
        max_steps: None,
        report_every: 1000,
        patience: None,
    }
}

fn run<B: Backend>(b: &B, label: &str, case: &Case) {
    let mut sums = [0.0f64; 3];
    let mut shown = String::new();
    for &seed in &SEEDS {
        let options = LoadOptions {
            targets: vec![case.target.into()],
            task: Some(case.task),
            seed,
            ..LoadOptions::default()
        };
        let data = open(&case.path, &options).expect("the table opens");
        let preset = presets::named("table").expect("the table preset");
        let spec = preset.spec_for(
            data.train.shape,
            case.task.outputs(data.train.targets.names().len()),
        );
        let layers = match case.layers {
            Some(l) => l.to_string(),
            None => spec.expect("the preset's model").describe(),
        };
        let config = (case.config)(seed);
        let f = fit(b, &data, &layers, Init::He, &config, true).expect("training");
        let figures = match &f.metrics {
            Metrics::Values { rmse, mae, r2, .. } => [rmse[0], mae[0], r2[0]],
            Metrics::Classes { accuracy, .. } => [f64::from(*accuracy) * 100.0, 0.0, 0.0],
        };
        for (s, v) in sums.iter_mut().zip(figures) {
            *s += v;
        }
        shown.push_str(&format!(" {:.4}", figures[0]));
    }
    let n = SEEDS.len() as f64;
    match case.task {
        Task::Regress => println!(
            "{label:<4} {:<10} RMSE {:.4}  MAE {:.4}  R² {:.4}   (RMSE per split:{shown})",
            case.name,
            sums[0] / n,
            sums[1] / n,
            sums[2] / n
        ),
        _ => println!(
            "{label:<4} {:<10} accuracy {:.2}%   (per split:{shown})",
            case.name,
            sums[0] / n
        ),
    }
}

fn main() {
    let scratch = std::env::temp_dir().join(format!("nabla-bench-tables-{}", std::process::id()));
    let cases = [
        Case {
            name: "wine",
            path: tables::wine(),
            target: "quality",
            task: Task::Regress,
            layers: None,
            config: table_preset,
        },
        Case {
            name: "diabetes",
            path: tables::diabetes(&scratch),
            target: "progression",
            task: Task::Regress,
            layers: None,
            config: table_preset_50_epochs,
        },
        Case {
            name: "iris",
            path: tables::iris(),
            target: "species",
            task: Task::Classify,
            layers: Some("dense 3"),
            config: softmax_regression,
        },
    ];
    println!("Five seeded 80/20 splits (seeds 1–5), mean test figures:");
    let cpu = CpuBackend::new();
    for case in &cases {
        run(&cpu, "CPU", case);
    }
    if std::env::var("NABLA_TABLES_GPU").as_deref() == Ok("1") {
        let gpu = GpuBackend::new().expect("a GPU adapter");
        for case in &cases {
            run(&gpu, "GPU", case);
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
}

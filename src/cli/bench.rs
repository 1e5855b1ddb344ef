//! `nabla bench`: the benchmark workloads on the CPU and GPU backends, as one table.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use nabla::bench::{self, Machine, Measurement, Report, Workload, load_average};
use nabla::checkpoint;
use nabla::mnist::Mnist;
use nabla::model::Model;
use nabla::{Backend, CpuBackend, GpuBackend};

use super::load_mnist;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Cpu,
    Gpu,
}

/// `nabla bench`'s options.
#[derive(Args)]
pub struct BenchArgs {
    /// Directory holding (or to receive) the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Workloads to run, comma-separated: book (W1), mlp (W2), wide (W3), infer (W4), cnn (W5) and lstm
    /// (W6) (the last two not in the default set: minutes per epoch on lavapipe); BENCHMARKS.md
    /// describes them.
    #[arg(long, value_delimiter = ',', value_parser = parse_workload, default_value = "book,mlp,wide,infer")]
    workloads: Vec<Workload>,
    /// Backends to run them on, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [BackendChoice::Cpu, BackendChoice::Gpu])]
    backends: Vec<BackendChoice>,
    /// Epochs per training workload (passes for `infer`); the first is reported apart from the rest.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_workload(name: &str) -> std::result::Result<Workload, String> {
    Workload::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        format!("unknown workload `{name}` (expected {})", names.join(", "))
    })
}

/// Runs the chosen workloads on the chosen backends and prints (and optionally saves) the report.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mnist = load_mnist(&args.data)?;
    let machine = Machine::probe();
    // A missing GPU fails here, before the CPU's minutes of work rather than after them.
    let mut opened_gpu = if args.backends.contains(&BackendChoice::Gpu) {
        Some(GpuBackend::new()?)
    } else {
        None
    };
    let mut rows = Vec::new();
    for choice in &args.backends {
        match choice {
            BackendChoice::Cpu => {
                bench_backend("cpu", || Ok(CpuBackend::new()), &mnist, args, &mut rows)?
            }
            BackendChoice::Gpu => bench_backend(
                "gpu",
                || match opened_gpu.take() {
                    Some(gpu) => Ok(gpu),
                    None => Ok(GpuBackend::new()?),
                },
                &mnist,
                args,
                &mut rows,
            )?,
        }
    }
    let report = Report {
        machine,
        load_after: load_average(),
        rows,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        checkpoint::write_atomically(path, report.json().as_bytes())?;
        eprintln!("JSON report written to {}", path.display());
    }
    Ok(())
}

/// Runs the chosen workloads in order. Each training workload gets a freshly opened backend, so that its
/// first epoch pays for compiling its own kernels; W4 runs on the backend that trained W2, with that
/// model, or on a fresh one with an untrained W2 net if W2 did not run.
fn bench_backend<B: Backend>(
    label: &'static str,
    mut open: impl FnMut() -> Result<B>,
    mnist: &Mnist,
    args: &BenchArgs,
    rows: &mut Vec<Measurement>,
) -> Result<()> {
    let mut mlp: Option<(B, Model<B>)> = None;
    for &w in &args.workloads {
        eprintln!("{label}: {} ({} epochs)…", w.name(), args.epochs);
        let run = |b: &B, trained| bench::run(b, label, w, mnist, args.epochs, args.seed, trained);
        let m = match (&mlp, w) {
            (Some((b, model)), Workload::Infer) => run(b, Some(model))?.0,
            _ => {
                let b = open()?;
                let (m, model) = run(&b, None)?;
                if let (Workload::Mlp, Some(model)) = (w, model) {
                    mlp = Some((b, model));
                }
                m
            }
        };
        eprintln!(
            "  first {:.2}s, steady {:.2}s, test accuracy {}",
            m.first_seconds(),
            m.steady_seconds(),
            bench::accuracy(m.test_accuracy)
        );
        rows.push(m);
    }
    Ok(())
}

//! The workloads behind `nabla bench`: fixed training and inference runs on MNIST, timed the same way on
//! every backend so that their figures can be set side by side.
//!
//! Achieved GFLOP/s counts the matrix products only (a recurrent layer's: `2·T·G·H·(F + H)` per
//! sample): a dense layer's forward pass costs `2·B·in·out`, and a
//! training step three times that (the backward pass computes `dW = Xᵀ·dY` and `dX = dY·Wᵀ`, twice the
//! forward's work). The first layer's `dX` is never computed, so for training the count overstates the
//! arithmetic done: by 17% for W3, 40% for W2 and 49% for W1.

use std::time::Instant;

use crate::activation::Activation;
use crate::backend::Backend;
use crate::data::Prep;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::mnist::{CLASSES, Mnist, PIXELS};
use crate::model::{Model, ModelSpec, presets};
use crate::optim::{Optimizer, OptimizerKind};
use crate::rbm::Rbm;
use crate::rbm::train::{RbmConfig, train_rbm};
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig, evaluate, train};

/// One of the benchmark's fixed runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// W1: the curriculum's 784-50-10 sigmoid net, N(0, 0.01²), SGD lr 0.1, batch 100.
    Book,
    /// W2: 784-128-128-10 ReLU, He, momentum 0.9 lr 0.05, batch 128.
    Mlp,
    /// W3: 784-1024-1024-10 ReLU, He, momentum 0.9 lr 0.05, batch 256.
    Wide,
    /// W4: forward passes only, over the 10 000 test images with the W2 net, batch 1000.
    Infer,
    /// W5: the book's SimpleConvNet (conv 30×5×5, ReLU, max pool 2, dense 100, ReLU, dense 10), He,
    /// Adam lr 1e-3, batch 100.
    Cnn,
    /// W6: the `lstm` preset's network (MNIST's rows as 28 steps, LSTM 128, dense 10), He, Adam lr 1e-3,
    /// batch 100.
    Lstm,
    /// W7: a 784-500 RBM trained by CD-1 (Hinton's guide: rate 0.1, momentum 0.5, weight cost 2·10⁻⁴),
    /// batch 100: five products of 784×500 per sample. It has no test accuracy.
    Rbm,
}

/// W7's hidden units.
pub const RBM_HIDDEN: usize = 500;

/// The batch size of W4's inference passes.
pub const INFER_BATCH: usize = 1000;

impl Workload {
    /// All workloads, in the order the table lists them.
    pub const ALL: [Workload; 7] = [
        Workload::Book,
        Workload::Mlp,
        Workload::Wide,
        Workload::Infer,
        Workload::Cnn,
        Workload::Lstm,
        Workload::Rbm,
    ];

    /// The short name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Book => "book",
            Workload::Mlp => "mlp",
            Workload::Wide => "wide",
            Workload::Infer => "infer",
            Workload::Cnn => "cnn",
            Workload::Lstm => "lstm",
            Workload::Rbm => "rbm",
        }
    }

    /// Reads a name written by [`Workload::name`].
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The model, its initialisation and the optimizer and batch size the workload trains with (W4
    /// borrows W2's).
    pub fn setup(self) -> (ModelSpec, Init, Optimizer, usize) {
        let momentum = Optimizer::new(
            OptimizerKind::Momentum {
                momentum: 0.9,
                nesterov: false,
            },
            0.05,
        );
        let spec =
            |hidden: Vec<usize>, activation| ModelSpec::mlp(PIXELS, &hidden, CLASSES, activation);
        match self {
            Workload::Book => (
                spec(vec![50], Activation::Sigmoid),
                Init::Normal(0.01),
                Optimizer::sgd(0.1),
                100,
            ),
            Workload::Mlp | Workload::Infer => (
                spec(vec![128, 128], Activation::Relu),
                Init::He,
                momentum,
                128,
            ),
            Workload::Wide => (
                spec(vec![1024, 1024], Activation::Relu),
                Init::He,
                momentum,
                256,
            ),
            Workload::Cnn => (
                ModelSpec::parse(presets::SIMPLE_CNN).expect("the preset parses"),
                Init::He,
                Optimizer::adam(1e-3),
                100,
            ),
            Workload::Lstm => (
                ModelSpec::parse(presets::ROW_LSTM).expect("the preset parses"),
                Init::He,
                Optimizer::adam(1e-3),
                100,
            ),
            // The network W7's RBM would start (`nabla train --init-from`); the RBM itself is timed.
            Workload::Rbm => (
                spec(vec![RBM_HIDDEN], Activation::Sigmoid),
                Init::Xavier,
                Optimizer::sgd(0.1),
                100,
            ),
        }
    }
}

/// One workload's figures on one backend.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The workload.
    pub workload: Workload,
    /// Which backend: `cpu` or `gpu`.
    pub label: &'static str,
    /// The backend, as [`Backend::describe`] puts it.
    pub backend: String,
    /// Seconds of each epoch (for W4, of each pass over the test set), the first first.
    pub epoch_seconds: Vec<f64>,
    /// Samples (images) in one epoch or pass.
    pub samples_per_epoch: usize,
    /// Floating-point operations per sample (see the module's formula).
    pub flops_per_sample: f64,
    /// Test accuracy after the run.
    pub test_accuracy: f32,
    /// Kernel launches per training step (for W4, per batch of a pass), where the backend launches any.
    pub launches_per_step: Option<f64>,
}

impl Measurement {
    /// The first epoch's seconds (it includes compiling the kernels).
    pub fn first_seconds(&self) -> f64 {
        self.epoch_seconds[0]
    }

    /// Mean seconds of the epochs after the first (the first's, if there was only one).
    pub fn steady_seconds(&self) -> f64 {
        match &self.epoch_seconds[..] {
            [only] => *only,
            [_, rest @ ..] => rest.iter().sum::<f64>() / rest.len() as f64,
            [] => f64::NAN,
        }
    }

    /// Samples per second in the steady state.
    pub fn samples_per_sec(&self) -> f64 {
        self.samples_per_epoch as f64 / self.steady_seconds()
    }

    /// Achieved GFLOP/s in the steady state.
    pub fn gflops(&self) -> f64 {
        self.flops_per_sample * self.samples_per_sec() / 1e9
    }
}

/// Runs `workload` on `b` (called `label` in the report) for `epochs` epochs (passes over the test set, for W4) and returns its figures
/// with the trained model (none for W4). W4 times `trained` where given (the W2 model the same run
/// trained, so that its accuracy means something), else a freshly initialised W2 net.
pub fn run<B: Backend>(
    b: &B,
    label: &'static str,
    workload: Workload,
    mnist: &Mnist,
    epochs: usize,
    seed: u64,
    trained: Option<&Model<B>>,
) -> Result<(Measurement, Option<Model<B>>)> {
    if epochs == 0 {
        return Err(Error::Invalid(
            "a benchmark needs at least one epoch".into(),
        ));
    }
    let (spec, init, optimizer, batch) = workload.setup();
    let test = DeviceSplit::upload(b, &mnist.test, &Prep::mnist(true))?;
    let fresh = || Model::new(b, spec.clone(), init, seed, optimizer.state_count());
    let measure =
        |epoch_seconds, samples_per_epoch, flops_per_sample, launches, model: &Model<B>| {
            Ok::<_, Error>(Measurement {
                workload,
                label,
                backend: b.describe(),
                epoch_seconds,
                samples_per_epoch,
                flops_per_sample,
                test_accuracy: evaluate(b, model, &test, INFER_BATCH)?,
                launches_per_step: launches,
            })
        };
    // Launches per step from the counts before and after `steps` steps.
    let per_step = |before: u64, steps: usize| {
        let launched = b.kernel_launches() - before;
        (launched > 0).then(|| launched as f64 / steps as f64)
    };
    if workload == Workload::Rbm {
        return run_rbm(b, label, mnist, epochs, seed, batch);
    }
    if workload == Workload::Infer {
        let owned;
        let model = match trained {
            Some(m) => m,
            None => {
                owned = fresh()?;
                &owned
            }
        };
        let mut seconds = Vec::with_capacity(epochs);
        let before = b.kernel_launches();
        for _ in 0..epochs {
            let start = Instant::now();
            evaluate(b, model, &test, INFER_BATCH)?;
            seconds.push(start.elapsed().as_secs_f64());
        }
        let launches = per_step(before, epochs * test.len.div_ceil(INFER_BATCH));
        let flops = model.forward_flops_per_sample();
        return Ok((measure(seconds, test.len, flops, launches, model)?, None));
    }
    let mut model = fresh()?;
    let train_set = DeviceSplit::upload(b, &mnist.train, &Prep::mnist(true))?;
    let config = TrainConfig {
        epochs,
        batch,
        optimizer,
        schedule: LrSchedule::constant(),
        seed,
        max_steps: None,
        report_every: usize::MAX,
        patience: None,
    };
    let before = b.kernel_launches();
    let history = train(b, &mut model, &train_set, None, &config, |_, _| {})?;
    // Nothing but the steps launches kernels: no evaluation, and the totals are read once an epoch.
    let launches = per_step(before, epochs * (train_set.len / batch));
    let seconds = history.iter().map(|s| s.seconds).collect();
    let samples = (train_set.len / batch) * batch;
    let flops = 3.0 * model.forward_flops_per_sample();
    let measurement = measure(seconds, samples, flops, launches, &model)?;
    Ok((measurement, Some(model)))
}

/// W7: a 784-500 RBM by CD-1, timed per epoch (the end-of-epoch monitoring excluded); its "test
/// accuracy" is NaN.
fn run_rbm<B: Backend>(
    b: &B,
    label: &'static str,
    mnist: &Mnist,
    epochs: usize,
    seed: u64,
    batch: usize,
) -> Result<(Measurement, Option<Model<B>>)> {
    let train_set = DeviceSplit::upload(b, &mnist.train, &Prep::mnist(true))?;
    let mut rbm = Rbm::new(b, PIXELS, RBM_HIDDEN, seed)?;
    let config = RbmConfig {
        epochs,
        batch,
        seed,
        monitor: 1000,
        ..RbmConfig::default()
    };
    let before = b.kernel_launches();
    let history = train_rbm(b, &mut rbm, &[], &train_set, None, &config, |_, _| {})?;
    let steps = epochs * (train_set.len / batch);
    // The end-of-epoch monitoring adds a handful of launches per epoch: under 0.02 per step.
    let launched = b.kernel_launches() - before;
    let measurement = Measurement {
        workload: Workload::Rbm,
        label,
        backend: b.describe(),
        epoch_seconds: history.iter().map(|e| e.seconds).collect(),
        samples_per_epoch: (train_set.len / batch) * batch,
        flops_per_sample: 10.0 * (PIXELS * RBM_HIDDEN) as f64,
        test_accuracy: f32::NAN,
        launches_per_step: (launched > 0).then(|| launched as f64 / steps as f64),
    };
    Ok((measurement, None))
}

/// The machine a benchmark ran on, as far as the process can tell.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The CPU's model name (from `/proc/cpuinfo` on Linux).
    pub cpu: String,
    /// Hardware threads available to this process.
    pub threads: usize,
    /// The 1-minute load average, where the OS reports one.
    pub load: Option<f64>,
}

impl Machine {
    /// Describes this machine now.
    pub fn probe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, name)| name.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cpu,
            threads: crate::cpu::threads(),
            load: load_average(),
        }
    }
}

/// This process's resident memory in MiB, from `/proc/self/statm` (pages of 4 KiB), where it exists.
pub fn resident_mib() -> Option<f64> {
    let pages: f64 = std::fs::read_to_string("/proc/self/statm")
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(pages * 4096.0 / (1024.0 * 1024.0))
}

/// The 1-minute load average from `/proc/loadavg`, where it exists.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A whole benchmark run: the machine and every measurement.
#[derive(Clone, Debug)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The load average when the run ended.
    pub load_after: Option<f64>,
    /// Every workload on every backend, in the order they ran.
    pub rows: Vec<Measurement>,
}

impl Report {
    /// GPU speed relative to the CPU's on `workload` (CPU steady seconds ÷ GPU steady seconds), where
    /// both ran.
    pub fn gpu_over_cpu(&self, workload: Workload) -> Option<f64> {
        let steady = |label| {
            self.rows
                .iter()
                .find(|m| m.workload == workload && m.label == label)
                .map(Measurement::steady_seconds)
        };
        Some(steady("cpu")? / steady("gpu")?)
    }

    /// The report as a Markdown table, with the machine and backends above it.
    pub fn table(&self) -> String {
        let load = |l: Option<f64>| l.map_or("unknown".into(), |l| format!("{l:.2}"));
        let mut out = format!(
            "machine: {} ({} threads), load average {} before, {} after\n",
            self.machine.cpu,
            self.machine.threads,
            load(self.machine.load),
            load(self.load_after)
        );
        let mut seen = Vec::new();
        for m in &self.rows {
            if !seen.contains(&m.label) {
                seen.push(m.label);
                out += &format!("{}: {}\n", m.label, m.backend);
            }
        }
        out += "\n| workload | backend | first epoch s | steady epoch s | samples/s | GFLOP/s | test acc | GPU/CPU speed | launches/step |\n";
        out += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for m in &self.rows {
            let ratio = match (m.label, self.gpu_over_cpu(m.workload)) {
                ("gpu", Some(r)) => format!("{r:.2}×"),
                _ => String::new(),
            };
            let launches = m
                .launches_per_step
                .map_or(String::new(), |l| format!("{l:.0}"));
            out += &format!(
                "| {} | {} | {:.3} | {:.3} | {:.0} | {:.1} | {} | {} | {} |\n",
                m.workload.name(),
                m.label,
                m.first_seconds(),
                m.steady_seconds(),
                m.samples_per_sec(),
                m.gflops(),
                accuracy(m.test_accuracy),
                ratio,
                launches
            );
        }
        out + "\nW4 `infer` times one pass over the 10 000 test images where the others time an epoch of \
                training, and its launches are per batch of 1000. GFLOP/s = samples/s × 2·Σ in·out (×3 when \
                training).\n"
    }

    /// The report as JSON.
    pub fn json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|m| {
                serde_json::json!({
                    "workload": m.workload.name(),
                    "backend": m.label,
                    "device": m.backend,
                    "epoch_seconds": m.epoch_seconds,
                    "first_seconds": m.first_seconds(),
                    "steady_seconds": m.steady_seconds(),
                    "samples_per_epoch": m.samples_per_epoch,
                    "samples_per_sec": m.samples_per_sec(),
                    "gflops": m.gflops(),
                    "test_accuracy": (!m.test_accuracy.is_nan()).then_some(m.test_accuracy),
                    "launches_per_step": m.launches_per_step,
                    "gpu_over_cpu": if m.label == "gpu" { self.gpu_over_cpu(m.workload) } else { None },
                })
            })
            .collect();
        let report = serde_json::json!({
            "machine": {
                "cpu": self.machine.cpu,
                "threads": self.machine.threads,
                "load_before": self.machine.load,
                "load_after": self.load_after,
            },
            "rows": rows,
        });
        serde_json::to_string_pretty(&report).expect("a JSON value serialises")
    }
}

/// A test accuracy as a percentage, or `–` for a workload without one (W7).
pub fn accuracy(a: f32) -> String {
    if a.is_nan() {
        "–".into()
    } else {
        format!("{:.2}%", a * 100.0)
    }
}

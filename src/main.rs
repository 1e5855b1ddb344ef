//! `nabla`: train, evaluate and query MNIST classifiers on the GPU (or the CPU).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use nabla::bench::{self, Machine, Measurement, Report, Workload, load_average};
use nabla::gpu::context;
use nabla::init::Init;
use nabla::mnist::{CLASSES, Mnist, PIXELS, SIDE};
use nabla::model::{Model, ModelSpec};
use nabla::train::{DeviceSplit, EpochStats, Event, TrainConfig, evaluate, train};
use nabla::{Activation, Backend, CpuBackend, GpuBackend, Optimizer, OptimizerKind};
use nabla::{checkpoint, plot};

#[derive(Parser)]
#[command(
    version,
    about = "Neural networks from scratch on any GPU: WGSL kernels through wgpu"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, `nabla` trains: these are `train`'s options.
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train on MNIST (the default), evaluate after every epoch and save the model.
    Train(TrainArgs),
    /// Evaluate a saved model on the 10 000 test images.
    Eval(EvalArgs),
    /// Classify one test image (by index) or a 28×28 PNG.
    Predict(PredictArgs),
    /// List the GPU adapters and their limits.
    Info,
    /// Time the benchmark workloads on the CPU and GPU backends and print one table.
    Bench(BenchArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// The GPU backend, on whatever adapter is found (lavapipe included).
    Gpu,
    /// The CPU backend.
    Cpu,
}

#[derive(Args, Clone)]
struct Common {
    /// Directory holding (or to receive) the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Which backend runs the work.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// 784-256-256-10 ReLU, He init, Adam lr 1e-3 decaying ×0.8 per epoch, batch 100, 8 epochs.
    Default,
    /// The curriculum's first net: 784-50-10 sigmoid, N(0, 0.01²), SGD lr 0.1, batch 100, 10 000 steps.
    Book,
    /// The curriculum's backprop net: as `book` with ReLU.
    Backprop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerChoice {
    Sgd,
    Momentum,
    Nesterov,
    Adagrad,
    Rmsprop,
    Adam,
    Adamw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum InitChoice {
    /// N(0, σ²) with σ from --init-std.
    Normal,
    Xavier,
    He,
}

#[derive(Args, Clone)]
struct TrainArgs {
    #[command(flatten)]
    common: Common,
    /// Start from a preset; the flags below override its values.
    #[arg(long, value_enum, default_value_t = Preset::Default)]
    preset: Preset,
    /// Hidden layer widths, comma-separated (e.g. 256,128).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Hidden activation: identity, step, sigmoid, tanh, relu, leaky_relu, elu, selu, swish, gelu, softplus.
    #[arg(long)]
    activation: Option<String>,
    /// Weight initialisation.
    #[arg(long, value_enum)]
    init: Option<InitChoice>,
    /// σ for --init normal.
    #[arg(long, default_value_t = 0.01)]
    init_std: f32,
    /// Update rule.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerChoice>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Multiply the learning rate by this after every epoch.
    #[arg(long)]
    lr_decay: Option<f32>,
    /// Weight decay (L2; decoupled for AdamW).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Samples per step (1 = stochastic gradient descent).
    #[arg(long)]
    batch: Option<usize>,
    /// Full-batch gradient descent: every step uses the whole training set.
    #[arg(long, conflicts_with = "batch")]
    full_batch: bool,
    /// Passes over the training set.
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many steps in all.
    #[arg(long)]
    steps: Option<usize>,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Train on only the first N training images.
    #[arg(long)]
    train_images: Option<usize>,
    /// Keep pixels as 0–255 instead of normalising to [0, 1].
    #[arg(long)]
    no_normalise: bool,
    /// Where to save the model (safetensors, rewritten atomically after every epoch).
    #[arg(long, default_value = "runs/model.safetensors")]
    out: PathBuf,
    /// Where to write per-epoch metrics (CSV).
    #[arg(long, default_value = "runs/metrics.csv")]
    metrics: PathBuf,
    /// Also draw the loss and accuracy curves (train and test, per epoch) to this PNG, redrawn after
    /// every epoch. A bare `--plot` writes runs/curves.png.
    #[arg(long, num_args = 0..=1, default_missing_value = "runs/curves.png")]
    plot: Option<PathBuf>,
}

#[derive(Args)]
struct EvalArgs {
    #[command(flatten)]
    common: Common,
    /// The model to evaluate.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// Evaluate on pixels kept as 0–255 (for models trained with --no-normalise).
    #[arg(long)]
    no_normalise: bool,
}

#[derive(Args)]
struct PredictArgs {
    #[command(flatten)]
    common: Common,
    /// The model to use.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// A test-set image index.
    #[arg(long, conflicts_with = "image")]
    index: Option<usize>,
    /// A 28×28 PNG, white digit on black as in MNIST (see --invert).
    #[arg(long)]
    image: Option<PathBuf>,
    /// The PNG is dark ink on a light background: invert it.
    #[arg(long)]
    invert: bool,
    /// Pixels kept as 0–255 (for models trained with --no-normalise).
    #[arg(long)]
    no_normalise: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Cpu,
    Gpu,
}

#[derive(Args)]
struct BenchArgs {
    /// Directory holding (or to receive) the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// Workloads to run, comma-separated: book (W1), mlp (W2), wide (W3), infer (W4); BENCHMARKS.md
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

fn main() {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Train(cli.train));
    if let Err(e) = run(command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => run_train(&b, &args))
        }
        Command::Eval(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => run_eval(&b, &args))
        }
        Command::Predict(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => run_predict(&b, &args))
        }
        Command::Info => info(),
        Command::Bench(args) => bench(&args),
    }
}

enum Device {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

/// Runs `$body` with `$b` bound to the chosen backend, whatever its type.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $b:ident => $body:expr) => {
        match $device {
            Device::Cpu($b) => $body,
            Device::Gpu($b) => {
                let $b = *$b;
                $body
            }
        }
    };
}

fn open(choice: DeviceChoice) -> Result<Device> {
    let device = match choice {
        DeviceChoice::Cpu => Device::Cpu(CpuBackend::new()),
        DeviceChoice::Gpu => Device::Gpu(Box::new(GpuBackend::new()?)),
        DeviceChoice::Auto => {
            let best = context::list_adapters()
                .into_iter()
                .next()
                .map(|a| a.get_info());
            match best {
                Some(info) if info.device_type != wgpu::DeviceType::Cpu => {
                    Device::Gpu(Box::new(GpuBackend::new()?))
                }
                Some(info) => {
                    eprintln!(
                        "Only a software GPU ({}) is present: using the CPU backend, which is faster \
                         there. `--device gpu` runs the GPU kernels on it anyway.",
                        info.name
                    );
                    Device::Cpu(CpuBackend::new())
                }
                None => {
                    eprintln!("No GPU adapter found: using the CPU backend.");
                    Device::Cpu(CpuBackend::new())
                }
            }
        }
    };
    let description = match &device {
        Device::Cpu(b) => b.describe(),
        Device::Gpu(b) => b.describe(),
    };
    eprintln!("device: {description}");
    Ok(device)
}

fn load_mnist(dir: &Path) -> Result<Mnist> {
    nabla::fetch::ensure(dir, |msg| eprintln!("{msg}"))?;
    Ok(Mnist::load(dir)?)
}

struct Plan {
    spec: ModelSpec,
    init: Init,
    config: TrainConfig,
}

fn plan(args: &TrainArgs, train_len: usize) -> Result<Plan> {
    let (hidden, act, init, opt, lr, decay, batch, epochs, steps) = match args.preset {
        Preset::Default => (
            vec![256, 256],
            "relu",
            Init::He,
            OptimizerChoice::Adam,
            1e-3,
            0.8,
            100,
            8,
            None,
        ),
        Preset::Book | Preset::Backprop => (
            vec![50],
            if args.preset == Preset::Book {
                "sigmoid"
            } else {
                "relu"
            },
            Init::Normal(0.01),
            OptimizerChoice::Sgd,
            0.1,
            1.0,
            100,
            17,
            Some(10_000),
        ),
    };
    let activation_name = args.activation.as_deref().unwrap_or(act);
    let activation = Activation::from_name(activation_name)
        .with_context(|| format!("unknown activation `{activation_name}`"))?;
    let init = match args.init {
        None => init,
        Some(InitChoice::Normal) => Init::Normal(args.init_std),
        Some(InitChoice::Xavier) => Init::Xavier,
        Some(InitChoice::He) => Init::He,
    };
    let kind = match args.optimizer.unwrap_or(opt) {
        OptimizerChoice::Sgd => OptimizerKind::Sgd,
        OptimizerChoice::Momentum => OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        OptimizerChoice::Nesterov => OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        OptimizerChoice::Adagrad => OptimizerKind::AdaGrad,
        OptimizerChoice::Rmsprop => OptimizerKind::RmsProp { decay: 0.99 },
        OptimizerChoice::Adam => OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
        },
        OptimizerChoice::Adamw => OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
        },
    };
    let mut optimizer = Optimizer::new(kind, args.lr.unwrap_or(lr));
    optimizer.weight_decay = args.weight_decay;
    if matches!(kind, OptimizerKind::AdaGrad | OptimizerKind::RmsProp { .. }) {
        optimizer.eps = 1e-7;
    }
    let batch = if args.full_batch {
        train_len
    } else {
        args.batch.unwrap_or(batch)
    };
    let spec = ModelSpec {
        inputs: PIXELS,
        hidden: args.layers.clone().unwrap_or(hidden),
        outputs: CLASSES,
        activation,
    };
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(epochs),
        batch,
        optimizer,
        lr_decay: args.lr_decay.unwrap_or(decay),
        seed: args.seed,
        max_steps: args
            .steps
            .or(if args.epochs.is_some() { None } else { steps }),
        report_every: 50,
    };
    Ok(Plan { spec, init, config })
}

fn run_train<B: Backend>(b: &B, args: &TrainArgs) -> Result<()> {
    if args.plot.is_some() {
        plot::check_font()?;
    }
    let mnist = load_mnist(&args.common.data)?;
    let train_split = match args.train_images {
        Some(n) => mnist.train.truncated(n),
        None => mnist.train,
    };
    let Plan { spec, init, config } = plan(args, train_split.len())?;
    let normalise = !args.no_normalise;
    let train_set = DeviceSplit::upload(b, &train_split, normalise)?;
    let test_set = DeviceSplit::upload(b, &mnist.test, normalise)?;
    let mut model = Model::new(
        b,
        spec.clone(),
        init,
        args.seed,
        config.optimizer.state_count(),
    )?;
    eprintln!(
        "model {} ({init:?} init), {:?} lr {}, batch {}, {} epochs{}, {} training images",
        spec.describe(),
        config.optimizer.kind,
        config.optimizer.lr,
        config.batch,
        config.epochs,
        config
            .max_steps
            .map(|s| format!(" (at most {s} steps)"))
            .unwrap_or_default(),
        train_split.len()
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut rows: Vec<EpochStats> = Vec::new();
    let started = std::time::Instant::now();
    let mut failure = None;
    let history = train(
        b,
        &mut model,
        &train_set,
        Some(&test_set),
        &config,
        |event, model| match event {
            Event::Progress {
                epoch,
                step,
                steps,
                loss,
                accuracy,
                samples_per_sec,
            } => {
                bar.set_prefix(epoch.to_string());
                bar.set_length(*steps as u64);
                bar.set_position(*step as u64);
                bar.set_message(format!(
                    "loss {loss:.4} acc {:.2}% {samples_per_sec:.0} samples/s",
                    accuracy * 100.0
                ));
            }
            Event::Epoch(stats) => {
                bar.finish_and_clear();
                eprintln!(
                    "epoch {:>3}: loss {:.4}  train acc {:.2}%  test acc {:.2}%  {:.1}s ({:.0} samples/s)",
                    stats.epoch,
                    stats.train_loss,
                    stats.train_accuracy * 100.0,
                    stats.test_accuracy.unwrap_or(f32::NAN) * 100.0,
                    stats.seconds,
                    stats.samples_per_sec
                );
                rows.push(stats.clone());
                if let Err(e) = checkpoint::save(b, model, &args.out)
                    .map_err(anyhow::Error::from)
                    .and_then(|()| write_metrics(&args.metrics, &rows))
                    .and_then(|()| match &args.plot {
                        Some(path) => Ok(plot::write_png(
                            path,
                            &plot::training_curves(&rows),
                            2,
                            (480, 360),
                        )?),
                        None => Ok(()),
                    })
                {
                    failure.get_or_insert(e);
                }
                bar.reset();
            }
        },
    );
    if let Some(e) = failure {
        return Err(e.context("saving the model, metrics or plot failed"));
    }
    let history = history?;
    let last = history
        .last()
        .context("no epoch ran: raise --epochs or --steps")?;
    println!(
        "test accuracy {:.2}% after {} epochs ({:.1}s training, {:.1}s in all); model saved to {}, \
         metrics to {}{}",
        last.test_accuracy.unwrap_or(f32::NAN) * 100.0,
        last.epoch,
        history.iter().map(|s| s.seconds).sum::<f64>(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.metrics.display(),
        args.plot
            .as_ref()
            .map(|p| format!(", curves to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

fn write_metrics(path: &Path, rows: &[EpochStats]) -> Result<()> {
    let mut csv =
        String::from("epoch,train_loss,train_accuracy,test_accuracy,seconds,samples_per_sec\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{:.3},{:.1}\n",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.test_accuracy.unwrap_or(f32::NAN),
            r.seconds,
            r.samples_per_sec
        ));
    }
    Ok(checkpoint::write_atomically(path, csv.as_bytes())?)
}

fn run_eval<B: Backend>(b: &B, args: &EvalArgs) -> Result<()> {
    let model: Model<B> = checkpoint::load(b, &args.model, 0)?;
    let mnist = load_mnist(&args.common.data)?;
    let test = DeviceSplit::upload(b, &mnist.test, !args.no_normalise)?;
    let accuracy = evaluate(b, &model, &test, 1000)?;
    println!(
        "{}: test accuracy {:.2}% on {} images",
        model.spec.describe(),
        accuracy * 100.0,
        test.len
    );
    Ok(())
}

fn run_predict<B: Backend>(b: &B, args: &PredictArgs) -> Result<()> {
    let model: Model<B> = checkpoint::load(b, &args.model, 0)?;
    let scale = if args.no_normalise { 1.0 } else { 1.0 / 255.0 };
    let (pixels, truth) = match (&args.image, args.index) {
        (Some(path), _) => (read_png(path, args.invert)?, None),
        (None, Some(i)) => {
            let mnist = load_mnist(&args.common.data)?;
            if i >= mnist.test.len() {
                bail!(
                    "--index {i} is past the test set's {} images",
                    mnist.test.len()
                );
            }
            (
                mnist.test.images[i * PIXELS..(i + 1) * PIXELS].to_vec(),
                Some(mnist.test.labels[i]),
            )
        }
        (None, None) => bail!("say which image: --index N (a test image) or --image FILE.png"),
    };
    let x: Vec<f32> = pixels.iter().map(|&p| f32::from(p) * scale).collect();
    let mut ws = model.workspace(b, 1)?;
    model.forward(b, &b.tensor(1, PIXELS, &x)?, &mut ws)?;
    let mut probs = b.zeros(1, CLASSES)?;
    b.softmax(ws.logits(), &mut probs)?;
    let probs = b.read(&probs)?;
    let digit = nabla::cpu::argmax(&probs);
    match truth {
        Some(t) => println!("predicted {digit} (label {t})"),
        None => println!("predicted {digit}"),
    }
    for (d, p) in probs.iter().enumerate() {
        println!(
            "  {d}: {:6.2}% {}",
            p * 100.0,
            "#".repeat((p * 40.0).round() as usize)
        );
    }
    Ok(())
}

/// Reads a 28×28 PNG as grayscale bytes (colour is averaged, alpha composited on black).
fn read_png(path: &Path, invert: bool) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a PNG", path.display()))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if (width, height) != (SIDE, SIDE) {
        bail!(
            "{} is {width}×{height}; nabla predicts on 28×28 images",
            path.display()
        );
    }
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let frame = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{} is corrupt", path.display()))?;
    let channels = frame.color_type.samples();
    let pixels = buf[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|px| {
            let (color, alpha) = match channels {
                1 => (u32::from(px[0]), 255),
                2 => (u32::from(px[0]), u32::from(px[1])),
                3 => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    255,
                ),
                _ => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    u32::from(px[3]),
                ),
            };
            let v = (color * alpha / 255) as u8;
            if invert { 255 - v } else { v }
        })
        .collect();
    Ok(pixels)
}

fn parse_workload(name: &str) -> std::result::Result<Workload, String> {
    Workload::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        format!("unknown workload `{name}` (expected {})", names.join(", "))
    })
}

fn bench(args: &BenchArgs) -> Result<()> {
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
            "  first {:.2}s, steady {:.2}s, {:.1}% test accuracy",
            m.first_seconds(),
            m.steady_seconds(),
            m.test_accuracy * 100.0
        );
        rows.push(m);
    }
    Ok(())
}

fn info() -> Result<()> {
    let adapters = context::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapter found (the CPU backend still works: --device cpu)");
    }
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        println!("{i}: {}", context::describe(&info));
        println!(
            "   max storage binding {} MiB, workgroup memory {} KiB, {} invocations per workgroup, \
             subgroups {}..{}{}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            info.subgroup_min_size,
            info.subgroup_max_size,
            if a.features().contains(wgpu::Features::SUBGROUP) {
                ""
            } else {
                " (no subgroup ops)"
            }
        );
    }
    println!(
        "choose with {}=<index or part of the name>; `--device auto` skips software adapters",
        context::ADAPTER_ENV
    );
    Ok(())
}

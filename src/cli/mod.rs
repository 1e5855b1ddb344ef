//! The `nabla` command line: the argument definitions shared by every command, the choice of backend,
//! and one file per command.

mod bench;
mod eval;
mod fetch;
mod info;
mod predict;
mod pretrain;
mod train;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

use nabla::checkpoint;
use nabla::data::prep::Column;
use nabla::data::{LoadOptions, Loaded, Prep, Task};
use nabla::distributed::Replicas;
use nabla::gpu::context;
use nabla::mnist::Mnist;
use nabla::{Backend, CpuBackend, GpuBackend};

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
    train: train::TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train on MNIST (the default), evaluate after every epoch and save the model.
    Train(Box<train::TrainArgs>),
    /// Evaluate a saved model on the 10 000 test images.
    Eval(eval::EvalArgs),
    /// Pre-train a deep belief network: a stack of RBMs trained layer by layer without labels, saved
    /// for `train --init-from`.
    Pretrain(pretrain::PretrainArgs),
    /// Classify one test image (by index) or a 28×28 PNG.
    Predict(predict::PredictArgs),
    /// List the GPU adapters and their limits.
    Info,
    /// Fetch MNIST where it is missing and check every file's SHA-256.
    Fetch(fetch::FetchArgs),
    /// Time the benchmark workloads on the CPU and GPU backends and print one table.
    Bench(bench::BenchArgs),
}

/// Which backend a command runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// The GPU backend, on whatever adapter is found (lavapipe included).
    Gpu,
    /// The CPU backend.
    Cpu,
}

/// Options every command that touches data takes.
#[derive(Args, Clone)]
pub struct Common {
    /// The data: a directory of IDX files (MNIST's four, fetched into the default directory when
    /// missing; Fashion-MNIST's drop in), a CSV table (.csv, .csv.gz; see --target), NumPy arrays
    /// (.npz with x and y, or x.npy with --target y.npy) or a directory of class folders of PNGs.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Which backend runs the work.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

enum Device {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

/// Runs `$body` with `$b` bound to the chosen backend, whatever its type.
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

/// Parses the command line and runs the command; errors go to stderr with exit status 1.
pub fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" when it is unset (CI,
    // containers), though compute needs no display: point it at the temporary directory.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: the first thing the process does, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Train(Box::new(cli.train)));
    if let Err(e) = resumed(command).and_then(run) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// A `train --resume FILE` command becomes the command that started the run, continued from FILE.
fn resumed(command: Command) -> Result<Command> {
    let Command::Train(args) = &command else {
        return Ok(command);
    };
    let Some(file) = args.resume.clone() else {
        return Ok(command);
    };
    // Program, optional `train`, `--resume`, FILE (or `--resume=FILE`): anything more is an option
    // that the original command line would silently override.
    let given: Vec<String> = std::env::args().skip(1).filter(|a| a != "train").collect();
    if given.len() > 2 || (given.len() == 2 && given[0] != "--resume") {
        anyhow::bail!(
            "--resume continues a run with the options it was started with; give no other option \
             (got: {})",
            given.join(" ")
        );
    }
    let original = checkpoint::read_resume(&file)?.args;
    let cli = Cli::try_parse_from(&original).map_err(|e| {
        anyhow::anyhow!(
            "{}: its command line `{}` no longer parses: {e}",
            file.display(),
            original.join(" ")
        )
    })?;
    let mut train = match cli.command {
        Some(Command::Train(args)) => *args,
        None => cli.train,
        Some(_) => anyhow::bail!("{}: not written by `nabla train`", file.display()),
    };
    train.resume = Some(file);
    Ok(Command::Train(Box::new(train)))
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(args) => {
            let replicas = Rc::new(replicas()?);
            let result = open_as(args.common.device, &replicas).and_then(
                |backend| with_backend!(backend, b => train::run(&b, &args, replicas.clone())),
            );
            if let Err(e) = &result
                && replicas.size() > 1
            {
                // The other ranks may be waiting in a collective for this one: end them all now.
                eprintln!(
                    "error on rank {} of {}: {e:#}",
                    replicas.rank(),
                    replicas.size()
                );
                replicas.comm().abort(1);
            }
            result
        }
        Command::Eval(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => eval::run(&b, &args))
        }
        Command::Pretrain(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => pretrain::run(&b, &args))
        }
        Command::Predict(args) => {
            let backend = open(args.common.device)?;
            with_backend!(backend, b => predict::run(&b, &args))
        }
        Command::Info => info::run(),
        Command::Fetch(args) => fetch::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

/// This process's place in a data-parallel run: one of the processes an MPI launcher started (with
/// the `mpi` feature), or a process of its own.
fn replicas() -> Result<Replicas> {
    #[cfg(feature = "mpi")]
    if nabla::distributed::launched_processes().is_some() {
        let comm = nabla::distributed::mpi::MpiCollective::init()?;
        return Ok(Replicas::new(Box::new(comm)));
    }
    if let Some(n) = nabla::distributed::launched_processes() {
        anyhow::bail!(
            "started as one of {n} MPI processes, but this nabla was built without MPI: build it \
             with `cargo build --release --features mpi` (see the README's \"Several processes\")"
        );
    }
    Ok(Replicas::solo())
}

/// Opens the backend `choice` names, and says which.
fn open(choice: DeviceChoice) -> Result<Device> {
    open_as(choice, &Replicas::solo())
}

/// [`open`] for one of `replicas`: where a machine has several GPUs, each replica on it takes its
/// own (by local rank), and only rank 0 says which device it opened.
fn open_as(choice: DeviceChoice, replicas: &Replicas) -> Result<Device> {
    let local_rank = replicas.comm().local_rank();
    let device = match choice {
        DeviceChoice::Cpu => Device::Cpu(CpuBackend::new()),
        DeviceChoice::Gpu => Device::Gpu(Box::new(GpuBackend::for_replica(local_rank)?)),
        DeviceChoice::Auto => {
            let best = context::list_adapters()
                .into_iter()
                .next()
                .map(|a| a.get_info());
            match best {
                Some(info) if info.device_type != wgpu::DeviceType::Cpu => {
                    Device::Gpu(Box::new(GpuBackend::for_replica(local_rank)?))
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
    if replicas.size() > 1 {
        eprintln!(
            "rank {} of {}: device {description}",
            replicas.rank(),
            replicas.size()
        );
    } else {
        eprintln!("device: {description}");
    }
    Ok(device)
}

/// Where MNIST is kept, and fetched to when missing.
pub const DEFAULT_DATA: &str = "data/mnist";

/// How to read a data set's targets and split it.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// CSV: the column to predict (repeat for several regression targets). NPY: the .npy file of
    /// labels or targets for --data x.npy.
    #[arg(long = "target", value_name = "COLUMN|FILE")]
    pub targets: Vec<String>,
    /// What to learn: classification (softmax over the classes), binary (one sigmoid output) or
    /// regression (linear outputs, mean squared error). Default: two classes are binary, more a
    /// classification, real-valued targets a regression (whole numbers with at most 50 distinct
    /// values are classes).
    #[arg(long, value_parser = parse_task)]
    pub task: Option<Task>,
    /// A separate test set in the same format as --data (by default the data's own test split, else
    /// a random part of it).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Where the data has no test split and --test is not given: the fraction held out for testing,
    /// drawn with the seed.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
}

fn parse_task(text: &str) -> std::result::Result<Task, String> {
    Task::parse(text).map_err(|e| e.to_string())
}

/// MNIST from `dir`, fetched there first if it is missing.
pub fn load_mnist(dir: &Path) -> Result<Mnist> {
    nabla::fetch::ensure(dir, |msg| eprintln!("{msg}"))?;
    Ok(Mnist::load(dir)?)
}

/// Fetches MNIST into the default directory where `--data` names it and it is missing.
pub fn fetch_default_data(common: &Common) -> Result<()> {
    if common.data == Path::new(DEFAULT_DATA) {
        nabla::fetch::ensure(&common.data, |msg| eprintln!("{msg}"))?;
    }
    Ok(())
}

/// The data set `--data` names, split into training and test parts; MNIST is fetched first when the
/// default directory lacks it.
/// A table is read by `columns` where given (a saved model's).
pub fn load_data(
    common: &Common,
    data: &DataArgs,
    seed: u64,
    columns: Option<Vec<Column>>,
) -> Result<Loaded> {
    fetch_default_data(common)?;
    let options = LoadOptions {
        targets: data.targets.clone(),
        task: data.task,
        test: data.test.clone(),
        test_fraction: data.test_fraction,
        seed,
        columns,
    };
    Ok(nabla::data::open(&common.data, &options)?)
}

/// The preprocessing a checkpoint records, or for a format 1 checkpoint, which does not record it,
/// MNIST's with the scaling `--no-normalise` says; a note when the flag contradicts the record.
fn saved_prep<B: Backend>(saved: &checkpoint::Saved<B>, no_normalise: bool) -> Prep {
    let flag = Prep::mnist(!no_normalise);
    match &saved.prep {
        Some(recorded) => {
            if no_normalise && recorded.scaling != flag.scaling {
                eprintln!(
                    "note: the model records how its inputs were scaled; --no-normalise is ignored"
                );
            }
            recorded.clone()
        }
        None => flag,
    }
}

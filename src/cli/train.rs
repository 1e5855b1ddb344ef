//! `nabla train` (the default command): train on MNIST, evaluate after every epoch, save.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use nabla::data::metrics::Metrics;
use nabla::data::{Dataset, Features, Loaded, Prep, Schema, Targets, Task};
use nabla::distributed::Replicas;
use nabla::init::Init;
use nabla::model::presets::{self, Layers};
use nabla::model::{MlpOptions, Model, ModelSpec};
use nabla::schedule::LrSchedule;
use nabla::train::{
    DeviceSplit, EpochStats, Event, Start, TrainConfig, check_batch, epochs_since_best, outputs,
    steps_after, train_replicated,
};
use nabla::{Activation, Backend, Optimizer, OptimizerKind};
use nabla::{checkpoint, plot};

use super::{Common, DataArgs, fetch_default_data, load_data};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Preset {
    /// 784-256-256-10 ReLU, He init, Adam lr 1e-3 decaying ×0.8 per epoch, batch 100, 8 epochs (the
    /// default for images).
    Default,
    /// For tables: two hidden layers of 128 ReLU units with dropout 0.2, He init, Adam lr 1e-3 on a
    /// cosine schedule, batch 16, 100 epochs (the default for tables and float arrays).
    Table,
    /// The curriculum's first net: 784-50-10 sigmoid, N(0, 0.01²), SGD lr 0.1, batch 100, 10 000 steps.
    Book,
    /// The curriculum's backprop net: as `book` with ReLU.
    Backprop,
    /// An MLP pushed as far as it goes: 784-1024-1024-1024-10 ReLU with batch norm and dropout 0.2,
    /// He init, Adam lr 1e-3 on a cosine schedule, batch 100, 20 epochs.
    Mlp,
    /// The fast CNN: two 5×5 convolutions (16 and 32 filters) with ReLU and 2×2 max pooling, then
    /// dense 100, ReLU, dense 10; He init, Adam lr 2e-3 decaying ×0.5 per epoch, batch 64, 3 epochs.
    Cnn,
    /// The book's SimpleConvNet (chapter 7): conv 30×5×5, ReLU, max pool 2, dense 100, ReLU, dense 10;
    /// He init, AdamW lr 1e-3 with decoupled weight decay 0.3 on a cosine schedule, batch 100, 12
    /// epochs.
    #[value(name = "simple_cnn", alias = "simple-cnn")]
    SimpleCnn,
    /// The book's DeepConvNet (chapter 8): six 3×3 convolutions of 16-16-32-32-64-64 filters with ReLU
    /// and a 2×2 max pool after each pair, dense 50, ReLU, dropout 0.5, dense 10; He init, Adam lr 1e-3
    /// on a cosine schedule, batch 100, 8 epochs.
    #[value(name = "deep_cnn", alias = "deep-cnn")]
    DeepCnn,
    /// Sequential MNIST, each image 28 steps of one 28-pixel row: 128 tanh RNN units, dense 10; Adam lr
    /// 2e-3 on a cosine schedule, gradients clipped to norm 1, batch 100, 12 epochs.
    Rnn,
    /// As `rnn` with 128 LSTM units.
    Lstm,
    /// As `rnn` with 128 GRU units.
    Gru,
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

/// `nabla train`'s options (also `nabla`'s, with no command).
#[derive(Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    data: DataArgs,
    /// Start from a preset; the flags below override its values. Default: `default` for images,
    /// `table` for tables and float arrays.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Hidden layer widths, comma-separated (e.g. 256,128).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// The architecture as a layer list, the data's input implied, e.g. "dense 256, batch_norm, relu,
    /// dropout 0.5, dense 10" (layers: dense N, batch_norm, dropout P, conv, pooling and the
    /// activations; the last layer gives the task's outputs). Replaces
    /// --layers, --activation, --dropout and --batch-norm.
    #[arg(long, conflicts_with_all = ["layers", "activation", "dropout", "batch_norm"])]
    arch: Option<String>,
    /// Hidden activation: identity, step, sigmoid, tanh, relu, leaky_relu, elu, selu, swish, gelu, softplus.
    #[arg(long)]
    activation: Option<String>,
    /// Weight initialisation.
    #[arg(long, value_enum)]
    init: Option<InitChoice>,
    /// σ for --init normal (and for a preset that draws N(0, σ²)); default 0.01.
    #[arg(long)]
    init_std: Option<f32>,
    /// Update rule.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerChoice>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f32>,
    /// Multiply the learning rate by this after every epoch (short for --schedule exp:DECAY).
    #[arg(long, conflicts_with = "schedule")]
    lr_decay: Option<f32>,
    /// Learning-rate schedule: constant, exp:DECAY (per epoch), step:EVERY:FACTOR (epochs), or
    /// cosine[:FLOOR] (annealed over the run towards FLOOR × the rate).
    #[arg(long)]
    schedule: Option<String>,
    /// Steps of linear learning-rate warm-up before the schedule.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Weight decay (L2; decoupled for AdamW). Default: the preset's with its own optimizer, else 0.
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Clip the gradients by their global norm to at most this before each update (recurrent networks'
    /// guard against exploding gradients). Default: the preset's, else none.
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Dropout after every hidden activation while training: the probability of dropping a unit.
    #[arg(long)]
    dropout: Option<f32>,
    /// Batch normalisation between every hidden dense layer and its activation.
    #[arg(long)]
    batch_norm: bool,
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
    /// Train on only the first N training samples.
    #[arg(long, alias = "train-samples")]
    train_images: Option<usize>,
    /// Hold the last N training samples out as a validation split: the per-epoch accuracy (or loss) is
    /// measured on it, the model is saved when it improves, and the test set is evaluated once, at the
    /// end, with the best saved model.
    #[arg(long)]
    validation: Option<usize>,
    /// Early stopping: stop once the validation accuracy has not improved for this many epochs.
    #[arg(long, requires = "validation")]
    patience: Option<usize>,
    /// Keep pixels as 0–255 instead of scaling them to [0, 1], and table features as they are instead
    /// of standardising them.
    #[arg(long)]
    no_normalise: bool,
    /// Start the first dense layers from the stack of RBMs FILE holds, as `nabla pretrain` writes it
    /// (a deep belief network's pre-training): dense layer i takes RBM i's weight and hidden bias. Use
    /// sigmoid activations after them, the RBMs' own.
    #[arg(long, value_name = "FILE")]
    init_from: Option<PathBuf>,
    /// Continue the interrupted run whose training state FILE holds: the `.resume.safetensors` file
    /// written beside --out after every epoch. The run goes on with the options it was started with
    /// (so no other option may be given) and ends where it would have ended uninterrupted.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Where to save the model (safetensors, rewritten atomically after every epoch; the training state
    /// for --resume goes beside it, as NAME.resume.safetensors).
    #[arg(long, default_value = "runs/model.safetensors")]
    out: PathBuf,
    /// Where to write per-epoch metrics (CSV).
    #[arg(long, default_value = "runs/metrics.csv")]
    metrics: PathBuf,
    /// Also draw the loss and accuracy curves (train and test, per epoch) to this PNG, redrawn after
    /// every epoch, and at the end the test set's confusion matrix (NAME-confusion.png) or, for a
    /// regression, its predictions against the truth (NAME-errors.png). A bare `--plot` writes
    /// runs/curves.png.
    #[arg(long, num_args = 0..=1, default_missing_value = "runs/curves.png")]
    plot: Option<PathBuf>,
}

struct Plan {
    spec: ModelSpec,
    init: Init,
    config: TrainConfig,
    /// The preset's and the optimizer's names as the command line spells them.
    preset: &'static str,
    optimizer: String,
}

/// The preset a run starts from: the one named, else `default` for images and `table` for tables
/// and float arrays.
fn preset_name(args: &TrainArgs, prep: &Prep) -> String {
    match args.preset {
        Some(p) => p
            .to_possible_value()
            .expect("every preset has a name")
            .get_name()
            .to_string(),
        None if prep.schema == Schema::Images => "default".into(),
        None => "table".into(),
    }
}

/// The model and training configuration the options ask for, where each process trains on `train_len`
/// samples an epoch (the whole training part, or a replica's share of it).
fn plan(args: &TrainArgs, train_len: usize, prep: &Prep) -> Result<Plan> {
    let preset = presets::named(&preset_name(args, prep))?;
    let (hidden, act, options, arch) = match preset.layers {
        Layers::Mlp {
            hidden,
            activation,
            options,
        } => (hidden.to_vec(), activation.name(), options, None),
        Layers::List(text) => (vec![], "relu", MlpOptions::default(), Some(text)),
    };
    let activation_name = args.activation.as_deref().unwrap_or(act);
    let activation = Activation::from_name(activation_name)
        .with_context(|| format!("unknown activation `{activation_name}`"))?;
    let init = match args.init {
        None => preset.init,
        Some(InitChoice::Normal) => Init::Normal(0.01),
        Some(InitChoice::Xavier) => Init::Xavier,
        Some(InitChoice::He) => Init::He,
    };
    let init = match (init, args.init_std) {
        (_, Some(std)) if !(std.is_finite() && std > 0.0) => {
            bail!("--init-std {std}: σ must be finite and greater than 0")
        }
        (Init::Normal(_), Some(std)) => Init::Normal(std),
        (other, Some(std)) => {
            eprintln!(
                "note: --init-std {std} has no effect with {other:?} initialisation; it sets σ for \
                 --init normal"
            );
            other
        }
        (other, None) => other,
    };
    let kind = match args.optimizer {
        None => preset.optimizer.kind,
        Some(OptimizerChoice::Sgd) => OptimizerKind::Sgd,
        Some(OptimizerChoice::Momentum) => OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: false,
        },
        Some(OptimizerChoice::Nesterov) => OptimizerKind::Momentum {
            momentum: 0.9,
            nesterov: true,
        },
        Some(OptimizerChoice::Adagrad) => OptimizerKind::AdaGrad,
        Some(OptimizerChoice::Rmsprop) => OptimizerKind::RmsProp { decay: 0.99 },
        Some(OptimizerChoice::Adam) => OptimizerKind::Adam {
            beta1: 0.9,
            beta2: 0.999,
        },
        Some(OptimizerChoice::Adamw) => OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
        },
    };
    let mut optimizer = Optimizer::new(kind, args.lr.unwrap_or(preset.optimizer.lr));
    // A preset's decay belongs to its optimizer (decoupled for AdamW, L2 for the others).
    optimizer.weight_decay = args
        .weight_decay
        .unwrap_or(if kind == preset.optimizer.kind {
            preset.optimizer.weight_decay
        } else {
            0.0
        });
    optimizer.clip_norm = args.clip_norm.or(preset.optimizer.clip_norm);
    if matches!(kind, OptimizerKind::AdaGrad | OptimizerKind::RmsProp { .. }) {
        optimizer.eps = 1e-7;
    }
    let batch = match (args.full_batch, args.batch) {
        (true, _) => train_len,
        (false, Some(batch)) => batch,
        (false, None) if preset.batch > train_len => {
            eprintln!(
                "note: the preset's batch of {} is more than the {train_len} training samples: \
                 training full-batch (--batch to choose)",
                preset.batch
            );
            train_len
        }
        (false, None) => preset.batch,
    };
    check_batch(batch, train_len).map_err(|e| anyhow::anyhow!("--batch: {e}"))?;
    // (clap already refuses these flags beside --arch.)
    if arch.is_some() && args.arch.is_none() {
        let mlp_flags: Vec<&str> = [
            ("--layers", args.layers.is_some()),
            ("--activation", args.activation.is_some()),
            ("--dropout", args.dropout.is_some()),
            ("--batch-norm", args.batch_norm),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        if !mlp_flags.is_empty() {
            bail!(
                "{}: for the MLP presets only; the {} preset is a layer list, so give the layers \
                 you want with --arch",
                mlp_flags.join(", "),
                preset.name
            );
        }
    }
    let spec = match args.arch.as_deref().or(arch) {
        Some(text) => ModelSpec::parse_layers(text, Some(prep.shape))
            .map_err(|e| anyhow::anyhow!("--arch: {e}"))?,
        None => {
            let dropout = args.dropout.unwrap_or(options.dropout);
            nabla::dropout::check(dropout)
                .map_err(|e| anyhow::anyhow!("--dropout {dropout}: {e}"))?;
            let options = MlpOptions {
                dropout,
                batch_norm: options.batch_norm || args.batch_norm,
            };
            let hidden = args.layers.clone().unwrap_or(hidden);
            ModelSpec::mlp_with(
                prep.shape.len(),
                &hidden,
                prep.outputs(),
                activation,
                options,
            )
        }
    };
    spec.shapes()?;
    prep.check_model(&spec).context("--arch")?;
    let schedule = match (args.schedule.as_deref(), args.lr_decay) {
        (_, Some(decay)) => LrSchedule::parse(&format!("exp:{decay}"), args.warmup),
        (text, None) => LrSchedule::parse(text.unwrap_or(preset.schedule), args.warmup),
    }
    .map_err(|e| anyhow::anyhow!("--schedule/--lr-decay: {e}"))?;
    optimizer
        .validate()
        .map_err(|e| anyhow::anyhow!("--lr/--weight-decay/--clip-norm: {e}"))?;
    schedule
        .validate()
        .map_err(|e| anyhow::anyhow!("--schedule/--warmup: {e}"))?;
    let config = TrainConfig {
        epochs: args.epochs.unwrap_or(preset.epochs),
        batch,
        optimizer,
        schedule,
        seed: args.seed,
        max_steps: args.steps.or(if args.epochs.is_some() {
            None
        } else {
            preset.max_steps
        }),
        report_every: 50,
        patience: args.patience,
    };
    let optimizer = match args.optimizer {
        Some(choice) => choice
            .to_possible_value()
            .expect("every optimizer has a name")
            .get_name()
            .to_string(),
        None => optimizer_name(kind).to_string(),
    };
    Ok(Plan {
        spec,
        init,
        config,
        preset: preset.name,
        optimizer,
    })
}

/// An optimizer as `--optimizer` names it.
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Sgd => "sgd",
        OptimizerKind::Momentum {
            nesterov: false, ..
        } => "momentum",
        OptimizerKind::Momentum { nesterov: true, .. } => "nesterov",
        OptimizerKind::AdaGrad => "adagrad",
        OptimizerKind::RmsProp { .. } => "rmsprop",
        OptimizerKind::Adam { .. } => "adam",
        OptimizerKind::AdamW { .. } => "adamw",
    }
}

/// An initialisation as `--init` names it.
fn init_name(init: Init) -> String {
    match init {
        Init::Normal(std) => format!("normal --init-std {std}"),
        Init::Xavier => "xavier".into(),
        Init::He => "he".into(),
    }
}

/// A 64-bit digest of a set's features and targets, for ranks to compare what they loaded.
fn digest(set: &Dataset) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    match &set.features {
        Features::Bytes(v) => h.write(v),
        Features::Floats(v) => h.write(bytemuck::cast_slice(v)),
    }
    match &set.targets {
        Targets::Classes { labels, .. } => h.write(bytemuck::cast_slice(labels)),
        Targets::Values { values, .. } => h.write(bytemuck::cast_slice(values)),
    }
    h.finish()
}

/// The training, validation and test parts as `--train-images` and `--validation` cut them.
fn parts(args: &TrainArgs, train: Dataset) -> Result<(Dataset, Option<Dataset>)> {
    let train = match args.train_images {
        Some(0) => bail!("--train-images 0: train on at least 1 sample"),
        Some(n) => train.truncated(n),
        None => train,
    };
    match args.validation {
        Some(n) if n == 0 || n >= train.len() => bail!(
            "--validation {n}: hold out between 1 and {} of the {} training samples",
            train.len().saturating_sub(1),
            train.len()
        ),
        Some(n) => {
            let (train, validation) = train.split_at(train.len() - n);
            Ok((train, Some(validation)))
        }
        None => Ok((train, None)),
    }
}

/// The figures of `model` on `set` (stored on the device as `device`), in the targets' units.
fn metrics_on<B: Backend>(
    b: &B,
    model: &Model<B>,
    prep: &Prep,
    device: &DeviceSplit<B>,
    set: &Dataset,
) -> Result<Metrics> {
    let out = outputs(b, model, device, 1000)?;
    Ok(Metrics::of_outputs(prep, &out, &set.targets)?)
}

/// Draws the test set's figures beside the curves (`NAME.png` → `NAME-confusion.png` for a
/// classifier, `NAME-errors.png` with predictions against the truth for a regression) and returns the
/// path.
fn write_test_picture(
    curves: &Path,
    prep: &Prep,
    metrics: &Metrics,
    mut predicted: Vec<f32>,
    test: &Dataset,
) -> Result<PathBuf> {
    let stem = curves.file_stem().unwrap_or_default().to_string_lossy();
    let named = |suffix: &str| curves.with_file_name(format!("{stem}-{suffix}.png"));
    match (metrics, &test.targets) {
        (
            Metrics::Classes {
                confusion, names, ..
            },
            _,
        ) => {
            let path = named("confusion");
            plot::write_confusion(&path, confusion, names)?;
            Ok(path)
        }
        (Metrics::Values { .. }, Targets::Values { values, names }) => {
            prep.outputs_to_targets(&mut predicted);
            let t = names.len();
            let charts: Vec<plot::Chart> = (0..t)
                .map(|j| {
                    let column =
                        |v: &[f32]| v.iter().skip(j).step_by(t).copied().collect::<Vec<_>>();
                    plot::regression_errors(&column(&predicted), &column(values), &names[j])
                })
                .collect();
            let path = named("errors");
            plot::write_png(&path, &charts, t.min(3), (420, 400))?;
            Ok(path)
        }
        _ => bail!("the test set's targets do not match its figures"),
    }
}

/// Trains as the options say, evaluating and saving after every epoch, as one of `replicas` (one
/// process alone, or one of several under an MPI launcher): every rank trains, only rank 0 prints,
/// saves and plots.
pub fn run<B: Backend>(b: &B, args: &TrainArgs, replicas: Rc<Replicas>) -> Result<()> {
    let leads = replicas.leads();
    let ranks = replicas.size();
    // Only rank 0 speaks; the others would say the same.
    let say = |line: String| {
        if leads {
            eprintln!("{line}");
        }
    };
    replicas.agree(
        "options",
        std::env::args().collect::<Vec<_>>().join("\0").as_bytes(),
    )?;
    if args.plot.is_some() && leads {
        plot::check_font()?;
    }
    if ranks > 1 {
        // One rank fetches missing data while the others wait, rather than all writing the same files.
        if leads {
            fetch_default_data(&args.common)?;
        }
        replicas.comm().barrier()?;
    }
    let Loaded {
        train,
        test,
        schema,
        task,
        test_from,
    } = load_data(&args.common, &args.data, args.seed, None)?;
    let (train, validation) = parts(args, train)?;
    let prep = Prep::fit(&train, task, !args.no_normalise, schema)?;
    if ranks > 1 {
        // The same path may hold other files on another machine: the ranks would then take different
        // numbers of steps and wait on each other in different collectives.
        let parts = format!(
            "{} {} {} {} {} {:x}",
            train.len(),
            validation.as_ref().map_or(0, |v| v.len()),
            test.len(),
            prep.shape,
            prep.task.name(),
            digest(&train)
        );
        replicas.agree("data (sizes or contents of --data)", parts.as_bytes())?;
    }
    let Plan {
        spec,
        init,
        config,
        preset,
        optimizer,
    } = plan(args, train.len() / ranks, &prep)?;
    check_memory(b, &spec, config.batch, config.optimizer.state_count())?;
    let train_len = train.len();
    let train_set = DeviceSplit::from_dataset(b, train, &prep)?;
    let test_set = DeviceSplit::from_dataset(b, test.clone(), &prep)?;
    let validation_set = match &validation {
        Some(v) => Some(DeviceSplit::from_dataset(b, v.clone(), &prep)?),
        None => None,
    };
    // What the per-epoch figures are measured on.
    let (eval_set, eval_data, eval_name) = match (&validation_set, &validation) {
        (Some(set), Some(data)) => (set, data, "validation"),
        _ => (&test_set, &test, "test"),
    };
    let (mut model, start) = match &args.resume {
        Some(file) => {
            let (saved, resume) =
                checkpoint::load_resumable(b, file, config.optimizer.state_count())?;
            if resume.ranks != ranks {
                bail!(
                    "{}: the run was started with {} processes; resume it with the same number \
                     (this is {ranks})",
                    file.display(),
                    resume.ranks
                );
            }
            if saved.model.spec != spec {
                bail!(
                    "{}: its model {} is not the one its command line builds ({})",
                    file.display(),
                    saved.model.spec.describe(),
                    spec.describe()
                );
            }
            say(format!(
                "resuming after epoch {} (step {}) from {}",
                resume.start.epochs_done,
                resume.start.steps_done,
                file.display()
            ));
            (saved.model, resume.start)
        }
        None => {
            let mut model = Model::new(
                b,
                spec.clone(),
                init,
                args.seed,
                config.optimizer.state_count(),
            )?;
            if let Some(file) = &args.init_from {
                let stack = nabla::rbm::file::load(file)
                    .and_then(|stack| {
                        nabla::rbm::stack::initialise(b, &stack, &mut model)?;
                        Ok(stack)
                    })
                    .with_context(|| format!("--init-from {}", file.display()))?;
                say(format!(
                    "the first {} dense layers start from the RBMs in {}",
                    stack.len(),
                    file.display()
                ));
            }
            (model, Start::default())
        }
    };
    model.task = prep.task;
    let resume_file = args.out.with_extension("resume.safetensors");
    let command_line: Vec<String> = match &args.resume {
        Some(file) => checkpoint::read_resume(file)?.args,
        None => std::env::args().collect(),
    };
    say(format!(
        "data {}: {} task, {} training samples of {}, test: {} ({} samples)",
        args.common.data.display(),
        prep.task.name(),
        train_len,
        prep.shape,
        test_from,
        test.len()
    ));
    say(format!(
        "model {} (--preset {preset}, --init {}), --optimizer {optimizer} --lr {}{} --batch {} --epochs {}{}",
        spec.describe(),
        init_name(init),
        config.optimizer.lr,
        config
            .optimizer
            .clip_norm
            .map(|c| format!(" --clip-norm {c}"))
            .unwrap_or_default(),
        config.batch,
        config.epochs,
        config
            .max_steps
            .map(|s| format!(" --steps {s}"))
            .unwrap_or_default(),
    ));
    if ranks > 1 {
        say(format!(
            "{ranks} processes, each taking --batch {} of every step: a global batch of {}",
            config.batch,
            config.batch * ranks
        ));
    }
    if let Some(v) = &validation {
        say(format!("{} samples held out for validation", v.len()));
    }
    let bar = if leads {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let classifies = prep.task != Task::Regress;
    let epochs_before = start.history.len();
    let mut rows: Vec<EpochStats> = start.history.clone();
    let started = std::time::Instant::now();
    let mut failure = None;
    let history = train_replicated(
        b,
        &mut model,
        &train_set,
        Some(eval_set),
        &config,
        start,
        replicas.clone(),
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
                let acc = if classifies {
                    format!(" acc {:.2}%", accuracy * 100.0)
                } else {
                    String::new()
                };
                bar.set_message(format!(
                    "loss {loss:.4}{acc} {samples_per_sec:.0} samples/s"
                ));
            }
            Event::Epoch(stats) => {
                bar.finish_and_clear();
                rows.push(stats.clone());
                if !leads {
                    return;
                }
                // With a validation split only an improving epoch's model is kept.
                let improved = validation_set.is_none() || epochs_since_best(&rows) == 0;
                let figures = if classifies {
                    format!(
                        "train acc {:.2}%  {eval_name} acc {:.2}%",
                        stats.train_accuracy * 100.0,
                        stats.test_accuracy.unwrap_or(f32::NAN) * 100.0
                    )
                } else {
                    match metrics_on(b, model, &prep, eval_set, eval_data) {
                        Ok(m) => format!("{eval_name} {}", m.summary()),
                        Err(e) => format!("({eval_name} figures failed: {e})"),
                    }
                };
                eprintln!(
                    "epoch {:>3}: loss {:.4}  {figures}  {:.1}s ({:.0} samples/s){}",
                    stats.epoch,
                    stats.train_loss,
                    stats.seconds,
                    stats.samples_per_sec,
                    if improved && validation_set.is_some() {
                        "  (best: saved)"
                    } else {
                        ""
                    }
                );
                let saved = if improved {
                    checkpoint::save(b, model, &prep, &args.out)
                } else {
                    Ok(())
                };
                // The training state, every epoch: what --resume continues from.
                let resume = checkpoint::Resume {
                    args: command_line.clone(),
                    start: Start {
                        epochs_done: stats.epoch,
                        steps_done: steps_after(stats.epoch, train_len / ranks, &config) as u64,
                        history: rows.clone(),
                    },
                    ranks,
                };
                let saved = saved.and_then(|()| {
                    checkpoint::save_resumable(b, model, &prep, &resume, &resume_file)
                });
                if let Err(e) = saved
                    .map_err(anyhow::Error::from)
                    .and_then(|()| write_metrics(&args.metrics, &rows, eval_name))
                    .and_then(|()| match &args.plot {
                        Some(path) => Ok(plot::write_png(
                            path,
                            &plot::training_curves(&rows, eval_name),
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
    if !leads {
        return Ok(());
    }
    let last = history
        .last()
        .context("no epoch ran: raise --epochs or --steps")?;
    let (final_model, kept) = if validation_set.is_some() {
        let best = history.len() - 1 - epochs_since_best(&history);
        let stopped = if config.patience.is_some() && last.epoch < config.epochs {
            format!(", stopped early after epoch {}", last.epoch)
        } else {
            String::new()
        };
        let saved = checkpoint::load(b, &args.out, 0)?;
        (
            Some(saved.model),
            format!(" (the model of epoch {}{stopped})", history[best].epoch),
        )
    } else {
        (None, String::new())
    };
    let final_model = final_model.as_ref().unwrap_or(&model);
    let test_outputs = outputs(b, final_model, &test_set, 1000)?;
    let metrics = Metrics::of_outputs(&prep, &test_outputs, &test.targets)?;
    let picture = match &args.plot {
        Some(curves) => Some(write_test_picture(
            curves,
            &prep,
            &metrics,
            test_outputs,
            &test,
        )?),
        None => None,
    };
    println!(
        "test {}{kept} after {} epochs ({:.1}s training, {:.1}s in all); model saved to {}, \
         metrics to {}{}",
        metrics.summary(),
        last.epoch,
        history.iter().map(|s| s.seconds).sum::<f64>(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        args.metrics.display(),
        args.plot
            .as_ref()
            .zip(picture)
            .map(|(p, q)| format!(", curves to {} and {}", p.display(), q.display()))
            .unwrap_or_default()
    );
    if ranks > 1 {
        let (seconds, bytes, steps) = replicas.gradient_traffic();
        // This run's epochs only: a resumed run's history holds the earlier run's too.
        let training: f64 = history[epochs_before..].iter().map(|s| s.seconds).sum();
        println!(
            "gradients averaged over {ranks} processes: {:.2} MB all-reduced per step, {seconds:.1}s \
             of {training:.1}s training ({:.1}%)",
            bytes as f64 / steps.max(1) as f64 / 1e6,
            100.0 * seconds / training.max(f64::MIN_POSITIVE)
        );
    }
    if let Some(table) = metrics.confusion_table()
        && prep.names.len() <= 20
    {
        println!("confusion matrix on the test set:\n{table}");
    }
    if let Some(warning) = failed_to_learn(&history, &metrics, config.optimizer.lr) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Refuses a model that cannot fit before anything is allocated: a tensor over the device's buffer limit
/// (naming the widest layer that fits), or, on the CPU, more memory than the machine has available.
/// Says how much a merely large one takes.
fn check_memory<B: Backend>(b: &B, spec: &ModelSpec, batch: usize, states: usize) -> Result<()> {
    const GB: f64 = 1e9;
    let (bytes, (rows, cols)) = spec.training_memory(batch, states)?;
    let tensor = 4 * rows as u64 * cols as u64;
    if let Some(limit) = b.max_tensor_bytes().filter(|&limit| tensor > limit) {
        let recurrent = spec
            .layers
            .iter()
            .any(|l| matches!(l.kind().name(), "rnn" | "lstm" | "gru"));
        let advice = if recurrent {
            "use fewer units, shorter sequences, a smaller batch or --device cpu".to_string()
        } else if spec.shapes()?.iter().any(|s| !s.is_flat()) {
            "use fewer filters, a smaller batch or --device cpu".to_string()
        } else {
            // A hidden layer's largest tensor is its weight matrix against the input or the output,
            // or its batch of activations.
            let widest_neighbour = spec.input.len().max(spec.outputs()).max(batch).max(1) as u64;
            format!(
                "hidden layers of at most {} units fit (or use --device cpu)",
                limit / 4 / widest_neighbour
            )
        };
        bail!(
            "the {rows}×{cols} tensor of {} needs {:.2} GB, over the device's limit of {:.2} GB per \
             buffer; {advice}",
            spec.describe(),
            tensor as f64 / GB,
            limit as f64 / GB,
        );
    }
    if b.max_tensor_bytes().is_none()
        && let Some(available) = available_memory()
        && bytes > available
    {
        bail!(
            "training {} in batches of {batch} needs {:.1} GB (parameters, gradients, optimizer \
                     state and a batch's activations); this machine has {:.1} GB available. Use \
                     narrower layers or a smaller batch",
            spec.describe(),
            bytes as f64 / GB,
            available as f64 / GB
        );
    }
    if bytes as f64 > GB {
        eprintln!(
            "note: training this model takes about {:.1} GB of memory",
            bytes as f64 / GB
        );
    }
    Ok(())
}

/// Memory the OS says is available to new allocations (Linux: `MemAvailable`), where it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What to tell the user when a run ended no better than guessing, or with its loss far above where it
/// started: the network did not learn, and the usual cause.
fn failed_to_learn(history: &[EpochStats], metrics: &Metrics, lr: f32) -> Option<String> {
    let (first, last) = (history.first()?, history.last()?);
    if let Metrics::Classes {
        accuracy, names, ..
    } = metrics
    {
        let chance = 1.0 / names.len().max(1) as f32;
        if *accuracy <= chance + 0.02 {
            return Some(format!(
                "the test accuracy, {:.2}%, is no better than guessing ({:.0}%): the network did not \
                 learn. The usual cause is a learning rate too high for the optimizer (this run's is \
                 {lr}); try one ten times smaller",
                accuracy * 100.0,
                chance * 100.0
            ));
        }
    }
    (last.train_loss > 2.0 * first.train_loss).then(|| {
        format!(
            "the training loss rose from {:.4} in epoch {} to {:.4} in epoch {}: training is diverging; \
             lower the learning rate (this run's is {lr})",
            first.train_loss, first.epoch, last.train_loss, last.epoch
        )
    })
}

/// The per-epoch figures as CSV; `eval_name` names the split the accuracy column measures.
fn write_metrics(path: &Path, rows: &[EpochStats], eval_name: &str) -> Result<()> {
    let mut csv = format!(
        "epoch,train_loss,train_accuracy,{eval_name}_accuracy,{eval_name}_loss,seconds,samples_per_sec\n"
    );
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{:.3},{:.1}\n",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.test_accuracy.unwrap_or(f32::NAN),
            r.test_loss.unwrap_or(f32::NAN),
            r.seconds,
            r.samples_per_sec
        ));
    }
    Ok(checkpoint::write_atomically(path, csv.as_bytes())?)
}

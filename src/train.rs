//! Training and evaluation: seeded shuffles, mini-batches gathered on the device, one submission per
//! step, and the loss read back only when it is reported.
//!
//! Gradient descent comes in three forms through the batch size: full batch (the whole set per step),
//! stochastic (one sample per step) and mini-batch (anything between). Each epoch draws a new
//! permutation from the seed, uploads it once, and walks it in whole batches; the last partial batch is
//! left for a later epoch's shuffle, so every step has the same shape.

use std::rc::Rc;

use web_time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::backend::Backend;
use crate::data::{Prep, Task};
use crate::distributed::{Replicas, replica_seed};
use crate::error::{Error, Result};
use crate::model::{Model, Truth, Workspace};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;

/// Something [`DeviceSplit::upload`] can store: a set's samples in the form the device keeps.
pub trait ToSamples {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores the samples on `b`, byte features to be scaled as `prep` says.
    fn store<B: Backend>(&self, b: &B, prep: &Prep) -> Result<B::Dataset>;
}

impl ToSamples for crate::data::prep::Prepared {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn store<B: Backend>(&self, b: &B, prep: &Prep) -> Result<B::Dataset> {
        b.dataset(&self.samples(prep))
    }
}

/// A split stored on the device.
pub struct DeviceSplit<B: Backend> {
    /// The samples, gathered from by [`Backend::gather`] and [`Backend::gather_targets`].
    pub set: B::Dataset,
    /// Number of samples.
    pub len: usize,
    /// Features per sample.
    pub width: usize,
    /// Float targets per sample (0 for a classification).
    pub target_width: usize,
}

impl<B: Backend> DeviceSplit<B> {
    /// Uploads `split`, byte features to be scaled as `prep` says as batches are gathered.
    pub fn upload(b: &B, split: &impl ToSamples, prep: &Prep) -> Result<Self> {
        Ok(DeviceSplit {
            set: split.store(b, prep)?,
            len: split.len(),
            width: prep.shape.len(),
            target_width: match prep.task {
                Task::Classify => 0,
                _ => prep.outputs(),
            },
        })
    }

    /// Prepares `set` with `prep` and uploads it.
    pub fn from_dataset(b: &B, set: crate::data::Dataset, prep: &Prep) -> Result<Self> {
        Self::upload(b, &prep.prepare(set)?, prep)
    }
}

/// A batch's buffers: inputs, labels and (for binary and regression tasks) float targets.
pub struct Batch<B: Backend> {
    /// `[rows, width]` inputs.
    pub x: B::Tensor,
    /// One label per row.
    pub y: B::Indices,
    /// `[rows, target_width]` targets, when the set has float targets.
    pub t: Option<B::Tensor>,
}

impl<B: Backend> Batch<B> {
    /// Buffers for `rows` samples of `split`.
    pub fn new(b: &B, split: &DeviceSplit<B>, rows: usize) -> Result<Self> {
        Ok(Batch {
            x: b.batch_buffer(&split.set, rows, split.width)?,
            y: b.indices(&vec![0; rows])?,
            t: match split.target_width {
                0 => None,
                w => Some(b.zeros(rows, w)?),
            },
        })
    }

    /// Gathers the rows at `order[offset..]` of `split`.
    pub fn gather(
        &mut self,
        b: &B,
        split: &DeviceSplit<B>,
        order: &B::Indices,
        offset: usize,
    ) -> Result<()> {
        b.gather(&split.set, order, offset, &mut self.x, &mut self.y)?;
        self.gather_targets(b, split, order, offset)
    }

    /// Gathers the samples `first..` of `split` in its own order (`order` the identity), which a
    /// backend may read in place ([`Backend::gather_in_order`]).
    pub fn gather_in_order(
        &mut self,
        b: &B,
        split: &DeviceSplit<B>,
        order: &B::Indices,
        first: usize,
    ) -> Result<()> {
        b.gather_in_order(&split.set, order, first, &mut self.x, &mut self.y)?;
        self.gather_targets(b, split, order, first)
    }

    /// The float targets at `order[offset..]`, when the set has them.
    fn gather_targets(
        &mut self,
        b: &B,
        split: &DeviceSplit<B>,
        order: &B::Indices,
        offset: usize,
    ) -> Result<()> {
        match &mut self.t {
            Some(t) => b.gather_targets(&split.set, order, offset, t),
            None => Ok(()),
        }
    }

    /// What the loss compares with for a model of `task`.
    pub fn truth(&self, task: Task) -> Result<Truth<'_, B>> {
        match (task, &self.t) {
            (Task::Classify, _) => Ok(Truth::Labels(&self.y)),
            (_, Some(t)) => Ok(Truth::Targets(t)),
            (task, None) => Err(Error::Invalid(format!(
                "a {} model needs a set with float targets",
                task.name()
            ))),
        }
    }
}

/// Refuses a batch size outside `1..=train_len`.
pub fn check_batch(batch: usize, train_len: usize) -> Result<()> {
    if batch == 0 || batch > train_len {
        return Err(Error::Invalid(format!(
            "batch size {batch} must be between 1 and the training set's {train_len} samples"
        )));
    }
    Ok(())
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step: 1 is stochastic, the set's size is full-batch gradient descent.
    pub batch: usize,
    /// The update rule, with its initial learning rate.
    pub optimizer: Optimizer,
    /// How the learning rate changes from step to step (with its warm-up).
    pub schedule: LrSchedule,
    /// Seeds the shuffles.
    pub seed: u64,
    /// Stop after this many steps in all, if set (the curriculum counts steps, not epochs).
    pub max_steps: Option<usize>,
    /// Read the running loss back every this many steps (for progress reports).
    pub report_every: usize,
    /// Early stopping: end training once the evaluation split's accuracy has not improved for this many
    /// epochs (needs an evaluation split, which should then be a validation split, not the test set).
    pub patience: Option<usize>,
}

/// What the trainer tells its observer.
#[derive(Clone, Debug)]
pub enum Event {
    /// Mid-epoch progress: the running mean loss and accuracy over the epoch's steps so far.
    Progress {
        /// Epoch, from 1.
        epoch: usize,
        /// Steps done in this epoch.
        step: usize,
        /// Steps in this epoch.
        steps: usize,
        /// Mean training loss so far this epoch.
        loss: f32,
        /// Training accuracy so far this epoch.
        accuracy: f32,
        /// Samples per second so far this epoch.
        samples_per_sec: f64,
    },
    /// An epoch finished and was evaluated.
    Epoch(EpochStats),
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f32,
    /// Training accuracy over the epoch's batches (as they were seen, while the weights moved); 0 for
    /// a regression.
    pub train_accuracy: f32,
    /// Accuracy on the evaluation split after the epoch, if one was given (and the model classifies).
    pub test_accuracy: Option<f32>,
    /// The task's mean loss on the evaluation split after the epoch, if one was given.
    pub test_loss: Option<f32>,
    /// Seconds spent training (evaluation excluded).
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_sec: f64,
}

/// Training steps taken after `epochs` epochs over `train_len` samples: whole batches only (the last
/// partial batch waits for a later shuffle), up to `config.max_steps`.
pub fn steps_after(epochs: usize, train_len: usize, config: &TrainConfig) -> usize {
    (train_len / config.batch.max(1) * epochs).min(config.max_steps.unwrap_or(usize::MAX))
}

/// Where a run starts: from scratch (the default), or where an interrupted run with the same
/// configuration left off.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Start {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training steps taken.
    pub steps_done: u64,
    /// Those epochs' figures.
    pub history: Vec<EpochStats>,
}

/// Trains `model` on `train`, evaluating on `test` after every epoch; `observe` hears progress and sees
/// the model (to save it after an epoch, say).
pub fn train<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    train: &DeviceSplit<B>,
    test: Option<&DeviceSplit<B>>,
    config: &TrainConfig,
    observe: impl FnMut(&Event, &Model<B>),
) -> Result<Vec<EpochStats>> {
    train_from(b, model, train, test, config, Start::default(), observe)
}

/// [`train`] continuing from `start`: the model (with its optimizer state) as it was after
/// `start.epochs_done` epochs. The shuffles of the epochs already done are drawn again and skipped, so
/// every later epoch sees the batches the uninterrupted run saw, and steps count on from
/// `start.steps_done` (dropout masks and the schedule depend on them). Returns the whole history.
///
/// It drives a [`Trainer`] to the end, waiting on its readbacks with `pollster`; a browser drives the
/// same trainer a few steps at a time and awaits them.
pub fn train_from<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    train: &DeviceSplit<B>,
    test: Option<&DeviceSplit<B>>,
    config: &TrainConfig,
    start: Start,
    observe: impl FnMut(&Event, &Model<B>),
) -> Result<Vec<EpochStats>> {
    let solo = Rc::new(Replicas::solo());
    train_replicated(b, model, train, test, config, start, solo, observe)
}

/// [`train_from`] as one of `replicas`: every replica starts from rank 0's model, takes its own share
/// of each step's samples (`config.batch` of them: the global batch is `config.batch` times the
/// number of replicas) and applies the same averaged gradient, so all stay identical. Each rank
/// evaluates the whole evaluation split; only the caller decides who writes what.
#[allow(clippy::too_many_arguments)]
pub fn train_replicated<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    train: &DeviceSplit<B>,
    test: Option<&DeviceSplit<B>>,
    config: &TrainConfig,
    start: Start,
    replicas: Rc<Replicas>,
    mut observe: impl FnMut(&Event, &Model<B>),
) -> Result<Vec<EpochStats>> {
    if config.patience.is_some() && test.is_none() {
        return Err(Error::Invalid(
            "early stopping needs a split to evaluate after every epoch (a validation split)"
                .into(),
        ));
    }
    let mut trainer = Trainer::replicated(b, model, train, config, start, replicas.clone())?;
    pollster::block_on(async {
        replicas.broadcast_model(b, model).await?;
        while !trainer.finished() {
            for event in trainer.advance(b, model, train, test).await? {
                observe(&event, model);
            }
        }
        Ok(trainer.into_history())
    })
}

/// A training run in progress, taken one step at a time. Steps are only queued on the device; the
/// running loss is read back every `report_every` steps and at the end of an epoch, when the model
/// is also evaluated. Those readbacks are awaited, so a caller that must not block (a browser tab) can
/// take a few steps, draw, and come back.
pub struct Trainer<B: Backend> {
    config: TrainConfig,
    ws: Workspace<B>,
    batch: Batch<B>,
    // The epoch's summed batch losses and count of correct predictions.
    totals: B::Tensor,
    order: Vec<u32>,
    device_order: Option<B::Indices>,
    rng: StdRng,
    steps_per_epoch: usize,
    total_steps: usize,
    // The epoch under way (from 1), or the last one finished.
    epoch: usize,
    // Steps taken in that epoch; `None` between epochs.
    step: Option<usize>,
    // Training steps taken in all.
    t: u64,
    // Seconds spent in `advance` this epoch: a browser's pauses between calls do not count.
    trained: f64,
    history: Vec<EpochStats>,
    stopped: bool,
    replicas: Rc<Replicas>,
    // What dropout keys its masks by: the run's seed, mixed with the rank on ranks other than 0.
    draw_seed: u64,
}

impl<B: Backend> Trainer<B> {
    /// A run of `config` over the training split `train`, from `start`.
    pub fn new(
        b: &B,
        model: &Model<B>,
        train: &DeviceSplit<B>,
        config: &TrainConfig,
        start: Start,
    ) -> Result<Self> {
        Self::replicated(b, model, train, config, start, Rc::new(Replicas::solo()))
    }

    /// [`Trainer::new`] as one of `replicas` (see [`train_replicated`]): each epoch's shuffle is the
    /// same on every rank, and step `s` of rank `r` takes the `config.batch` samples at
    /// `(s·size + r)·config.batch`, so the ranks together take what one process with the global batch
    /// would. The remainder that would leave ranks with unequal steps waits for a later shuffle.
    pub fn replicated(
        b: &B,
        model: &Model<B>,
        train: &DeviceSplit<B>,
        config: &TrainConfig,
        start: Start,
        replicas: Rc<Replicas>,
    ) -> Result<Self> {
        let train_len = train.len;
        let ranks = replicas.size();
        config.optimizer.validate()?;
        config.schedule.validate()?;
        check_batch(config.batch, train_len / ranks)?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut order: Vec<u32> = (0..train_len as u32).collect();
        // Draw the shuffles of the epochs already done, so the next epoch gets its own.
        for _ in 0..start.epochs_done.min(config.epochs) {
            order.shuffle(&mut rng);
        }
        Ok(Trainer {
            ws: model.workspace(b, config.batch)?,
            batch: Batch::new(b, train, config.batch)?,
            totals: b.zeros(1, 2)?,
            order,
            device_order: None,
            rng,
            steps_per_epoch: train_len / ranks / config.batch,
            total_steps: steps_after(config.epochs, train_len / ranks, config),
            epoch: start.epochs_done,
            step: None,
            t: start.steps_done,
            trained: 0.0,
            history: start.history,
            stopped: false,
            draw_seed: replica_seed(config.seed, replicas.rank()),
            replicas,
            config: config.clone(),
        })
    }

    /// True once every epoch has run, `max_steps` are taken, or early stopping ended the run.
    pub fn finished(&self) -> bool {
        self.step.is_none()
            && (self.stopped
                || self.epoch >= self.config.epochs
                || self.config.max_steps.is_some_and(|m| self.t as usize >= m))
    }

    /// Training steps taken in all.
    pub fn steps_taken(&self) -> u64 {
        self.t
    }

    /// The figures of every epoch finished.
    pub fn into_history(self) -> Vec<EpochStats> {
        self.history
    }

    /// Queues one training step (starting an epoch first if one is due) and returns what it has to
    /// report: progress every `report_every` steps and at the epoch's last step, then the epoch's
    /// figures when the epoch ends, after evaluating on `test`. Does nothing once [`Trainer::finished`].
    pub async fn advance(
        &mut self,
        b: &B,
        model: &mut Model<B>,
        train: &DeviceSplit<B>,
        test: Option<&DeviceSplit<B>>,
    ) -> Result<Vec<Event>> {
        let entered = Instant::now();
        let events = self.step(b, model, train, test, entered).await;
        self.trained += entered.elapsed().as_secs_f64();
        events
    }

    /// [`Trainer::advance`]'s work; `entered` is when the call began.
    async fn step(
        &mut self,
        b: &B,
        model: &mut Model<B>,
        train: &DeviceSplit<B>,
        test: Option<&DeviceSplit<B>>,
        entered: Instant,
    ) -> Result<Vec<Event>> {
        if self.finished() {
            return Ok(Vec::new());
        }
        let config = &self.config;
        let s = match self.step {
            Some(s) => s,
            None => {
                self.epoch += 1;
                self.order.shuffle(&mut self.rng);
                self.device_order = Some(b.indices(&self.order)?);
                b.write(&mut self.totals, &[0.0, 0.0])?;
                self.trained = 0.0;
                0
            }
        };
        let order = self
            .device_order
            .as_ref()
            .expect("set when the epoch began");
        self.t += 1;
        let t = self.t;
        let ranks = self.replicas.size();
        let offset = (s * ranks + self.replicas.rank()) * config.batch;
        self.batch.gather(b, train, order, offset)?;
        model.forward_train(b, &self.batch.x, &mut self.ws, self.draw_seed, t)?;
        let truth = self.batch.truth(model.task)?;
        model.backward(b, &self.batch.x, truth, &mut self.ws)?;
        self.replicas.average_gradients(b, model).await?;
        let mut optimizer = config.optimizer;
        optimizer.lr *= config
            .schedule
            .factor(t as usize, self.total_steps, self.epoch);
        model.update(b, &optimizer.step(t))?;
        b.tally(
            self.ws.logits(),
            &self.batch.y,
            &self.ws.loss,
            &mut self.totals,
        )?;
        b.submit();
        let steps = s + 1;
        self.step = Some(steps);
        let epoch_ends =
            steps == self.steps_per_epoch || config.max_steps.is_some_and(|m| t as usize >= m);
        let report = steps % config.report_every.max(1) == 0 || steps == self.steps_per_epoch;
        if !report && !epoch_ends {
            return Ok(Vec::new());
        }
        // Every rank's running totals, summed: the figures of the global batches.
        let mut totals = b.read_async(&self.totals).await?;
        self.replicas.comm().all_reduce_sum(&mut totals)?;
        let loss = totals[0] / (steps * ranks) as f32;
        let accuracy = totals[1] / (steps * ranks * config.batch) as f32;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                loss,
                epoch: self.epoch,
                step: steps,
            });
        }
        let seconds = self.trained + entered.elapsed().as_secs_f64();
        let samples_per_sec = (steps * ranks * config.batch) as f64 / seconds;
        let mut events = Vec::new();
        if report {
            events.push(Event::Progress {
                epoch: self.epoch,
                step: steps,
                steps: self.steps_per_epoch,
                loss,
                accuracy,
                samples_per_sec,
            });
        }
        if !epoch_ends {
            return Ok(events);
        }
        self.step = None;
        self.replicas.average_running_statistics(b, model).await?;
        self.replicas.check_in_step(b, model).await?;
        let test = match test {
            Some(split) => Some(self.agreed(evaluate_async(b, model, split, 1000).await?)?),
            None => None,
        };
        let classifies = model.task != Task::Regress;
        let stats = EpochStats {
            epoch: self.epoch,
            train_loss: loss,
            train_accuracy: if classifies { accuracy } else { 0.0 },
            test_accuracy: test.filter(|_| classifies).map(|e| e.accuracy),
            test_loss: test.map(|e| e.loss),
            seconds,
            samples_per_sec,
        };
        self.history.push(stats.clone());
        if config
            .patience
            .is_some_and(|p| epochs_since_best(&self.history) >= p)
        {
            self.stopped = true;
        }
        events.push(Event::Epoch(stats));
        Ok(events)
    }

    /// Rank 0's `evaluation` on every rank: the replicas hold the same model, but a rank on other
    /// hardware may round its evaluation differently, and early stopping must stop every rank at the
    /// same epoch.
    fn agreed(&self, evaluation: Evaluation) -> Result<Evaluation> {
        let mut figures = [evaluation.loss, evaluation.accuracy];
        self.replicas.comm().broadcast(&mut figures)?;
        Ok(Evaluation {
            loss: figures[0],
            accuracy: figures[1],
        })
    }
}

/// How good an epoch was on the evaluation split, higher better: its accuracy, or for a regression
/// minus its loss.
pub fn epoch_score(stats: &EpochStats) -> Option<f32> {
    stats.test_accuracy.or(stats.test_loss.map(|l| -l))
}

/// Epochs since the one with the best evaluation score ([`epoch_score`]; the first such, on ties).
pub fn epochs_since_best(history: &[EpochStats]) -> usize {
    let best = history
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, epoch_score(s)?)))
        .fold(None, |best: Option<(usize, f32)>, (i, a)| match best {
            Some((_, b)) if b >= a => best,
            _ => Some((i, a)),
        });
    best.map_or(0, |(i, _)| history.len() - 1 - i)
}

/// Runs `model` forward over `split` in order, in batches of up to `batch`, and hands each batch's
/// workspace (its outputs inside) and buffers to `visit` with the batch's row count. Buffers are
/// allocated once per batch size.
fn forward_batches<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
    mut visit: impl FnMut(&mut Workspace<B>, &Batch<B>, usize) -> Result<()>,
) -> Result<()> {
    let order = b.indices(&(0..split.len as u32).collect::<Vec<_>>())?;
    let batch = batch.clamp(1, split.len.max(1));
    let mut offset = 0;
    while offset < split.len {
        let rows = batch.min(split.len - offset);
        let mut ws = model.inference_workspace(b, rows)?;
        let mut buffers = Batch::new(b, split, rows)?;
        while offset + rows <= split.len {
            buffers.gather_in_order(b, split, &order, offset)?;
            model.forward(b, &buffers.x, &mut ws)?;
            visit(&mut ws, &buffers, rows)?;
            offset += rows;
        }
    }
    Ok(())
}

/// A model's figures on a split, as the device tallies them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// The task's mean loss per sample.
    pub loss: f32,
    /// The fraction classified right (0 for a regression, whose samples have no class).
    pub accuracy: f32,
}

/// Accuracy of `model` on `split`, by batched inference in batches of up to `batch`: forward passes
/// and the count of correct predictions only (no loss), which accumulates on the device (one tally
/// per batch) and is read back once.
pub fn evaluate<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<f32> {
    let mut totals = b.zeros(1, 2)?;
    let no_loss = b.zeros(1, 1)?;
    forward_batches(b, model, split, batch, |ws, buffers, _| {
        b.tally(ws.logits(), &buffers.y, &no_loss, &mut totals)
    })?;
    Ok(b.read(&totals)?[1] / split.len.max(1) as f32)
}

/// The loss and accuracy of `model` on `split`, awaiting its one readback.
pub async fn evaluate_async<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<Evaluation> {
    let mut totals = b.zeros(1, 2)?;
    let n = split.len.max(1) as f32;
    forward_batches(b, model, split, batch, |ws, buffers, rows| {
        model.loss_of_outputs(b, buffers.truth(model.task)?, ws)?;
        // Each batch's mean loss weighted by its share of the split: their sum is the split's mean.
        b.scale(rows as f32 / n, &mut ws.loss)?;
        b.tally(ws.logits(), &buffers.y, &ws.loss, &mut totals)
    })?;
    let totals = b.read_async(&totals).await?;
    Ok(Evaluation {
        loss: totals[0],
        accuracy: totals[1] / n,
    })
}

/// The raw outputs `[N, outputs]` of `model` on every sample of `split`, in order, by batched
/// inference in batches of up to `batch` (logits for classifiers, standardised values for a
/// regression: see [`Prep::outputs_to_targets`]).
pub fn outputs<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(split.len * model.spec.outputs());
    forward_batches(b, model, split, batch, |ws, _, _| {
        out.extend(b.read(ws.logits())?);
        Ok(())
    })?;
    Ok(out)
}

/// The outputs of `model` for `rows` samples of raw `inputs` (`[rows, width]` floats already scaled
/// as `prep` says: see [`Prep::inputs`]), in batches of up to `batch`: logits, or regression values
/// standardised as the model learnt them.
pub fn outputs_of_inputs<B: Backend>(
    b: &B,
    model: &Model<B>,
    inputs: &[f32],
    width: usize,
    batch: usize,
) -> Result<Vec<f32>> {
    if width == 0 || !inputs.len().is_multiple_of(width) {
        return Err(Error::shape(format!(
            "{} input values are not whole samples of {width}",
            inputs.len()
        )));
    }
    let mut out = Vec::with_capacity(inputs.len() / width * model.spec.outputs());
    for chunk in inputs.chunks(batch.max(1) * width) {
        let rows = chunk.len() / width;
        let mut ws = model.inference_workspace(b, rows)?;
        model.forward(b, &b.tensor(rows, width, chunk)?, &mut ws)?;
        out.extend(b.read(ws.logits())?);
    }
    Ok(out)
}

/// The class probabilities (the softmax of the logits) that `model` gives one image of pixel bytes,
/// scaled as `prep` says, as in training.
pub async fn class_probabilities<B: Backend>(
    b: &B,
    model: &Model<B>,
    prep: &Prep,
    pixels: &[u8],
) -> Result<Vec<f32>> {
    let width = prep.shape.len();
    if pixels.len() != width {
        return Err(Error::Invalid(format!(
            "an image of {} has {width} pixels, not {}",
            prep.shape,
            pixels.len()
        )));
    }
    let x = prep.inputs(&crate::data::Features::Bytes(pixels.to_vec()));
    let mut ws = model.inference_workspace(b, 1)?;
    model.forward(b, &b.tensor(1, width, &x)?, &mut ws)?;
    let mut probs = b.zeros(1, model.spec.outputs())?;
    b.softmax(ws.logits(), &mut probs)?;
    b.read_async(&probs).await
}

/// The predicted class of every sample of `split` (the arg-max of the logits, or for one output the
/// sign of the logit), by batched inference in batches of up to `batch`.
pub fn predict<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<Vec<usize>> {
    let out = outputs(b, model, split, batch)?;
    Ok(
        crate::data::metrics::predicted_classes(&out, model.spec.outputs())
            .into_iter()
            .map(|c| c as usize)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{EpochStats, epochs_since_best};

    fn epochs(accuracies: &[Option<f32>]) -> Vec<EpochStats> {
        accuracies
            .iter()
            .enumerate()
            .map(|(i, &a)| EpochStats {
                epoch: i + 1,
                train_loss: 0.0,
                train_accuracy: 0.0,
                test_accuracy: a,
                test_loss: None,
                seconds: 0.0,
                samples_per_sec: 0.0,
            })
            .collect()
    }

    #[test]
    fn epochs_since_best_counts_from_the_first_best() {
        assert_eq!(epochs_since_best(&epochs(&[])), 0);
        assert_eq!(epochs_since_best(&epochs(&[Some(0.5)])), 0);
        assert_eq!(
            epochs_since_best(&epochs(&[Some(0.5), Some(0.7), Some(0.6)])),
            1
        );
        // A tie does not count as an improvement.
        assert_eq!(
            epochs_since_best(&epochs(&[Some(0.7), Some(0.7), Some(0.7)])),
            2
        );
        assert_eq!(
            epochs_since_best(&epochs(&[Some(0.1), Some(0.2), Some(0.3)])),
            0
        );
        assert_eq!(epochs_since_best(&epochs(&[None, None])), 0);
    }
}

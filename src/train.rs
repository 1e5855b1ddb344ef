//! Training and evaluation: seeded shuffles, mini-batches gathered on the device, one submission per
//! step, and the loss read back only when it is reported.
//!
//! Gradient descent comes in three forms through the batch size: full batch (the whole set per step),
//! stochastic (one sample per step) and mini-batch (anything between). Each epoch draws a new
//! permutation from the seed, uploads it once, and walks it in whole batches; the last partial batch is
//! left for a later epoch's shuffle, so every step has the same shape.

use web_time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::mnist::{PIXELS, Split};
use crate::model::{Model, Workspace};
use crate::optim::Optimizer;
use crate::schedule::LrSchedule;

/// A split stored on the device.
pub struct DeviceSplit<B: Backend> {
    /// The images and labels, gathered from by [`Backend::gather`].
    pub set: B::Dataset,
    /// Number of samples.
    pub len: usize,
}

/// How a pixel byte becomes a model input: `x = byte·scale + shift`. Checkpoints record it, so a model
/// is evaluated on inputs scaled as in training.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputScale {
    /// Multiplies the byte.
    pub scale: f32,
    /// Added after.
    pub shift: f32,
}

impl InputScale {
    /// MNIST's pixels in [0, 1] when `normalise`, else kept as 0–255.
    pub fn mnist(normalise: bool) -> Self {
        InputScale {
            scale: if normalise { 1.0 / 255.0 } else { 1.0 },
            shift: 0.0,
        }
    }

    /// The input for one pixel byte.
    pub fn apply(&self, byte: u8) -> f32 {
        f32::from(byte) * self.scale + self.shift
    }
}

impl<B: Backend> DeviceSplit<B> {
    /// Uploads `split`, to be scaled by `input` as batches are gathered.
    pub fn upload(b: &B, split: &Split, input: InputScale) -> Result<Self> {
        Ok(DeviceSplit {
            set: b.dataset(
                &split.images,
                &split.labels,
                PIXELS,
                input.scale,
                input.shift,
            )?,
            len: split.len(),
        })
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
    /// Training accuracy over the epoch's batches (as they were seen, while the weights moved).
    pub train_accuracy: f32,
    /// Accuracy on the evaluation split after the epoch, if one was given.
    pub test_accuracy: Option<f32>,
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
    mut observe: impl FnMut(&Event, &Model<B>),
) -> Result<Vec<EpochStats>> {
    if config.patience.is_some() && test.is_none() {
        return Err(Error::Invalid(
            "early stopping needs a split to evaluate after every epoch (a validation split)"
                .into(),
        ));
    }
    let mut trainer = Trainer::new(b, model, train.len, config, start)?;
    pollster::block_on(async {
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
    x: B::Tensor,
    y: B::Indices,
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
}

impl<B: Backend> Trainer<B> {
    /// A run of `config` over a training split of `train_len` samples, from `start`.
    pub fn new(
        b: &B,
        model: &Model<B>,
        train_len: usize,
        config: &TrainConfig,
        start: Start,
    ) -> Result<Self> {
        config.optimizer.validate()?;
        config.schedule.validate()?;
        check_batch(config.batch, train_len)?;
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut order: Vec<u32> = (0..train_len as u32).collect();
        // Draw the shuffles of the epochs already done, so the next epoch gets its own.
        for _ in 0..start.epochs_done.min(config.epochs) {
            order.shuffle(&mut rng);
        }
        Ok(Trainer {
            ws: model.workspace(b, config.batch)?,
            x: b.zeros(config.batch, PIXELS)?,
            y: b.indices(&vec![0; config.batch])?,
            totals: b.zeros(1, 2)?,
            order,
            device_order: None,
            rng,
            steps_per_epoch: train_len / config.batch,
            total_steps: steps_after(config.epochs, train_len, config),
            epoch: start.epochs_done,
            step: None,
            t: start.steps_done,
            trained: 0.0,
            history: start.history,
            stopped: false,
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
        b.gather(
            &train.set,
            order,
            s * config.batch,
            &mut self.x,
            &mut self.y,
        )?;
        model.forward_train(b, &self.x, &mut self.ws, config.seed, t)?;
        model.backward(b, &self.x, &self.y, &mut self.ws)?;
        let mut optimizer = config.optimizer;
        optimizer.lr *= config
            .schedule
            .factor(t as usize, self.total_steps, self.epoch);
        model.update(b, &optimizer.step(t))?;
        b.tally(self.ws.logits(), &self.y, &self.ws.loss, &mut self.totals)?;
        b.submit();
        let steps = s + 1;
        self.step = Some(steps);
        let epoch_ends =
            steps == self.steps_per_epoch || config.max_steps.is_some_and(|m| t as usize >= m);
        let report = steps % config.report_every.max(1) == 0 || steps == self.steps_per_epoch;
        if !report && !epoch_ends {
            return Ok(Vec::new());
        }
        let totals = b.read_async(&self.totals).await?;
        let loss = totals[0] / steps as f32;
        let accuracy = totals[1] / (steps * config.batch) as f32;
        if !loss.is_finite() {
            return Err(Error::Diverged {
                loss,
                epoch: self.epoch,
                step: steps,
            });
        }
        let seconds = self.trained + entered.elapsed().as_secs_f64();
        let samples_per_sec = (steps * config.batch) as f64 / seconds;
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
        let test_accuracy = match test {
            Some(split) => Some(evaluate_async(b, model, split, 1000).await?),
            None => None,
        };
        let stats = EpochStats {
            epoch: self.epoch,
            train_loss: loss,
            train_accuracy: accuracy,
            test_accuracy,
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
}

/// Epochs since the one with the best evaluation accuracy (the first such, on ties).
pub fn epochs_since_best(history: &[EpochStats]) -> usize {
    let best = history
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.test_accuracy?)))
        .fold(None, |best: Option<(usize, f32)>, (i, a)| match best {
            Some((_, b)) if b >= a => best,
            _ => Some((i, a)),
        });
    best.map_or(0, |(i, _)| history.len() - 1 - i)
}

/// Runs `model` forward over `split` in order, in batches of up to `batch`, and hands each batch's
/// workspace (logits inside) and labels to `visit`. Buffers are allocated once per batch size.
fn forward_batches<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
    mut visit: impl FnMut(&Workspace<B>, &B::Indices) -> Result<()>,
) -> Result<()> {
    let order = b.indices(&(0..split.len as u32).collect::<Vec<_>>())?;
    let batch = batch.clamp(1, split.len.max(1));
    let mut offset = 0;
    while offset < split.len {
        let rows = batch.min(split.len - offset);
        let mut ws = model.workspace(b, rows)?;
        let mut x = b.zeros(rows, PIXELS)?;
        let mut y = b.indices(&vec![0; rows])?;
        while offset + rows <= split.len {
            b.gather(&split.set, &order, offset, &mut x, &mut y)?;
            model.forward(b, &x, &mut ws)?;
            visit(&ws, &y)?;
            offset += rows;
        }
    }
    Ok(())
}

/// Accuracy of `model` on `split`, by batched inference in batches of up to `batch`; the count of
/// correct predictions accumulates on the device (one tally per batch) and is read back once.
pub fn evaluate<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<f32> {
    pollster::block_on(evaluate_async(b, model, split, batch))
}

/// [`evaluate`], awaiting its one readback.
pub async fn evaluate_async<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<f32> {
    let no_loss = b.zeros(1, 1)?;
    let mut totals = b.zeros(1, 2)?;
    forward_batches(b, model, split, batch, |ws, labels| {
        b.tally(ws.logits(), labels, &no_loss, &mut totals)
    })?;
    let correct = b.read_async(&totals).await?[1];
    Ok(correct / split.len.max(1) as f32)
}

/// The class probabilities (the softmax of the logits) that `model` gives one image of [`PIXELS`]
/// bytes, scaled by `input` as in training.
pub async fn class_probabilities<B: Backend>(
    b: &B,
    model: &Model<B>,
    input: InputScale,
    pixels: &[u8],
) -> Result<Vec<f32>> {
    if pixels.len() != PIXELS {
        return Err(Error::Invalid(format!(
            "an image has {PIXELS} pixels (28×28), not {}",
            pixels.len()
        )));
    }
    let x: Vec<f32> = pixels.iter().map(|&p| input.apply(p)).collect();
    let mut ws = model.workspace(b, 1)?;
    model.forward(b, &b.tensor(1, PIXELS, &x)?, &mut ws)?;
    let mut probs = b.zeros(1, model.spec.outputs())?;
    b.softmax(ws.logits(), &mut probs)?;
    b.read_async(&probs).await
}

/// The predicted class (arg-max of the logits) of every sample of `split`, by batched inference in
/// batches of up to `batch`.
pub fn predict<B: Backend>(
    b: &B,
    model: &Model<B>,
    split: &DeviceSplit<B>,
    batch: usize,
) -> Result<Vec<usize>> {
    let classes = model.spec.outputs();
    let mut predictions = Vec::with_capacity(split.len);
    forward_batches(b, model, split, batch, |ws, _| {
        let logits = b.read(ws.logits())?;
        predictions.extend(logits.chunks_exact(classes).map(crate::cpu::argmax));
        Ok(())
    })?;
    Ok(predictions)
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

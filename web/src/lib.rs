//! nabla in a browser tab: the library's GPU backend on the browser's WebGPU, driven from JavaScript.
//!
//! The same kernels, layers and [`Trainer`] as the native tool. A browser may not block on the GPU, so
//! every call that reads something back returns a promise: the trainer queues steps and awaits its
//! readbacks, and the page takes a few steps, draws its chart and comes back.
//!
//! A [`Session`] is used by one call at a time: the page waits for each promise before the next call,
//! and a call made while another is under way is refused with an error, never a panic.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Promise, Uint8Array};
use nabla::GpuBackend;
use nabla::checkpoint;
use nabla::data::Prep;
use nabla::mnist::{FILES, Split};
use nabla::model::Model;
use nabla::model::presets::{self, Preset};
use nabla::train::{DeviceSplit, Event, Start, Trainer, class_probabilities};
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console)]
    fn error(message: &str);
}

/// Sends Rust panics to the browser console, where the page's error handler shows them.
#[wasm_bindgen(start)]
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| error(&format!("nabla panicked: {info}"))));
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// MNIST as the page fetched it: the four IDX files, checked and parsed once.
#[wasm_bindgen]
pub struct Mnist {
    train: Split,
    test: Split,
}

#[wasm_bindgen]
impl Mnist {
    /// Parses the four IDX files' bytes; a wrong or truncated file is an error that names it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        train_images: &[u8],
        train_labels: &[u8],
        test_images: &[u8],
        test_labels: &[u8],
    ) -> Result<Mnist, JsValue> {
        Ok(Mnist {
            train: Split::from_idx(FILES[0], train_images, FILES[1], train_labels)
                .map_err(js_error)?,
            test: Split::from_idx(FILES[2], test_images, FILES[3], test_labels)
                .map_err(js_error)?,
        })
    }

    /// Images in the training split.
    #[wasm_bindgen(getter, js_name = trainLen)]
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// Images in the test split.
    #[wasm_bindgen(getter, js_name = testLen)]
    pub fn test_len(&self) -> usize {
        self.test.len()
    }
}

/// What a run trains, on how much data. Zero means "the preset's own value" or "all of it".
#[wasm_bindgen]
#[derive(Clone, Debug)]
pub struct Options {
    preset: String,
    /// Seeds the weights and the shuffles.
    pub seed: u32,
    /// Training images used (the first ones).
    #[wasm_bindgen(js_name = trainImages)]
    pub train_images: usize,
    /// Test images evaluated after every epoch.
    #[wasm_bindgen(js_name = testImages)]
    pub test_images: usize,
    /// Passes over the training images.
    pub epochs: usize,
    /// Read the loss back every this many steps.
    #[wasm_bindgen(js_name = reportEvery)]
    pub report_every: usize,
}

#[wasm_bindgen]
impl Options {
    /// The preset's full run: every image, its epochs, a loss readback every 20 steps.
    #[wasm_bindgen(constructor)]
    pub fn new(preset: String) -> Options {
        Options {
            preset,
            seed: 42,
            train_images: 0,
            test_images: 0,
            epochs: 0,
            report_every: 20,
        }
    }
}

/// Every preset's name.
#[wasm_bindgen(js_name = presetNames)]
pub fn preset_names() -> Vec<String> {
    presets::NAMES.iter().map(|n| n.to_string()).collect()
}

struct State {
    b: GpuBackend,
    model: Model<GpuBackend>,
    trainer: Trainer<GpuBackend>,
    train: DeviceSplit<GpuBackend>,
    test: DeviceSplit<GpuBackend>,
    input: Prep,
    preset: Preset,
}

/// A training run on the browser's GPU.
#[wasm_bindgen]
pub struct Session {
    slot: Slot,
    adapter: String,
    architecture: String,
    preset: &'static str,
}

/// Where a session keeps its state between calls: empty while a call has it.
type Slot = Rc<RefCell<Option<State>>>;

/// Runs `job` on the state in `slot`, taken out for the duration so that no borrow is held across an
/// await; a call made meanwhile finds the slot empty and is refused.
fn with_state<F>(slot: &Slot, job: F) -> Promise
where
    F: AsyncFnOnce(&mut State) -> nabla::Result<JsValue> + 'static,
{
    let slot = slot.clone();
    future_to_promise(async move {
        let mut state = slot
            .borrow_mut()
            .take()
            .ok_or_else(|| js_error("the session is busy with another call"))?;
        let result = job(&mut state).await;
        *slot.borrow_mut() = Some(state);
        result.map_err(js_error)
    })
}

/// The first `n` images of `split` (all of them when `n` is 0).
fn first(split: &Split, n: usize) -> Split {
    split
        .clone()
        .truncated(if n == 0 { split.len() } else { n })
}

impl State {
    async fn open(mnist_train: Split, mnist_test: Split, options: Options) -> nabla::Result<State> {
        let preset = presets::named(&options.preset)?;
        let mut config = preset.config(u64::from(options.seed))?;
        if options.epochs > 0 {
            (config.epochs, config.max_steps) = (options.epochs, None);
        }
        config.report_every = options.report_every.max(1);
        let b = GpuBackend::open().await?;
        let spec = preset.spec()?;
        let model = Model::new(
            &b,
            spec,
            preset.init,
            u64::from(options.seed),
            config.optimizer.state_count(),
        )?;
        let input = Prep::mnist(true);
        let train = DeviceSplit::upload(&b, &mnist_train, &input)?;
        let test = DeviceSplit::upload(&b, &mnist_test, &input)?;
        let trainer = Trainer::new(&b, &model, &train, &config, Start::default())?;
        Ok(State {
            b,
            model,
            trainer,
            train,
            test,
            input,
            preset,
        })
    }

    /// The adapter, for the page: browsers may keep its name to themselves (the page adds the
    /// vendor and architecture they do tell).
    fn adapter(&self) -> String {
        let ctx = self.b.context();
        let name = Some(ctx.info.name.as_str())
            .filter(|n| !n.is_empty())
            .map(|n| format!("{n}, "))
            .unwrap_or_default();
        format!(
            "{name}{:?}, {:?}, max storage binding {} MiB",
            ctx.info.backend,
            ctx.info.device_type,
            ctx.limits.max_storage_buffer_binding_size >> 20
        )
    }
}

#[wasm_bindgen]
impl Session {
    /// Opens the browser's GPU, uploads the chosen images and builds the preset's model; resolves to
    /// a `Session`, or rejects with what went wrong (no WebGPU, an unknown preset, data over the
    /// device's limits).
    pub fn start(mnist: &Mnist, options: &Options) -> Promise {
        let train = first(&mnist.train, options.train_images);
        let test = first(&mnist.test, options.test_images);
        let options = options.clone();
        future_to_promise(async move {
            let state = State::open(train, test, options).await.map_err(js_error)?;
            Ok(Session {
                adapter: state.adapter(),
                architecture: state.model.spec.describe(),
                preset: state.preset.name,
                slot: Rc::new(RefCell::new(Some(state))),
            }
            .into())
        })
    }

    /// The adapter the session runs on.
    #[wasm_bindgen(getter)]
    pub fn adapter(&self) -> String {
        self.adapter.clone()
    }

    /// The model, as a layer list.
    #[wasm_bindgen(getter)]
    pub fn architecture(&self) -> String {
        self.architecture.clone()
    }

    /// The preset's name.
    #[wasm_bindgen(getter)]
    pub fn preset(&self) -> String {
        self.preset.to_string()
    }

    /// Runs up to `steps` training steps, stopping early at the first report; resolves to JSON:
    /// `reports` (`{"kind":"progress",…}` every `reportEvery` steps, `{"kind":"epoch",…}` after each
    /// epoch), `steps` taken in all and whether training has `finished`.
    pub fn train(&self, steps: usize) -> Promise {
        with_state(&self.slot, async move |s: &mut State| {
            let mut reports = Vec::new();
            for _ in 0..steps {
                if s.trainer.finished() {
                    break;
                }
                let events = s
                    .trainer
                    .advance(&s.b, &mut s.model, &s.train, Some(&s.test))
                    .await?;
                let t = s.trainer.steps_taken();
                reports.extend(events.iter().map(|event| report(event, t)));
                if !events.is_empty() {
                    break;
                }
            }
            let answer = json!({
                "reports": reports,
                "steps": s.trainer.steps_taken(),
                "finished": s.trainer.finished(),
            });
            Ok(JsValue::from_str(&answer.to_string()))
        })
    }

    /// The ten class probabilities for one 28×28 image of pixel bytes (ink 255 on 0, as MNIST).
    pub fn classify(&self, pixels: Vec<u8>) -> Promise {
        with_state(&self.slot, async move |s: &mut State| {
            let probs = class_probabilities(&s.b, &s.model, &s.input, &pixels).await?;
            Ok(js_sys::Float32Array::from(probs.as_slice()).into())
        })
    }

    /// The model as a nabla checkpoint (safetensors), the file `nabla eval --model` reads.
    pub fn checkpoint(&self) -> Promise {
        with_state(&self.slot, async |s: &mut State| {
            let bytes = checkpoint::to_bytes(&s.b, &s.model, &s.input).await?;
            Ok(Uint8Array::from(bytes.as_slice()).into())
        })
    }
}

/// One trainer event as the page reads it; `step` counts steps from the start of the run.
fn report(event: &Event, step: u64) -> serde_json::Value {
    match event {
        Event::Progress {
            epoch,
            step: in_epoch,
            steps,
            loss,
            accuracy,
            samples_per_sec,
        } => json!({
            "kind": "progress",
            "step": step,
            "epoch": epoch,
            "stepInEpoch": in_epoch,
            "stepsPerEpoch": steps,
            "loss": loss,
            "accuracy": accuracy,
            "samplesPerSec": samples_per_sec,
        }),
        Event::Epoch(stats) => json!({
            "kind": "epoch",
            "step": step,
            "epoch": stats.epoch,
            "loss": stats.train_loss,
            "accuracy": stats.train_accuracy,
            "testAccuracy": stats.test_accuracy,
            "seconds": stats.seconds,
            "samplesPerSec": stats.samples_per_sec,
        }),
    }
}

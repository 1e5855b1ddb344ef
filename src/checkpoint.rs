//! Saving and loading models as safetensors that any tool can read.
//!
//! Format 2 (this version) stores each layer's tensors as PyTorch does, named `{layer index}.{name}`
//! so that a `torch.nn.Sequential` of the same layers loads them with `load_state_dict`: a dense layer's
//! `weight` is `[out, in]` and its `bias` `[out]`, a batch norm's `weight`, `bias`, `running_mean`,
//! `running_var` and `num_batches_tracked`. The metadata carries what `eval` and `predict` need: the
//! architecture, the input shape and scaling, the class count and the nabla version. Format 1 files
//! (`dense.{i}.weight` as `[in, out]`, bias `[1, out]`, architecture only) still load.
//!
//! Files are written to a temporary name beside the target and renamed into place, so a crash never
//! leaves a half-written model where a good one was.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::backend::{Backend, Shaped};
use crate::data::Prep;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::Values;
use crate::model::{Model, ModelSpec};
use crate::train::{EpochStats, Start};

/// The checkpoint format this version writes.
pub const FORMAT: u32 = 2;

const FORMAT_KEY: &str = "nabla.format";
const ARCHITECTURE: &str = "nabla.architecture";
const INPUT_SHAPE: &str = "nabla.input_shape";
const INPUT_SCALE: &str = "nabla.input_scale";
const INPUT_SHIFT: &str = "nabla.input_shift";
const CLASSES: &str = "nabla.classes";
const VERSION: &str = "nabla.version";
const DATA: &str = "nabla.data";
const RESUME: &str = "nabla.resume";

pub(crate) fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_with(path, bytes, |from, to| std::fs::rename(from, to))
}

/// [`write_atomically`] with the final rename done by `rename` (a test makes it fail). On any failure
/// the temporary file is removed and whatever was at `path` is left as it was.
fn write_atomically_with(
    path: &Path,
    bytes: &[u8],
    rename: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Unique per process and per call, so that concurrent saves never share a temporary file.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}-{call}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        rename(&tmp, path).map_err(io(path))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A loaded checkpoint.
pub struct Saved<B: Backend> {
    /// The model, ready for inference.
    pub model: Model<B>,
    /// How raw samples become the model's inputs and its outputs answers (task, scaling, class or
    /// target names); `None` for a format 1 file, which did not say. Files written before nabla kept
    /// it whole are read as image classifiers with their recorded input scaling.
    pub prep: Option<Prep>,
    /// The nabla version that wrote the file, when it said.
    pub version: Option<String>,
    /// The file's format.
    pub format: u32,
}

/// A tensor to write: name, shape, little-endian bytes and type.
pub(crate) type Entry = (String, Vec<usize>, Vec<u8>, Dtype);

/// Saves `model`'s parameters (PyTorch's layout) and what using it needs (`prep`: the task, input
/// scaling, names) to `path`.
pub fn save<B: Backend>(b: &B, model: &Model<B>, prep: &Prep, path: &Path) -> Result<()> {
    let bytes = pollster::block_on(to_bytes(b, model, prep))?;
    write_atomically(path, &bytes)
}

/// The file [`save`] writes, as bytes (a browser offers them as a download).
pub async fn to_bytes<B: Backend>(b: &B, model: &Model<B>, prep: &Prep) -> Result<Vec<u8>> {
    prep.check_model(&model.spec)?;
    let tensors = model_tensors(b, model).await?;
    serialize(Path::new("model"), tensors, model_metadata(model, prep))
}

/// Every layer's tensors, named `{layer index}.{name}`.
async fn model_tensors<B: Backend>(b: &B, model: &Model<B>) -> Result<Vec<Entry>> {
    let mut tensors = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        let mut values = Vec::new();
        for t in layer.saved_tensors() {
            values.push(b.read_async(t).await?);
        }
        for t in layer.export(&values) {
            let (bytes, dtype) = match &t.values {
                Values::F32(v) => (bytemuck::cast_slice(v).to_vec(), Dtype::F32),
                Values::I64(v) => (bytemuck::cast_slice(v).to_vec(), Dtype::I64),
            };
            tensors.push((format!("{i}.{}", t.name), t.shape, bytes, dtype));
        }
    }
    Ok(tensors)
}

fn model_metadata<B: Backend>(model: &Model<B>, prep: &Prep) -> HashMap<String, String> {
    let (scale, shift) = prep.byte_scale();
    HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (ARCHITECTURE.to_string(), model.spec.describe()),
        (INPUT_SHAPE.to_string(), model.spec.input.to_string()),
        (INPUT_SCALE.to_string(), scale.to_string()),
        (INPUT_SHIFT.to_string(), shift.to_string()),
        (DATA.to_string(), prep.to_json()),
        (CLASSES.to_string(), model.spec.outputs().to_string()),
        (VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ])
}

fn write(path: &Path, tensors: Vec<Entry>, metadata: HashMap<String, String>) -> Result<()> {
    write_atomically(path, &serialize(path, tensors, metadata)?)
}

/// The safetensors bytes of `tensors` and `metadata`; `path` names the file in errors.
pub(crate) fn serialize(
    path: &Path,
    tensors: Vec<Entry>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, shape, bytes, dtype)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| data_error(path, format!("cannot describe tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| data_error(path, format!("cannot serialise the model: {e}")))
}

/// The f32 values of tensor `name`'s little-endian `data`, refused (naming the file, the tensor and the
/// index) where one is not finite: parameters saved from a diverged run cannot be used.
pub(crate) fn finite_f32(path: &Path, name: &str, data: &[u8]) -> Result<Vec<f32>> {
    let values: Vec<f32> = bytemuck::pod_collect_to_vec(data);
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(data_error(
            path,
            format!(
                "tensor {name} holds {} at index {i}: a model with non-finite parameters cannot be \
                 used (was it saved from a diverged run?)",
                values[i]
            ),
        )),
        None => Ok(values),
    }
}

/// What continuing an interrupted run needs besides the model: the command line that started it
/// (which rebuilds its data, model and configuration) and where it stood.
#[derive(Clone, Debug, PartialEq)]
pub struct Resume {
    /// The arguments of the command that started the run, program name first.
    pub args: Vec<String>,
    /// Epochs and steps done, with their figures.
    pub start: Start,
    /// Processes that trained together (data-parallel replicas; 1 for a single process): a resumed
    /// run must have as many, since the steps it skips depend on it.
    pub ranks: usize,
}

/// Saves a checkpoint that [`load_resumable`] continues from: the model as [`save`] writes it, every
/// parameter's optimizer state (`optimizer.{k}.{0,1}`, parameters in model order) and `resume` as JSON
/// metadata.
pub fn save_resumable<B: Backend>(
    b: &B,
    model: &Model<B>,
    prep: &Prep,
    resume: &Resume,
    path: &Path,
) -> Result<()> {
    prep.check_model(&model.spec)?;
    let mut tensors = pollster::block_on(model_tensors(b, model))?;
    for (k, p) in model.params().enumerate() {
        for (j, t) in p.state().iter().enumerate() {
            let values = b.read(t)?;
            tensors.push((
                format!("optimizer.{k}.{j}"),
                vec![t.rows(), t.cols()],
                bytemuck::cast_slice(&values).to_vec(),
                Dtype::F32,
            ));
        }
    }
    let history: Vec<serde_json::Value> = resume
        .start
        .history
        .iter()
        .map(|e| {
            serde_json::json!({
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "train_accuracy": e.train_accuracy,
                "test_accuracy": e.test_accuracy,
                "test_loss": e.test_loss,
                "seconds": e.seconds,
                "samples_per_sec": e.samples_per_sec,
            })
        })
        .collect();
    let state = serde_json::json!({
        "args": resume.args,
        "epochs_done": resume.start.epochs_done,
        "steps_done": resume.start.steps_done,
        "ranks": resume.ranks,
        "history": history,
    });
    let mut metadata = model_metadata(model, prep);
    metadata.insert(RESUME.to_string(), state.to_string());
    write(path, tensors, metadata)
}

/// Loads a checkpoint written by [`save_resumable`]: the model with its optimizer state (room for
/// `optimizer_states` tensors per parameter, as the run's optimizer needs), and where the run stood.
pub fn load_resumable<B: Backend>(
    b: &B,
    path: &Path,
    optimizer_states: usize,
) -> Result<(Saved<B>, Resume)> {
    let resume = read_resume(path)?;
    let mut saved = load(b, path, optimizer_states)?;
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| data_error(path, format!("not a safetensors file: {e}")))?;
    for (k, p) in saved.model.params_mut().enumerate() {
        for (j, t) in p.state_mut().iter_mut().enumerate() {
            let name = format!("optimizer.{k}.{j}");
            let view = file
                .tensor(&name)
                .map_err(|e| data_error(path, format!("tensor {name}: {e}")))?;
            let want = [t.rows(), t.cols()];
            if view.dtype() != Dtype::F32 || view.shape() != want {
                return Err(data_error(
                    path,
                    format!(
                        "tensor {name} is {:?} {:?}, but this run's optimizer keeps F32 {want:?}",
                        view.dtype(),
                        view.shape()
                    ),
                ));
            }
            b.write(t, &bytemuck::pod_collect_to_vec::<u8, f32>(view.data()))?;
        }
    }
    Ok((saved, resume))
}

/// The [`Resume`] record of a checkpoint written by [`save_resumable`], without loading the model.
pub fn read_resume(path: &Path) -> Result<Resume> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| data_error(path, format!("not a safetensors file: {e}")))?;
    let text = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(RESUME))
        .ok_or_else(|| {
            data_error(
                path,
                "no training state: not written by a training run (resume from the `.resume` file \
                 beside the model)",
            )
        })?;
    let bad = |what: &str| data_error(path, format!("unreadable training state: {what}"));
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
    let count = |key: &str| v[key].as_u64().ok_or_else(|| bad(key));
    let float = |e: &serde_json::Value, key: &str| e[key].as_f64().unwrap_or(f64::NAN);
    let args = v["args"]
        .as_array()
        .ok_or_else(|| bad("args"))?
        .iter()
        .map(|a| a.as_str().map(String::from).ok_or_else(|| bad("args")))
        .collect::<Result<Vec<_>>>()?;
    let history = v["history"]
        .as_array()
        .ok_or_else(|| bad("history"))?
        .iter()
        .map(|e| {
            Ok(EpochStats {
                epoch: e["epoch"].as_u64().ok_or_else(|| bad("history"))? as usize,
                train_loss: float(e, "train_loss") as f32,
                train_accuracy: float(e, "train_accuracy") as f32,
                test_accuracy: e["test_accuracy"].as_f64().map(|a| a as f32),
                test_loss: e["test_loss"].as_f64().map(|a| a as f32),
                seconds: float(e, "seconds"),
                samples_per_sec: float(e, "samples_per_sec"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Resume {
        args,
        start: Start {
            epochs_done: count("epochs_done")? as usize,
            steps_done: count("steps_done")?,
            history,
        },
        // Written before data-parallel training existed: one process.
        ranks: v.get("ranks").map_or(Ok(1), |_| count("ranks"))? as usize,
    })
}

/// Loads a model saved by [`save`] (or by a nabla of format 1), with room for `optimizer_states` state
/// tensors per parameter.
pub fn load<B: Backend>(b: &B, path: &Path, optimizer_states: usize) -> Result<Saved<B>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| data_error(path, format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| data_error(path, format!("unreadable safetensors header: {e}")))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let arch = meta.get(ARCHITECTURE).ok_or_else(|| {
        data_error(
            path,
            format!("no `{ARCHITECTURE}` metadata: not a nabla model"),
        )
    })?;
    let spec = ModelSpec::parse(arch).map_err(|e| data_error(path, e.to_string()))?;
    let format = match meta.get(FORMAT_KEY) {
        None => 1,
        Some(v) => match v.parse::<u32>() {
            Ok(f @ 1..=FORMAT) => f,
            _ => {
                return Err(data_error(
                    path,
                    format!(
                        "checkpoint format `{v}` is newer than this nabla reads ({FORMAT}); \
                         upgrade nabla"
                    ),
                ));
            }
        },
    };
    // The file's own size bounds what its architecture may allocate: a corrupt header cannot ask for
    // more memory than the file holds values.
    let parameters = spec
        .parameter_count()
        .map_err(|e| data_error(path, e.to_string()))?;
    let stored = bytes.len() as u64 / 4;
    if parameters > stored {
        return Err(data_error(
            path,
            format!(
                "`{arch}` has {parameters} parameters, but the file holds at most {stored} values"
            ),
        ));
    }
    let number = |key: &str| -> Result<Option<f32>> {
        meta.get(key)
            .map(|v| {
                v.parse::<f32>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        data_error(path, format!("metadata {key} = `{v}` is not a number"))
                    })
            })
            .transpose()
    };
    let prep = match (number(INPUT_SCALE)?, number(INPUT_SHIFT)?, meta.get(DATA)) {
        (Some(scale), Some(shift), Some(text)) => {
            let prep = Prep::from_json(text).map_err(|e| data_error(path, e.to_string()))?;
            prep.check_model(&spec).map_err(|e| {
                data_error(path, format!("its data record does not fit its model: {e}"))
            })?;
            if prep.byte_scale() != (scale, shift) {
                return Err(data_error(
                    path,
                    format!(
                        "`{INPUT_SCALE}`/`{INPUT_SHIFT}` ({scale}, {shift}) contradict its data \
                         record's {:?}",
                        prep.byte_scale()
                    ),
                ));
            }
            Some(prep)
        }
        // Written before checkpoints carried the whole record: an image classifier.
        (Some(scale), Some(shift), None) => {
            let mut prep = Prep::images(spec.input, spec.outputs(), true);
            prep.scaling = crate::data::Scaling::Bytes { scale, shift };
            Some(prep)
        }
        _ if format >= 2 => {
            return Err(data_error(
                path,
                format!("format {format} needs `{INPUT_SCALE}` and `{INPUT_SHIFT}` metadata"),
            ));
        }
        _ => None,
    };
    let read = |name: &str, shape: &[usize]| -> Result<Values> {
        let t = file
            .tensor(name)
            .map_err(|e| data_error(path, format!("tensor {name}: {e}")))?;
        let wrong = || {
            data_error(
                path,
                format!(
                    "tensor {name} is {:?} {:?}, expected {shape:?} (F32, or I64 for a counter)",
                    t.dtype(),
                    t.shape()
                ),
            )
        };
        if t.shape() != shape {
            return Err(wrong());
        }
        match t.dtype() {
            Dtype::I64 => Ok(Values::I64(bytemuck::pod_collect_to_vec(t.data()))),
            Dtype::F32 => finite_f32(path, name, t.data()).map(Values::F32),
            _ => Err(wrong()),
        }
    };
    let mut model = Model::new(b, spec, Init::Normal(0.0), 0, optimizer_states)?;
    if let Some(prep) = &prep {
        model.task = prep.task;
    }
    let mut dense_index = 0;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        if format == 1 {
            // Format 1: `dense.{k}.weight` `[in, out]` and `dense.{k}.bias` `[1, out]` for the k-th dense
            // layer; shown to the layer as format 2's `[out, in]` and `[out]`. It held nothing else.
            let kind = model.spec.layers[i].kind();
            if kind.name() != "dense" {
                if layer.saved_tensors().is_empty() {
                    continue;
                }
                return Err(data_error(
                    path,
                    format!(
                        "format 1 holds only dense layers' parameters, but layer {i} is `{}`",
                        kind.describe()
                    ),
                ));
            }
            let k = dense_index;
            dense_index += 1;
            layer.import(b, &|name: &str, shape: &[usize]| match (name, shape) {
                ("weight", &[out, inp]) => {
                    let w = read(&format!("dense.{k}.weight"), &[inp, out])?.into_f32(name)?;
                    Ok(Values::F32(
                        (0..out)
                            .flat_map(|o| (0..inp).map(move |j| (o, j)))
                            .map(|(o, j)| w[j * out + o])
                            .collect(),
                    ))
                }
                ("bias", &[out]) => read(&format!("dense.{k}.bias"), &[1, out]),
                _ => Err(data_error(
                    path,
                    format!("format 1 has no {name} {shape:?}"),
                )),
            })?;
        } else {
            layer.import(b, &|name: &str, shape: &[usize]| {
                read(&format!("{i}.{name}"), shape)
            })?;
        }
    }
    Ok(Saved {
        model,
        prep,
        version: meta.get(VERSION).cloned(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::{write_atomically, write_atomically_with};

    /// A save that fails at the rename leaves the old file as it was and no temporary file beside it;
    /// one that succeeds replaces the file whole.
    #[test]
    fn a_failed_save_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("nabla-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("model.safetensors");
        write_atomically(&path, b"old model").unwrap();
        let failing = |_: &std::path::Path, _: &std::path::Path| {
            Err(std::io::Error::other("the disk is full"))
        };
        let err = write_atomically_with(&path, b"new model", failing).unwrap_err();
        assert!(err.to_string().contains("the disk is full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old model");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.safetensors"], "no temporary file is left");
        write_atomically(&path, b"new model").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new model");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

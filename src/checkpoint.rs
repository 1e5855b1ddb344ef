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

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::Values;
use crate::model::{Model, ModelSpec};
use crate::train::InputScale;

/// The checkpoint format this version writes.
pub const FORMAT: u32 = 2;

const FORMAT_KEY: &str = "nabla.format";
const ARCHITECTURE: &str = "nabla.architecture";
const INPUT_SHAPE: &str = "nabla.input_shape";
const INPUT_SCALE: &str = "nabla.input_scale";
const INPUT_SHIFT: &str = "nabla.input_shift";
const CLASSES: &str = "nabla.classes";
const VERSION: &str = "nabla.version";

fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, then renamed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
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
        std::fs::rename(&tmp, path).map_err(io(path))
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
    /// How the model's inputs were scaled in training; `None` for a format 1 file, which did not say.
    pub input: Option<InputScale>,
    /// The nabla version that wrote the file, when it said.
    pub version: Option<String>,
    /// The file's format.
    pub format: u32,
}

/// Saves `model`'s parameters (PyTorch's layout) and what using it needs, `input` among it, to `path`.
pub fn save<B: Backend>(b: &B, model: &Model<B>, input: InputScale, path: &Path) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for t in layer.export(b)? {
            let (bytes, dtype) = match &t.values {
                Values::F32(v) => (bytemuck::cast_slice(v).to_vec(), Dtype::F32),
                Values::I64(v) => (bytemuck::cast_slice(v).to_vec(), Dtype::I64),
            };
            tensors.push((format!("{i}.{}", t.name), t.shape, bytes, dtype));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes, dtype)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| data_error(path, format!("cannot describe tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (ARCHITECTURE.to_string(), model.spec.describe()),
        (INPUT_SHAPE.to_string(), model.spec.input.to_string()),
        (INPUT_SCALE.to_string(), input.scale.to_string()),
        (INPUT_SHIFT.to_string(), input.shift.to_string()),
        (CLASSES.to_string(), model.spec.outputs().to_string()),
        (VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| data_error(path, format!("cannot serialise the model: {e}")))?;
    write_atomically(path, &bytes)
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
    let input = match (number(INPUT_SCALE)?, number(INPUT_SHIFT)?) {
        (Some(scale), Some(shift)) => Some(InputScale { scale, shift }),
        _ if format >= 2 => {
            return Err(data_error(
                path,
                format!("format {format} needs `{INPUT_SCALE}` and `{INPUT_SHIFT}` metadata"),
            ));
        }
        _ => None,
    };
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = file
            .tensor(name)
            .map_err(|e| data_error(path, format!("tensor {name}: {e}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(data_error(
                path,
                format!(
                    "tensor {name} is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(t.data());
        match values.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(data_error(
                path,
                format!(
                    "tensor {name} holds {} at index {i}: a model with non-finite parameters cannot \
                     be used (was it saved from a diverged run?)",
                    values[i]
                ),
            )),
            None => Ok(values),
        }
    };
    let mut model = Model::new(b, spec, Init::Normal(0.0), 0, optimizer_states)?;
    let mut dense_index = 0;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        if format == 1 {
            // Format 1: `dense.{k}.weight` `[in, out]` and `dense.{k}.bias` `[1, out]` for the k-th dense
            // layer; shown to the layer as format 2's `[out, in]` and `[out]`.
            if model.spec.layers[i].kind().name() != "dense" {
                continue;
            }
            let k = dense_index;
            dense_index += 1;
            layer.import(b, &|name: &str, shape: &[usize]| match (name, shape) {
                ("weight", &[out, inp]) => {
                    let w = read(&format!("dense.{k}.weight"), &[inp, out])?;
                    Ok((0..out)
                        .flat_map(|o| (0..inp).map(move |j| (o, j)))
                        .map(|(o, j)| w[j * out + o])
                        .collect())
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
        input,
        version: meta.get(VERSION).cloned(),
        format,
    })
}

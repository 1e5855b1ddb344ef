//! Saving and loading models as safetensors, with the architecture in the file's metadata.
//! Files are written to a temporary name beside the target and renamed into place, so a crash never
//! leaves a half-written model where a good one was.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::backend::{Backend, Shaped};
use crate::error::{Error, Result};
use crate::model::{Model, ModelSpec};

const ARCHITECTURE: &str = "nabla.architecture";

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
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
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

/// Saves `model`'s parameters and architecture to `path`.
pub fn save<B: Backend>(b: &B, model: &Model<B>, path: &Path) -> Result<()> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (i, d) in model.dense_layers().enumerate() {
        for (name, t) in [("weight", &d.weight), ("bias", &d.bias)] {
            let values = b.read(t)?;
            tensors.push((
                format!("dense.{i}.{name}"),
                vec![t.rows(), t.cols()],
                bytemuck::cast_slice(&values).to_vec(),
            ));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| data_error(path, format!("cannot describe tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([(ARCHITECTURE.to_string(), model.spec.describe())]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| data_error(path, format!("cannot serialise the model: {e}")))?;
    write_atomically(path, &bytes)
}

/// Loads a model saved by [`save`], with room for `optimizer_states` state tensors per parameter.
pub fn load<B: Backend>(b: &B, path: &Path, optimizer_states: usize) -> Result<Model<B>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| data_error(path, format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| data_error(path, format!("unreadable safetensors header: {e}")))?;
    let arch = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(ARCHITECTURE))
        .ok_or_else(|| {
            data_error(
                path,
                format!("no `{ARCHITECTURE}` metadata: not a nabla model"),
            )
        })?;
    let spec = ModelSpec::parse(arch).map_err(|e| data_error(path, e.to_string()))?;
    let widths = spec.widths();
    let read = |name: String, shape: [usize; 2]| -> Result<Vec<f32>> {
        let t = file
            .tensor(&name)
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
    let mut weights = Vec::new();
    let mut biases = Vec::new();
    for (i, w) in widths.windows(2).enumerate() {
        weights.push(read(format!("dense.{i}.weight"), [w[0], w[1]])?);
        biases.push(read(format!("dense.{i}.bias"), [1, w[1]])?);
    }
    let mut model = Model::from_weights(b, spec, &weights, optimizer_states)?;
    for (d, bias) in model.dense_layers_mut().zip(&biases) {
        b.write(&mut d.bias, bias)?;
    }
    Ok(model)
}

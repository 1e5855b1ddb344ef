//! Files of RBM stacks: safetensors with plainly named tensors, for `nabla pretrain` to write and
//! `nabla train --init-from` (or any tool) to read.
//!
//! RBM `i` of the stack (bottom first) is three f32 tensors: `rbm.{i}.weight` `[hidden, visible]`,
//! `rbm.{i}.visible_bias` `[visible]` and `rbm.{i}.hidden_bias` `[hidden]`. The metadata says
//! `nabla.rbm_layers` (the sizes, `784-500-500-2000`) and the nabla version. In PyTorch,
//! `safetensors.torch.load_file(path)["rbm.0.weight"]` is a `Linear(784, 500)` weight as it stands.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::RbmValues;
use super::stack::{check_stack, sizes};
use crate::checkpoint::{Entry, data_error, finite_f32, io, serialize, write_atomically};
use crate::error::Result;

const LAYERS: &str = "nabla.rbm_layers";
const VERSION: &str = "nabla.version";

/// Writes `stack` to `path` atomically.
pub fn save(stack: &[RbmValues], path: &Path) -> Result<()> {
    check_stack(stack)?;
    let mut tensors: Vec<Entry> = Vec::new();
    for (i, rbm) in stack.iter().enumerate() {
        let mut push = |name: &str, shape: Vec<usize>, values: &[f32]| {
            let bytes = bytemuck::cast_slice(values).to_vec();
            tensors.push((format!("rbm.{i}.{name}"), shape, bytes, Dtype::F32));
        };
        push("weight", vec![rbm.hidden, rbm.visible], &rbm.weight);
        push("visible_bias", vec![rbm.visible], &rbm.visible_bias);
        push("hidden_bias", vec![rbm.hidden], &rbm.hidden_bias);
    }
    let layers: Vec<String> = sizes(stack).iter().map(usize::to_string).collect();
    let metadata = HashMap::from([
        (LAYERS.to_string(), layers.join("-")),
        (VERSION.to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    write_atomically(path, &serialize(path, tensors, metadata)?)
}

/// Reads the stack [`save`] wrote; a missing, corrupt or inconsistent file, or one holding a value that
/// is not finite, is an error naming it.
pub fn load(path: &Path) -> Result<Vec<RbmValues>> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| data_error(path, format!("not a safetensors file: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| data_error(path, format!("unreadable safetensors header: {e}")))?;
    let layers = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(LAYERS))
        .ok_or_else(|| {
            data_error(
                path,
                format!("no `{LAYERS}` metadata: not a stack of RBMs written by `nabla pretrain`"),
            )
        })?;
    let sizes: Vec<usize> = layers
        .split('-')
        .map(|s| s.parse().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .filter(|s: &Vec<usize>| s.len() >= 2)
        .ok_or_else(|| {
            data_error(
                path,
                format!("`{LAYERS}` = `{layers}` is not sizes like 784-500"),
            )
        })?;
    let read = |name: String, shape: &[usize]| -> Result<Vec<f32>> {
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
        finite_f32(path, &name, t.data())
    };
    let stack = sizes
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let (visible, hidden) = (pair[0], pair[1]);
            Ok(RbmValues {
                visible,
                hidden,
                weight: read(format!("rbm.{i}.weight"), &[hidden, visible])?,
                visible_bias: read(format!("rbm.{i}.visible_bias"), &[visible])?,
                hidden_bias: read(format!("rbm.{i}.hidden_bias"), &[hidden])?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    check_stack(&stack).map_err(|e| data_error(path, e.to_string()))?;
    Ok(stack)
}

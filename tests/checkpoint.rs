//! Checkpoints: what is saved loads back to the same model, the file reads as PyTorch's layout and
//! names, format 1 files still load, and bad files are refused with the tensor named.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{cpu, rng, uniform};
use nabla::checkpoint::{self, FORMAT};
use nabla::data::Prep;
use nabla::init::Init;
use nabla::model::{MlpOptions, Model, ModelSpec};
use nabla::{Activation, Backend, CpuBackend, Error, Shaped};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-ckpt-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 12 inputs, hidden 9 and 7 with batch norm and dropout, 5 classes; its running statistics moved by
/// three training passes on random data.
fn trained_model(b: &CpuBackend) -> Model<CpuBackend> {
    let options = MlpOptions {
        dropout: 0.2,
        batch_norm: true,
    };
    let spec = ModelSpec::mlp_with(12, &[9, 7], 5, Activation::Relu, options);
    let mut model = Model::new(b, spec, Init::He, 5, 0).unwrap();
    let mut ws = model.workspace(b, 16).unwrap();
    for step in 1..=3 {
        let x = b
            .tensor(16, 12, &uniform(&mut rng(step), 192, 2.0))
            .unwrap();
        model.forward_train(b, &x, &mut ws, 1, step).unwrap();
    }
    model
}

fn logits(b: &CpuBackend, model: &Model<CpuBackend>) -> Vec<f32> {
    let x = b.tensor(6, 12, &uniform(&mut rng(99), 72, 2.0)).unwrap();
    let mut ws = model.workspace(b, 6).unwrap();
    model.forward(b, &x, &mut ws).unwrap();
    b.read(ws.logits()).unwrap()
}

#[test]
fn a_saved_model_loads_back_to_the_same_outputs_and_input_scaling() {
    let b = cpu();
    let model = trained_model(&b);
    let dir = scratch("roundtrip");
    let path = dir.join("m.safetensors");
    // Images of the model's input shape, scaled to [0, 1] or kept as bytes; and a regression on a
    // table, whose record carries the feature and target scaling.
    let images = |normalise| Prep::images(model.spec.input, model.spec.outputs(), normalise);
    let mut table = Prep::images(model.spec.input, model.spec.outputs(), true);
    table.task = nabla::data::Task::Regress;
    table.names = (0..5).map(|t| format!("t{t}")).collect();
    table.scaling = nabla::data::Scaling::Standard {
        mean: (0..12).map(|j| j as f32 * 0.5).collect(),
        std: vec![2.0; 12],
    };
    table.target = Some((vec![1.0; 5], vec![3.0; 5]));
    table.schema = nabla::data::Schema::Table(
        (0..12)
            .map(|j| nabla::data::prep::Column {
                name: format!("c{j}"),
                categories: None,
            })
            .collect(),
    );
    for input in [&images(true), &images(false), &table] {
        checkpoint::save(&b, &model, input, &path).unwrap();
        let saved = checkpoint::load(&b, &path, 0).unwrap();
        assert_eq!(saved.model.spec, model.spec);
        assert_eq!(saved.prep.as_ref(), Some(input));
        assert_eq!(saved.format, FORMAT);
        assert_eq!(saved.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        // Same kernels on both sides: the logits agree exactly, running statistics included.
        assert_eq!(logits(&b, &saved.model), logits(&b, &model));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_file_holds_pytorch_layouts_and_names() {
    let b = cpu();
    let model = trained_model(&b);
    let dir = scratch("layout");
    let path = dir.join("m.safetensors");
    let prep = Prep::images(model.spec.input, model.spec.outputs(), true);
    checkpoint::save(&b, &model, &prep, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    // dense, batch_norm, relu, dropout, dense, batch_norm, relu, dropout, dense: torch.nn.Sequential's
    // indices.
    let mut want: Vec<String> = [
        "0.weight", "0.bias", "4.weight", "4.bias", "8.weight", "8.bias",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for bn in [1, 5] {
        for name in [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ] {
            want.push(format!("{bn}.{name}"));
        }
    }
    want.sort();
    assert_eq!(names, want);
    // nn.Linear: weight [out, in], the transpose of nabla's [in, out]; bias [out].
    let w = file.tensor("4.weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[7usize, 9][..]));
    let stored: Vec<f32> = bytemuck::pod_collect_to_vec(w.data());
    let dense = model.params().nth(3).unwrap();
    assert_eq!((dense.value.rows(), dense.value.cols()), (9, 7));
    let internal = b.read(&dense.value).unwrap();
    for o in 0..7 {
        for i in 0..9 {
            assert_eq!(stored[o * 9 + i], internal[i * 7 + o]);
        }
    }
    assert_eq!(file.tensor("4.bias").unwrap().shape(), &[7]);
    let tracked = file.tensor("1.num_batches_tracked").unwrap();
    assert_eq!((tracked.dtype(), tracked.shape()), (Dtype::I64, &[][..]));
    assert_eq!(bytemuck::pod_read_unaligned::<i64>(tracked.data()), 3);
    let var: Vec<f32> = bytemuck::pod_collect_to_vec(file.tensor("5.running_var").unwrap().data());
    assert!(var.iter().all(|&v| v > 0.0 && v != 1.0), "{var:?}");
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().as_ref().unwrap();
    assert_eq!(meta["format"], "pt");
    assert_eq!(meta["nabla.format"], FORMAT.to_string());
    assert_eq!(meta["nabla.input_shape"], "12");
    assert_eq!(meta["nabla.classes"], "5");
    assert_eq!(
        meta["nabla.input_scale"].parse::<f32>().unwrap(),
        1.0 / 255.0
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes `tensors` (name, shape, values) with `metadata` as a safetensors file.
fn write_file(path: &PathBuf, tensors: &[(&str, Vec<usize>, Vec<f32>)], metadata: &[(&str, &str)]) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let view =
                TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values)).unwrap();
            (name.to_string(), view)
        })
        .collect();
    let meta: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// A file as nabla wrote them before format 2: weights `[in, out]` named `dense.{i}`, bias `[1, out]`,
/// only the architecture in the metadata.
#[test]
fn format_1_files_still_load() {
    let b = cpu();
    let spec = ModelSpec::mlp(12, &[9], 5, Activation::Tanh);
    let mut model = Model::new(&b, spec, Init::Xavier, 8, 0).unwrap();
    let biases = [uniform(&mut rng(1), 9, 0.5), uniform(&mut rng(2), 5, 0.5)];
    // Parameters alternate weight, bias: give the biases non-zero values.
    for (p, bias) in model.params_mut().skip(1).step_by(2).zip(&biases) {
        b.write(&mut p.value, bias).unwrap();
    }
    let weights: Vec<Vec<f32>> = model
        .params()
        .step_by(2)
        .map(|p| b.read(&p.value).unwrap())
        .collect();
    let dir = scratch("v1");
    let path = dir.join("old.safetensors");
    write_file(
        &path,
        &[
            ("dense.0.weight", vec![12, 9], weights[0].clone()),
            ("dense.0.bias", vec![1, 9], biases[0].clone()),
            ("dense.1.weight", vec![9, 5], weights[1].clone()),
            ("dense.1.bias", vec![1, 5], biases[1].clone()),
        ],
        &[("nabla.architecture", "12-9-5 tanh")],
    );
    let saved = checkpoint::load(&b, &path, 0).unwrap();
    assert_eq!(saved.format, 1);
    assert_eq!(saved.prep, None);
    assert_eq!(logits(&b, &saved.model), logits(&b, &model));

    // Format 1 held dense layers only: a convolution in its architecture has nothing to load.
    write_file(
        &path,
        &[
            ("dense.0.weight", vec![8, 3], vec![0.5; 24]),
            ("dense.0.bias", vec![1, 3], vec![0.5; 3]),
        ],
        &[(
            "nabla.architecture",
            "input 1x4x4, conv 2x3x3, flatten, dense 3",
        )],
    );
    let err = checkpoint::load(&b, &path, 0)
        .err()
        .expect("a format 1 convolution loaded");
    assert!(
        err.to_string()
            .contains("format 1 holds only dense layers' parameters, but layer 0 is `conv 2x3x3`"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_files_are_refused_with_the_tensor_named() {
    let b = cpu();
    let model = trained_model(&b);
    let dir = scratch("bad");
    let path = dir.join("m.safetensors");
    let prep = Prep::images(model.spec.input, model.spec.outputs(), true);
    checkpoint::save(&b, &model, &prep, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta: Vec<(String, String)> = header.metadata().clone().unwrap().into_iter().collect();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = file
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec(), t.dtype()))
        .collect();
    // Rewrites the file with one tensor's bytes or one metadata value changed.
    let rewrite = |poison: &dyn Fn(&str, &mut Vec<u8>), meta_change: Option<(&str, &str)>| {
        let mut owned = tensors.clone();
        for (name, _, data, _) in &mut owned {
            poison(name, data);
        }
        let views: Vec<(String, TensorView<'_>)> = owned
            .iter()
            .map(|(n, s, d, t)| (n.clone(), TensorView::new(*t, s.clone(), d).unwrap()))
            .collect();
        let mut m: HashMap<String, String> = meta.iter().cloned().collect();
        match meta_change {
            Some((k, "")) => {
                m.remove(k);
            }
            Some((k, v)) => {
                m.insert(k.to_string(), v.to_string());
            }
            None => {}
        }
        std::fs::write(&path, safetensors::serialize(views, Some(m)).unwrap()).unwrap();
    };
    let load = || checkpoint::load::<CpuBackend>(&b, &path, 0);

    rewrite(
        &|name, data| {
            if name == "4.bias" {
                data[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
            }
        },
        None,
    );
    let err = load().err().expect("a NaN parameter loaded");
    assert!(
        matches!(err, Error::Data { .. })
            && err
                .to_string()
                .contains("tensor 4.bias holds NaN at index 3"),
        "{err}"
    );

    rewrite(&|_, _| {}, Some(("nabla.format", "3")));
    let err = load().err().expect("a newer format loaded");
    assert!(err.to_string().contains("newer"), "{err}");

    // Format 2 must say how its inputs were scaled (an empty value removes the key).
    rewrite(&|_, _| {}, Some(("nabla.input_shift", "")));
    let err = load()
        .err()
        .expect("a model without its input scaling loaded");
    assert!(
        err.to_string().contains("needs `nabla.input_scale`"),
        "{err}"
    );

    rewrite(&|_, _| {}, Some(("nabla.input_scale", "fast")));
    let err = load().err().expect("a bad input scale loaded");
    assert!(err.to_string().contains("nabla.input_scale"), "{err}");

    rewrite(
        &|_, _| {},
        Some((
            "nabla.architecture",
            "input 12, dense 8, batch_norm, relu, dropout 0.2, dense 7, batch_norm, relu, \
             dropout 0.2, dense 5",
        )),
    );
    let err = load().err().expect("a mismatched architecture loaded");
    assert!(
        err.to_string().contains("tensor 0.weight") && err.to_string().contains("expected [8, 12]"),
        "{err}"
    );

    // An architecture larger than the file is refused before its model is allocated.
    rewrite(
        &|_, _| {},
        Some(("nabla.architecture", "input 12, dense 100000000, dense 6")),
    );
    let err = load()
        .err()
        .expect("an architecture larger than its file loaded");
    assert!(
        err.to_string()
            .contains("has 1900000006 parameters, but the file holds at most"),
        "{err}"
    );

    std::fs::write(&path, b"not a model").unwrap();
    assert!(matches!(load(), Err(Error::Data { .. })));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A CNN's checkpoint: the logits come back exactly; names follow `nn.Sequential` with the inserted
/// `nn.Flatten` (conv 0, relu 1, max pool 2, conv 3, relu 4, avg pool 5, flatten 6, linear 7); conv
/// weights are `[out, in, kh, kw]` with nabla's values in that order.
#[test]
fn a_cnn_checkpoint_holds_conv2d_layouts_and_loads_back() {
    let b = cpu();
    let text =
        "input 2x9x8, conv 4x3x3 pad 1, relu, max_pool 2, conv 3x2x2, relu, avg_pool 2, dense 5";
    let mut model = Model::new(&b, ModelSpec::parse(text).unwrap(), Init::He, 3, 0).unwrap();
    // Non-zero biases, so that a bias lost on the way would show.
    for p in model.params_mut() {
        let n = p.value.len();
        let v: Vec<f32> = b.read(&p.value).unwrap().iter().map(|v| v + 0.1).collect();
        assert_eq!(v.len(), n);
        b.write(&mut p.value, &v).unwrap();
    }
    let dir = scratch("cnn");
    let path = dir.join("cnn.safetensors");
    let prep = Prep::images(model.spec.input, model.spec.outputs(), true);
    checkpoint::save(&b, &model, &prep, &path).unwrap();
    let saved = checkpoint::load(&b, &path, 0).unwrap();
    assert_eq!(saved.model.spec, model.spec);
    let x = b.tensor(3, 144, &uniform(&mut rng(4), 432, 1.0)).unwrap();
    let run = |m: &Model<CpuBackend>| {
        let mut ws = m.workspace(&b, 3).unwrap();
        m.forward(&b, &x, &mut ws).unwrap();
        b.read(ws.logits()).unwrap()
    };
    assert_eq!(run(&saved.model), run(&model));
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = file.names().into_iter().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.bias", "0.weight", "3.bias", "3.weight", "7.bias", "7.weight"
        ]
    );
    let conv = file.tensor("0.weight").unwrap();
    assert_eq!(conv.shape(), [4, 2, 3, 3]);
    let values: Vec<f32> = bytemuck::pod_collect_to_vec(conv.data());
    assert_eq!(
        values,
        b.read(&model.params().next().unwrap().value).unwrap()
    );
    assert_eq!(file.tensor("7.weight").unwrap().shape(), [5, 3]);
    std::fs::remove_dir_all(dir).unwrap();
}

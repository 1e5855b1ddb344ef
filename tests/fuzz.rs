//! Property tests: random and mutated bytes fed to everything that reads a user's files (the IDX
//! checks, the checkpoint loader, the RBM stack loader, the PNG reader, the CSV and NumPy loaders). None may panic, and every rejection is an
//! [`Error::Data`] naming the file; a mutation that happens to leave the file valid may load.

mod common;

use std::path::{Path, PathBuf};

use common::cpu;
use nabla::checkpoint;
use nabla::data::Prep;
use nabla::data::{csv, npy};
use nabla::init::Init;
use nabla::mnist::{self, PIXELS, SIDE};
use nabla::model::{MlpOptions, Model, ModelSpec};
use nabla::{Activation, CpuBackend, Error};
use proptest::prelude::*;

/// A valid IDX image file of `n` images and its label file.
fn idx_files(n: usize) -> (Vec<u8>, Vec<u8>) {
    let mut images = Vec::new();
    for word in [0x803u32, n as u32, SIDE as u32, SIDE as u32] {
        images.extend(word.to_be_bytes());
    }
    images.extend((0..n * PIXELS).map(|i| (i * 7 % 256) as u8));
    let mut labels = Vec::new();
    for word in [0x801u32, n as u32] {
        labels.extend(word.to_be_bytes());
    }
    labels.extend((0..n).map(|i| (i % 10) as u8));
    (images, labels)
}

/// A valid checkpoint (batch norm and dropout included) as bytes.
fn checkpoint_bytes() -> Vec<u8> {
    let b = cpu();
    let options = MlpOptions {
        dropout: 0.1,
        batch_norm: true,
    };
    let spec = ModelSpec::mlp_with(6, &[4], 3, Activation::Relu, options);
    let model = Model::new(&b, spec, Init::He, 1, 0).unwrap();
    // A file per call: tests build seeds in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = scratch().join(format!("seed-{call}.safetensors"));
    let prep = Prep::images(model.spec.input, model.spec.outputs(), true);
    checkpoint::save(&b, &model, &prep, &path).unwrap();
    std::fs::read(&path).unwrap()
}

/// A valid file of two stacked RBMs (5-4-3), as `nabla pretrain` writes it.
fn rbm_stack_bytes() -> Vec<u8> {
    let layer = |visible: usize, hidden: usize, seed: u64| {
        nabla::rbm::RbmValues::initial(visible, hidden, seed).unwrap()
    };
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = scratch().join(format!("seed-stack-{call}.safetensors"));
    nabla::rbm::file::save(&[layer(5, 4, 1), layer(4, 3, 2)], &path).unwrap();
    std::fs::read(&path).unwrap()
}

/// A valid 28×28 grayscale PNG as bytes.
fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE as u32, SIDE as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let pixels: Vec<u8> = (0..PIXELS).map(|i| (i * 3 % 256) as u8).collect();
    writer.write_image_data(&pixels).unwrap();
    writer.finish().unwrap();
    out
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nabla-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `seed` changed by one of: overwriting bytes, truncating, appending, or replacing it wholesale.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len();
    prop_oneof![
        proptest::collection::vec((0..len, any::<u8>()), 1..8).prop_map({
            let seed = seed.clone();
            move |edits| {
                let mut bytes = seed.clone();
                for (i, v) in edits {
                    bytes[i] = v;
                }
                bytes
            }
        }),
        (0..len).prop_map({
            let seed = seed.clone();
            move |n| seed[..n].to_vec()
        }),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map({
            let seed = seed.clone();
            move |tail| [seed.clone(), tail].concat()
        }),
        proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

/// A rejection must be a data error about `path`.
fn refused_cleanly<T>(result: Result<T, Error>, path: &Path) -> Result<(), TestCaseError> {
    refused_naming(result, &[path])
}

/// A rejection must be a data error about one of `paths`.
fn refused_naming<T>(result: Result<T, Error>, paths: &[&Path]) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Ok(()),
        Err(Error::Data { path: p, .. }) if paths.contains(&p.as_path()) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "not a data error about {paths:?}: {e}"
        ))),
    }
}

/// A valid CSV table: numeric and text inputs, a whole-number target.
fn csv_table() -> Vec<u8> {
    b"a,b,colour,label\n1.5,2,red,0\n-3,4e2,blue,1\n0,0.25,red,2\n7,\"8\",green,1\n".to_vec()
}

/// A header, then text of a table's characters: rows, quotes, numbers and text in any order.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"0123456789.,-e\"\n\r abx";
    proptest::collection::vec(proptest::sample::select(alphabet), 0..200)
        .prop_map(|text| [b"a,b,label\n".as_slice(), &text].concat())
}

/// A `.npy` file (format 1.0) with the header dict `dict`, then `data`.
fn npy_file(dict: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{dict}\n");
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.bytes());
    out.extend(data);
    out
}

/// Valid inputs (3 samples of 2 floats) and class labels.
fn npy_pair() -> (Vec<u8>, Vec<u8>) {
    let x: Vec<u8> = [0.5f32, 1.0, -2.0, 3.0, 0.0, 4.5]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let y: Vec<u8> = [1i64, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    (
        npy_file(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
            &x,
        ),
        npy_file(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
            &y,
        ),
    )
}

/// A `.npy` file whose header is random text of a header's characters, then random data.
fn npy_header_text() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"{}()[]:, '\"<>|=fiubc1248036descrshapefortran_orderTrueFalseL";
    let text = proptest::collection::vec(proptest::sample::select(alphabet), 0..96);
    (text, proptest::collection::vec(any::<u8>(), 0..48))
        .prop_map(|(text, data)| npy_file(&String::from_utf8(text).unwrap(), &data))
}

/// A stored (uncompressed) zip archive of `members`, as `numpy.savez` writes one.
fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let (mut out, mut dir) = (Vec::new(), Vec::new());
    let le = |out: &mut Vec<u8>, fields: &[(u32, usize)]| {
        for &(v, n) in fields {
            out.extend(&v.to_le_bytes()[..n]);
        }
    };
    for (name, data) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (crc, len, at) = (crc.sum(), data.len() as u32, out.len() as u32);
        let common = [
            (20, 2),
            (0, 2),
            (0, 2),
            (0, 4),
            (crc, 4),
            (len, 4),
            (len, 4),
            (name.len() as u32, 2),
            (0, 2),
        ];
        le(&mut out, &[(0x0403_4b50, 4)]);
        le(&mut out, &common);
        out.extend(name.bytes());
        out.extend(*data);
        le(&mut dir, &[(0x0201_4b50, 4), (20, 2)]);
        le(&mut dir, &common);
        le(&mut dir, &[(0, 2), (0, 4), (0, 4), (at, 4)]);
        dir.extend(name.bytes());
    }
    let (count, dir_at, dir_len) = (members.len() as u32, out.len() as u32, dir.len() as u32);
    out.extend(dir);
    le(
        &mut out,
        &[
            (0x0605_4b50, 4),
            (0, 4),
            (count, 2),
            (count, 2),
            (dir_len, 4),
            (dir_at, 4),
            (0, 2),
        ],
    );
    out
}

/// A valid `.npz` archive with a test split.
fn npz_bytes() -> Vec<u8> {
    let (x, y) = npy_pair();
    stored_zip(&[
        ("x.npy", &x),
        ("y.npy", &y),
        ("x_test.npy", &x),
        ("y_test.npy", &y),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn idx_files_never_panic(images in mutated(idx_files(3).0), labels in mutated(idx_files(3).1)) {
        let (ip, lp) = (Path::new("images-idx3-ubyte"), Path::new("labels-idx1-ubyte"));
        refused_cleanly(mnist::check_images(ip, &images), ip)?;
        refused_cleanly(mnist::check_labels(lp, &labels), lp)?;
    }

    #[test]
    fn checkpoints_never_panic(bytes in mutated(checkpoint_bytes())) {
        let path = scratch().join("fuzzed.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        refused_cleanly(checkpoint::load::<CpuBackend>(&cpu(), &path, 2), &path)?;
    }

    #[test]
    fn rbm_stacks_never_panic(bytes in mutated(rbm_stack_bytes())) {
        let path = scratch().join("fuzzed-stack.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        refused_cleanly(nabla::rbm::file::load(&path), &path)?;
    }

    #[test]
    fn pngs_never_panic(bytes in mutated(png_bytes()), invert in any::<bool>()) {
        let path = Path::new("digit.png");
        let result = nabla::png_digit::decode(path, &bytes, invert);
        if let Ok(pixels) = &result {
            prop_assert_eq!(pixels.len(), PIXELS);
        }
        refused_cleanly(result, path)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn csv_tables_never_panic(bytes in prop_oneof![mutated(csv_table()), csv_text()], two in any::<bool>()) {
        let path = scratch().join("fuzzed.csv");
        std::fs::write(&path, &bytes).unwrap();
        let targets: Vec<String> = if two { vec!["a".into(), "label".into()] } else { vec!["label".into()] };
        refused_cleanly(csv::load(&path, &targets), &path)?;
    }

    #[test]
    fn npy_arrays_never_panic(
        x in prop_oneof![mutated(npy_pair().0), npy_header_text()],
        y in mutated(npy_pair().1),
    ) {
        let (x_path, y_path) = (scratch().join("fuzzed-x.npy"), scratch().join("fuzzed-y.npy"));
        std::fs::write(&x_path, &x).unwrap();
        std::fs::write(&y_path, &y).unwrap();
        let targets = [y_path.to_string_lossy().into_owned()];
        refused_naming(npy::load(&x_path, &targets), &[&x_path, &y_path])?;
    }

    #[test]
    fn npz_archives_never_panic(bytes in mutated(npz_bytes())) {
        let path = scratch().join("fuzzed.npz");
        std::fs::write(&path, &bytes).unwrap();
        refused_cleanly(npy::load(&path, &[]), &path)?;
    }
}

/// The fuzzers' seeds are valid, so the mutations start from files that load.
#[test]
fn the_seeds_load() {
    let (images, labels) = idx_files(3);
    assert_eq!(mnist::check_images(Path::new("i"), &images).unwrap(), 3);
    assert_eq!(mnist::check_labels(Path::new("l"), &labels).unwrap(), 3);
    let path = scratch().join("seed.safetensors");
    std::fs::write(&path, checkpoint_bytes()).unwrap();
    assert!(checkpoint::load::<CpuBackend>(&cpu(), &path, 2).is_ok());
    let path = scratch().join("seed-stack.safetensors");
    std::fs::write(&path, rbm_stack_bytes()).unwrap();
    assert_eq!(nabla::rbm::file::load(&path).unwrap().len(), 2);
    let pixels = nabla::png_digit::decode(Path::new("p.png"), &png_bytes(), false).unwrap();
    assert_eq!(pixels[1], 3);
    let path = scratch().join("seed.csv");
    std::fs::write(&path, csv_table()).unwrap();
    assert_eq!(csv::load(&path, &["label".into()]).unwrap().0.len(), 4);
    let (x, y) = npy_pair();
    let (x_path, y_path) = (scratch().join("seed-x.npy"), scratch().join("seed-y.npy"));
    std::fs::write(&x_path, x).unwrap();
    std::fs::write(&y_path, y).unwrap();
    let targets = [y_path.to_string_lossy().into_owned()];
    assert_eq!(npy::load(&x_path, &targets).unwrap().0.len(), 3);
    let path = scratch().join("seed.npz");
    std::fs::write(&path, npz_bytes()).unwrap();
    let (train, test, _) = npy::load(&path, &[]).unwrap();
    assert_eq!((train.len(), test.map(|t| t.len())), (3, Some(3)));
}

//! Property tests: random and mutated bytes fed to everything that reads a user's files (the IDX
//! checks, the checkpoint loader, the PNG reader). None may panic, and every rejection is an
//! [`Error::Data`] naming the file; a mutation that happens to leave the file valid may load.

mod common;

use std::path::{Path, PathBuf};

use common::cpu;
use nabla::data::Prep;
use nabla::checkpoint;
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
    checkpoint::save(&b, &model, &Prep::mnist(true), &path).unwrap();
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
    match result {
        Ok(_) => Ok(()),
        Err(Error::Data { path: p, .. }) if p == path => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "not a data error about {}: {e}",
            path.display()
        ))),
    }
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
    fn pngs_never_panic(bytes in mutated(png_bytes()), invert in any::<bool>()) {
        let path = Path::new("digit.png");
        let result = nabla::png_digit::decode(path, &bytes, invert);
        if let Ok(pixels) = &result {
            prop_assert_eq!(pixels.len(), PIXELS);
        }
        refused_cleanly(result, path)?;
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
    let pixels = nabla::png_digit::decode(Path::new("p.png"), &png_bytes(), false).unwrap();
    assert_eq!(pixels[1], 3);
}

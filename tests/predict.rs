//! `nabla predict` on MNIST digits: the PNG reader's decoding of every pixel format to the bytes MNIST
//! would hold, checked exactly on images the tests write, and `predict --index` and `--image` end to end
//! (the printed digit, and ten probabilities that sum to 1).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use nabla::png_digit::decode;

const SIDE: u32 = 28;

/// A 28×28 PNG of `color` type and `depth` from its raw samples.
fn png(color: png::ColorType, depth: png::BitDepth, samples: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, SIDE, SIDE);
    encoder.set_color(color);
    encoder.set_depth(depth);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(samples))
        .unwrap();
    bytes
}

/// Pixel `i`'s test value: a ramp that takes every byte value 0..=255 and more.
fn ramp(i: usize) -> u8 {
    (i * 7 % 256) as u8
}

fn decoded(bytes: &[u8], invert: bool) -> Vec<u8> {
    decode(Path::new("digit.png"), bytes, invert).unwrap()
}

#[test]
fn grey_and_rgb_pngs_decode_to_their_bytes() {
    let n = (SIDE * SIDE) as usize;
    let grey: Vec<u8> = (0..n).map(ramp).collect();
    let file = png(png::ColorType::Grayscale, png::BitDepth::Eight, &grey);
    assert_eq!(decoded(&file, false), grey);
    // Inverted: dark ink on white becomes light on black.
    let inverted: Vec<u8> = grey.iter().map(|v| 255 - v).collect();
    assert_eq!(decoded(&file, true), inverted);
    // RGB: the mean of the three channels, rounded down.
    let rgb: Vec<u8> = (0..n)
        .flat_map(|i| [ramp(i), ramp(i + 1), ramp(i + 5)])
        .collect();
    let want: Vec<u8> = rgb
        .chunks(3)
        .map(|c| ((u32::from(c[0]) + u32::from(c[1]) + u32::from(c[2])) / 3) as u8)
        .collect();
    assert_eq!(
        decoded(&png(png::ColorType::Rgb, png::BitDepth::Eight, &rgb), false),
        want
    );
    // 16-bit grey: the high byte of each sample.
    let wide: Vec<u8> = (0..n).flat_map(|i| [ramp(i), 0xA5]).collect();
    assert_eq!(
        decoded(
            &png(png::ColorType::Grayscale, png::BitDepth::Sixteen, &wide),
            false
        ),
        grey
    );
}

/// Transparency is the background the digit was drawn on. A dark digit on a transparent background
/// (`--invert`) must come out as MNIST draws it, light ink on black; before the fix the transparent
/// background was composited on black and then inverted to white, an all-ink image.
#[test]
fn transparent_backgrounds_are_background_with_or_without_invert() {
    let n = (SIDE * SIDE) as usize;
    let ink = |i: usize| i % 28 == 14; // one vertical stroke
    // Dark ink (black, opaque) on a transparent background.
    let dark: Vec<u8> = (0..n)
        .flat_map(|i| if ink(i) { [0, 0, 0, 255] } else { [0, 0, 0, 0] })
        .collect();
    let want: Vec<u8> = (0..n).map(|i| if ink(i) { 255 } else { 0 }).collect();
    let file = png(png::ColorType::Rgba, png::BitDepth::Eight, &dark);
    assert_eq!(decoded(&file, true), want);
    // Light ink (white, opaque) on a transparent background, not inverted.
    let light: Vec<u8> = (0..n)
        .flat_map(|i| if ink(i) { [255, 255] } else { [255, 0] })
        .collect();
    let file = png(png::ColorType::GrayscaleAlpha, png::BitDepth::Eight, &light);
    assert_eq!(decoded(&file, false), want);
    // Half-transparent mid-grey ink: composited on the background, rounded to the nearest byte:
    // 128·(128/255) = 64.25 on black; 128·(128/255) + 255·(127/255) = 191.25 on white, inverted 64.
    let half: Vec<u8> = (0..n).flat_map(|_| [128, 128]).collect();
    let file = png(png::ColorType::GrayscaleAlpha, png::BitDepth::Eight, &half);
    assert!(decoded(&file, false).iter().all(|&v| v == 64));
    assert!(decoded(&file, true).iter().all(|&v| v == 255 - 191));
}

fn nabla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nabla"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("nabla-predict-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The digit and the ten probabilities `predict` printed.
fn printed(out: &std::process::Output) -> (usize, Vec<f64>) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let digit = text
        .split_whitespace()
        .nth(1)
        .and_then(|d| d.parse().ok())
        .expect("`predicted D`");
    let probabilities: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split('%')
                .next()
                .unwrap()
                .split(':')
                .nth(1)
                .unwrap()
                .trim()
                .parse::<f64>()
                .unwrap()
                / 100.0
        })
        .collect();
    (digit, probabilities)
}

/// A quickly trained model classifies test image 0 by index and as a PNG of the same pixels: the same
/// digit both ways, the label printed beside it, ten probabilities summing to 1 (to the printed two
/// decimals: ±0.0005 each) with the digit's the largest.
#[test]
fn predict_by_index_and_by_png_agree() {
    let mnist = common::real_mnist();
    let dir = scratch();
    let model = dir.join("model.safetensors");
    let trained = nabla()
        .args([
            "train",
            "--device",
            "cpu",
            "--train-images",
            "3000",
            "--epochs",
            "2",
            "--out",
        ])
        .arg(&model)
        .arg("--metrics")
        .arg(dir.join("m.csv"))
        .output()
        .unwrap();
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let by_index = nabla()
        .args(["predict", "--device", "cpu", "--index", "0", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&by_index.stdout)
            .contains(&format!("(label {})", mnist.test.labels[0]))
    );
    let (digit, probabilities) = printed(&by_index);
    assert_eq!(probabilities.len(), 10);
    assert!(
        (probabilities.iter().sum::<f64>() - 1.0).abs() < 0.006,
        "{probabilities:?}"
    );
    let best = probabilities.iter().copied().fold(0.0, f64::max);
    assert_eq!(probabilities[digit], best);
    let image = dir.join("digit.png");
    let pixels = &mnist.test.images[..(SIDE * SIDE) as usize];
    std::fs::write(
        &image,
        png(png::ColorType::Grayscale, png::BitDepth::Eight, pixels),
    )
    .unwrap();
    let by_png = nabla()
        .args(["predict", "--device", "cpu", "--image"])
        .arg(&image)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    let (png_digit, png_probabilities) = printed(&by_png);
    assert_eq!(png_digit, digit);
    assert_eq!(png_probabilities, probabilities);
    std::fs::remove_dir_all(dir).unwrap();
}

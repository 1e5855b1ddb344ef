//! `nabla predict`: the digit and class probabilities for a test image or a 28×28 PNG.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use nabla::Backend;
use nabla::checkpoint;
use nabla::mnist::{CLASSES, PIXELS, SIDE};

use super::{Common, input_scale, load_mnist};

/// `nabla predict`'s options.
#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub common: Common,
    /// The model to use.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// A test-set image index.
    #[arg(long, conflicts_with = "image")]
    index: Option<usize>,
    /// A 28×28 PNG, white digit on black as in MNIST (see --invert).
    #[arg(long)]
    image: Option<PathBuf>,
    /// The PNG is dark ink on a light background: invert it.
    #[arg(long)]
    invert: bool,
    /// Pixels kept as 0–255: for models saved by nabla before checkpoints recorded their input scaling.
    #[arg(long)]
    no_normalise: bool,
}

/// Classifies one image and prints the digit and the class probabilities.
pub fn run<B: Backend>(b: &B, args: &PredictArgs) -> Result<()> {
    let saved = checkpoint::load(b, &args.model, 0)?;
    let input = input_scale(&saved, args.no_normalise);
    let model = saved.model;
    let (pixels, truth) = match (&args.image, args.index) {
        (Some(path), _) => (read_png(path, args.invert)?, None),
        (None, Some(i)) => {
            let mnist = load_mnist(&args.common.data)?;
            if i >= mnist.test.len() {
                bail!(
                    "--index {i} is past the test set's {} images",
                    mnist.test.len()
                );
            }
            (
                mnist.test.images[i * PIXELS..(i + 1) * PIXELS].to_vec(),
                Some(mnist.test.labels[i]),
            )
        }
        (None, None) => bail!("say which image: --index N (a test image) or --image FILE.png"),
    };
    let x: Vec<f32> = pixels.iter().map(|&p| input.apply(p)).collect();
    let mut ws = model.workspace(b, 1)?;
    model.forward(b, &b.tensor(1, PIXELS, &x)?, &mut ws)?;
    let mut probs = b.zeros(1, CLASSES)?;
    b.softmax(ws.logits(), &mut probs)?;
    let probs = b.read(&probs)?;
    let digit = nabla::cpu::argmax(&probs);
    match truth {
        Some(t) => println!("predicted {digit} (label {t})"),
        None => println!("predicted {digit}"),
    }
    for (d, p) in probs.iter().enumerate() {
        println!(
            "  {d}: {:6.2}% {}",
            p * 100.0,
            "#".repeat((p * 40.0).round() as usize)
        );
    }
    Ok(())
}

/// Reads a 28×28 PNG as grayscale bytes (colour is averaged, alpha composited on black).
fn read_png(path: &Path, invert: bool) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a PNG", path.display()))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if (width, height) != (SIDE, SIDE) {
        bail!(
            "{} is {width}×{height}; nabla predicts on 28×28 images",
            path.display()
        );
    }
    let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let frame = reader
        .next_frame(&mut buf)
        .with_context(|| format!("{} is corrupt", path.display()))?;
    let channels = frame.color_type.samples();
    let pixels = buf[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|px| {
            let (color, alpha) = match channels {
                1 => (u32::from(px[0]), 255),
                2 => (u32::from(px[0]), u32::from(px[1])),
                3 => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    255,
                ),
                _ => (
                    (u32::from(px[0]) + u32::from(px[1]) + u32::from(px[2])) / 3,
                    u32::from(px[3]),
                ),
            };
            let v = (color * alpha / 255) as u8;
            if invert { 255 - v } else { v }
        })
        .collect();
    Ok(pixels)
}

//! `nabla predict`: the digit and class probabilities for a test image or a 28×28 PNG.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use nabla::Backend;
use nabla::checkpoint;
use nabla::mnist::PIXELS;
use nabla::train::class_probabilities;

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
    nabla::mnist::check_model(&saved.model.spec)
        .with_context(|| args.model.display().to_string())?;
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
    let probs = pollster::block_on(class_probabilities(b, &model, input, &pixels))?;
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

/// Reads a 28×28 PNG as grayscale bytes (see [`nabla::png_digit`]).
fn read_png(path: &Path, invert: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(nabla::png_digit::decode(path, &bytes, invert)?)
}

//! `nabla predict`: a saved model's answers for new samples: the rows of a CSV table, a PNG image or a
//! folder of them (written as CSV), or one MNIST test image or 28×28 digit PNG (printed with its
//! class probabilities).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use nabla::Backend;
use nabla::checkpoint;
use nabla::data::metrics::{predicted_classes, probabilities};
use nabla::data::prep::Schema;
use nabla::data::{Features, Prep, Task, csv, folder, idx};
use nabla::mnist::PIXELS;
use nabla::model::Model;
use nabla::train::{class_probabilities, outputs_of_inputs};

use super::{Common, load_mnist, saved_prep};

/// `nabla predict`'s options.
#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub common: Common,
    /// The model to use.
    #[arg(long, default_value = "runs/model.safetensors")]
    model: PathBuf,
    /// New samples: a CSV table (read by the columns the model was trained on; others are ignored), a
    /// PNG image, a directory of PNGs, or a directory of IDX files (its test images, named 0, 1, …). The predictions are written as CSV: per sample its class and
    /// the class probabilities, or its predicted values.
    #[arg(long, conflicts_with_all = ["index", "image"])]
    input: Option<PathBuf>,
    /// Where to write --input's predictions (CSV; default: standard output).
    #[arg(long, requires = "input")]
    output: Option<PathBuf>,
    /// An MNIST test-set image index.
    #[arg(long, conflicts_with = "image")]
    index: Option<usize>,
    /// A 28×28 PNG digit, white on black as in MNIST (see --invert).
    #[arg(long)]
    image: Option<PathBuf>,
    /// The PNG is dark ink on a light background: invert it.
    #[arg(long)]
    invert: bool,
    /// Pixels kept as 0–255: for models saved by nabla before checkpoints recorded their input scaling.
    #[arg(long)]
    no_normalise: bool,
}

/// Predicts as the options say.
pub fn run<B: Backend>(b: &B, args: &PredictArgs) -> Result<()> {
    let saved = checkpoint::load(b, &args.model, 0)?;
    let prep = saved_prep(&saved, args.no_normalise);
    let model = saved.model;
    if let Some(input) = &args.input {
        let (names, features) = read_samples(input, &prep)?;
        let x = prep.inputs(&features);
        let out = outputs_of_inputs(b, &model, &x, prep.shape.len(), 1000)?;
        let csv = predictions_csv(&prep, &names, out);
        return match &args.output {
            Some(path) => {
                checkpoint::write_atomically(path, csv.as_bytes())?;
                eprintln!("{} predictions written to {}", names.len(), path.display());
                Ok(())
            }
            None => {
                print!("{csv}");
                Ok(())
            }
        };
    }
    digit(b, args, &model, &prep)
}

/// The samples at `path` as the model reads them, each with a name for the output: row numbers for a
/// table, file names for images.
fn read_samples(path: &Path, prep: &Prep) -> Result<(Vec<String>, Features)> {
    if let Schema::Table(columns) = &prep.schema {
        if !csv::is_csv(path) {
            bail!("{}: the model reads CSV tables", path.display());
        }
        let values = csv::load_inputs(path, columns)?;
        let rows = values.len() / prep.shape.len();
        return Ok((
            (1..=rows).map(|r| r.to_string()).collect(),
            Features::Floats(values),
        ));
    }
    if path.is_dir() && idx::is_idx_dir(path) {
        // A directory of IDX files: its test images, named by their index from 0.
        let (_, test) = idx::load_dir(path)?;
        if test.shape.len() != prep.shape.len() {
            bail!(
                "{}: the images are {}, but the model takes {}",
                path.display(),
                test.shape,
                prep.shape
            );
        }
        return Ok((
            (0..test.len()).map(|i| i.to_string()).collect(),
            test.features,
        ));
    }
    if prep.schema != Schema::Images {
        bail!(
            "{}: predictions from files are for models of tables or images; this one was trained on \
             arrays",
            path.display()
        );
    }
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no PNG images in the directory", path.display());
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut pixels = Vec::with_capacity(files.len() * prep.shape.len());
    for file in &files {
        let (shape, bytes) = folder::read_png(file)?;
        if shape.len() != prep.shape.len() {
            bail!(
                "{}: the image is {shape}, but the model takes {}",
                file.display(),
                prep.shape
            );
        }
        pixels.extend(bytes);
    }
    let names = files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok((names, Features::Bytes(pixels)))
}

/// A CSV field, quoted where it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One line per sample: its name, then the class and each class's probability (softmax, or the
/// sigmoid for a binary model: the probability of the second class), or the predicted values.
fn predictions_csv(prep: &Prep, names: &[String], mut out: Vec<f32>) -> String {
    let width = prep.outputs();
    let mut csv = String::from("sample");
    match prep.task {
        Task::Classify | Task::Binary => {
            csv.push_str(",class");
            for n in &prep.names {
                csv.push_str(&format!(",{}", field(&format!("p_{n}"))));
            }
        }
        Task::Regress => {
            for n in &prep.names {
                csv.push_str(&format!(",{}", field(n)));
            }
        }
    }
    csv.push('\n');
    let classes = predicted_classes(&out, width);
    let probabilities = probabilities(&out, width);
    prep.outputs_to_targets(&mut out);
    let per_row = width.max(2);
    for (i, (name, row)) in names.iter().zip(out.chunks_exact(width)).enumerate() {
        csv.push_str(&field(name));
        if prep.task == Task::Regress {
            row.iter().for_each(|v| csv.push_str(&format!(",{v}")));
        } else {
            csv.push_str(&format!(",{}", field(&prep.names[classes[i] as usize])));
            probabilities[i * per_row..(i + 1) * per_row]
                .iter()
                .for_each(|p| csv.push_str(&format!(",{p}")));
        }
        csv.push('\n');
    }
    csv
}

/// Classifies one MNIST test image or 28×28 digit PNG and prints the digit and class probabilities.
fn digit<B: Backend>(b: &B, args: &PredictArgs, model: &Model<B>, prep: &Prep) -> Result<()> {
    if prep.shape.len() != PIXELS || prep.task != Task::Classify || prep.names.len() != 10 {
        bail!(
            "--index and --image classify MNIST digits; this model takes {} ({} task): give its \
             samples with --input",
            prep.shape,
            prep.task.name()
        );
    }
    let (pixels, truth) = match (&args.image, args.index) {
        (Some(path), _) => (read_digit(path, args.invert)?, None),
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
        (None, None) => bail!(
            "say what to predict: --input FILE (a table, a PNG or a folder), --index N (an MNIST test \
             image) or --image FILE.png (a digit)"
        ),
    };
    let probs = pollster::block_on(class_probabilities(b, model, prep, &pixels))?;
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

/// Reads a 28×28 PNG digit as grayscale bytes (see [`nabla::png_digit`]).
fn read_digit(path: &Path, invert: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(nabla::png_digit::decode(path, &bytes, invert)?)
}

//! MNIST: validating and loading the IDX files.
//!
//! Each file is checked before it is read (magic number, counts, 28×28 shape, exact size, labels
//! 0–9), so a truncated or corrupt file is a clear [`Error::Data`], never a panic; the checked files are
//! then read through the `mnist` crate.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layers::Shape;
use crate::model::ModelSpec;

/// Image side length.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Images in the training set.
pub const TRAIN_LEN: usize = 60_000;
/// Images in the test set.
pub const TEST_LEN: usize = 10_000;

/// The four files, as the data directory holds them.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Refuses a model that cannot classify MNIST: its input must be the 784 pixels, flat or as one
/// 1×28×28 image, and its output the 10 classes' logits.
pub fn check_model(spec: &ModelSpec) -> Result<()> {
    let takes_images =
        spec.input == Shape::flat(PIXELS) || spec.input == Shape::image(1, SIDE, SIDE);
    let outputs = spec.outputs();
    if !takes_images || outputs != CLASSES {
        return Err(Error::Invalid(format!(
            "MNIST needs a model that takes {PIXELS} pixels (`input {PIXELS}` or `input 1x{SIDE}x{SIDE}`) \
             and gives {CLASSES} outputs; `{}` takes {} and gives {outputs} (end with dense {CLASSES})",
            spec.describe(),
            spec.input
        )));
    }
    Ok(())
}

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// One split of MNIST: `len` images of [`PIXELS`] bytes (0 = background, 255 = ink) and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// Row-major pixel bytes, `len · 784`.
    pub images: Vec<u8>,
    /// Digits 0–9.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A split from the bytes of an IDX image file and an IDX label file (as a browser fetches them),
    /// checked as [`Mnist::load`] checks files; the names name them in errors.
    pub fn from_idx(
        images_name: &str,
        images: &[u8],
        labels_name: &str,
        labels: &[u8],
    ) -> Result<Split> {
        let n_images = check_images(Path::new(images_name), images)?;
        let n_labels = check_labels(Path::new(labels_name), labels)?;
        if n_images != n_labels {
            return Err(data_error(
                Path::new(labels_name),
                format!("{n_labels} labels for {n_images} images in {images_name}"),
            ));
        }
        Ok(Split {
            images: images[16..].to_vec(),
            labels: labels[8..].to_vec(),
        })
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn truncated(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.images.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }

    /// Splits off the images from `at` on (all of them if `at` is 0, none if it is past the end),
    /// leaving the first `at` here.
    pub fn split_off(&mut self, at: usize) -> Split {
        let at = at.min(self.len());
        Split {
            images: self.images.split_off(at * PIXELS),
            labels: self.labels.split_off(at),
        }
    }

    /// Image `i` as floats, normalised to [0, 1] (`normalise`) or kept as 0–255.
    pub fn image(&self, i: usize, normalise: bool) -> Vec<f32> {
        let scale = if normalise { 1.0 / 255.0 } else { 1.0 };
        self.images[i * PIXELS..(i + 1) * PIXELS]
            .iter()
            .map(|&p| f32::from(p) * scale)
            .collect()
    }

    /// Label `i` one-hot encoded.
    pub fn one_hot(&self, i: usize) -> [f32; CLASSES] {
        let mut t = [0.0; CLASSES];
        t[usize::from(self.labels[i])] = 1.0;
        t
    }
}

impl crate::train::ToSamples for Split {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn store<B: crate::Backend>(&self, b: &B, prep: &crate::data::Prep) -> Result<B::Dataset> {
        let labels: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        let (scale, shift) = prep.byte_scale();
        b.dataset(&crate::backend::Samples::bytes(
            &self.images,
            PIXELS,
            &labels,
            scale,
            shift,
        ))
    }
}

/// A 28×28 image as 28 lines of text, darker pixels drawn with denser characters.
pub fn ascii_art(image: &[u8]) -> String {
    const RAMP: &[u8] = b" .:-=+*#%@";
    image
        .chunks(SIDE)
        .map(|row| {
            row.iter()
                .map(|&p| RAMP[usize::from(p) * (RAMP.len() - 1) / 255] as char)
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The training and test splits.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60 000 training images.
    pub train: Split,
    /// 10 000 test images.
    pub test: Split,
}

fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks that `bytes` start with an IDX header of `header` bytes carrying `magic`.
fn check_header(path: &Path, bytes: &[u8], header: usize, magic: u32, kind: &str) -> Result<()> {
    if bytes.len() < header {
        return Err(data_error(
            path,
            format!(
                "{} bytes is too short for an IDX {kind} header ({header})",
                bytes.len()
            ),
        ));
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(data_error(
            path,
            format!("magic number {found:#010x} is not an IDX {kind} file's {magic:#010x}"),
        ));
    }
    Ok(())
}

/// Checks an IDX image file's bytes: magic 0x803, 28×28 images, size exactly 16 + n·784.
/// Returns the image count n.
pub fn check_images(path: &Path, bytes: &[u8]) -> Result<usize> {
    check_header(path, bytes, 16, IMAGES_MAGIC, "image")?;
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    if rows != SIDE || cols != SIDE {
        return Err(data_error(
            path,
            format!("images are {rows}×{cols}, expected {SIDE}×{SIDE}"),
        ));
    }
    let expected = 16 + n * PIXELS;
    if bytes.len() != expected {
        return Err(data_error(
            path,
            format!(
                "{} bytes, but a header promising {n} images needs {expected}: the file is {}",
                bytes.len(),
                if bytes.len() < expected {
                    "truncated"
                } else {
                    "too long"
                }
            ),
        ));
    }
    Ok(n)
}

/// Checks an IDX label file's bytes: magic 0x801, size exactly 8 + n, every label 0–9. Returns n.
pub fn check_labels(path: &Path, bytes: &[u8]) -> Result<usize> {
    check_header(path, bytes, 8, LABELS_MAGIC, "label")?;
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(data_error(
            path,
            format!(
                "{} bytes, but a header promising {n} labels needs {}",
                bytes.len(),
                8 + n
            ),
        ));
    }
    if let Some(i) = bytes[8..].iter().position(|&l| usize::from(l) >= CLASSES) {
        return Err(data_error(
            path,
            format!("label {i} is {}, not a digit 0–9", bytes[8 + i]),
        ));
    }
    Ok(n)
}

/// Checks a pair of image and label files and that they agree in count; returns the count.
pub fn check_pair(images: &Path, labels: &Path) -> Result<usize> {
    let n_images = check_images(images, &read_file(images)?)?;
    let n_labels = check_labels(labels, &read_file(labels)?)?;
    if n_images != n_labels {
        return Err(data_error(
            labels,
            format!(
                "{n_labels} labels for {n_images} images in {}",
                images.display()
            ),
        ));
    }
    Ok(n_images)
}

/// The four files' paths in `dir`.
pub fn paths(dir: &Path) -> [PathBuf; 4] {
    FILES.map(|f| dir.join(f))
}

impl Mnist {
    /// Validates and loads the four IDX files in `dir`.
    pub fn load(dir: &Path) -> Result<Mnist> {
        let [train_images, train_labels, test_images, test_labels] = paths(dir);
        for (images, labels, expected) in [
            (&train_images, &train_labels, TRAIN_LEN),
            (&test_images, &test_labels, TEST_LEN),
        ] {
            let n = check_pair(images, labels)?;
            if n != expected {
                return Err(data_error(
                    images,
                    format!("{n} images, but MNIST has {expected} here"),
                ));
            }
        }
        let base = dir.to_str().ok_or_else(|| {
            data_error(
                dir,
                "the data directory's path is not valid UTF-8; move the data elsewhere",
            )
        })?;
        // The files passed every check the `mnist` crate asserts, so it cannot panic on them.
        let m = mnist::MnistBuilder::new()
            .base_path(base)
            .label_format_digit()
            .training_set_length(TRAIN_LEN as u32)
            .validation_set_length(0)
            .test_set_length(TEST_LEN as u32)
            .finalize();
        Ok(Mnist {
            train: Split {
                images: m.trn_img,
                labels: m.trn_lbl,
            },
            test: Split {
                images: m.tst_img,
                labels: m.tst_lbl,
            },
        })
    }
}

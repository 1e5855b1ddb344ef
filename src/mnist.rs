//! MNIST, one source among the data sets of [`crate::data`]: its four IDX files (fetched by
//! [`crate::fetch`]), checked as MNIST's (28×28 images, digits 0–9, 60 000 and 10 000 of them) on top of
//! [`crate::data::idx`]'s checks of any IDX file, so a truncated or corrupt file is a clear
//! [`Error::Data`], never a panic; the checked files are then read through the `mnist` crate.

use std::path::{Path, PathBuf};

use crate::data::idx;
use crate::error::{Error, Result};
use crate::layers::Shape;

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
pub const FILES: [&str; 4] = idx::FILES;

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

/// Checks an IDX image file's bytes as MNIST's ([`idx::check_images`], and 28×28 single-channel
/// images). Returns the image count.
pub fn check_images(path: &Path, bytes: &[u8]) -> Result<usize> {
    let (n, shape, _) = idx::check_images(path, bytes)?;
    if shape != Shape::image(1, SIDE, SIDE) {
        return Err(data_error(
            path,
            format!(
                "images are {}×{} (of {} channel(s)), expected {SIDE}×{SIDE}",
                shape.height, shape.width, shape.channels
            ),
        ));
    }
    Ok(n)
}

/// Checks an IDX label file's bytes as MNIST's ([`idx::check_labels`], every label a digit 0–9).
/// Returns the label count.
pub fn check_labels(path: &Path, bytes: &[u8]) -> Result<usize> {
    let labels = idx::check_labels(path, bytes)?;
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        return Err(data_error(
            path,
            format!("label {i} is {}, not a digit 0–9", labels[i]),
        ));
    }
    Ok(labels.len())
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

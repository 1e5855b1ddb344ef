//! Folders of PNG images: `dir/<class>/*.png`, one folder per class, or `dir/train/<class>/*.png` and
//! `dir/test/<class>/*.png` for a set with its own test split.
//!
//! Classes are the folders' names in sorted order; each class's images are read in sorted file-name
//! order. Every image must have the same size and channel count. Hidden entries (names starting with
//! `.`) are skipped; any other file that is not a `.png` is an error, so a stray file is never silently
//! dropped from the set.

use std::path::{Path, PathBuf};

use super::csv::data_error;
use super::{Dataset, Features, MAX_CLASSES, Targets};
use crate::error::{Error, Result};
use crate::layers::{MAX_TENSOR_VALUES, Shape};

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |cause| Error::Io { path, cause }
}

/// Decodes the PNG at `path` into channel-first bytes (`C×H×W`): grey and grey+alpha images give 1
/// channel, RGB, RGBA and palette images 3. Alpha is dropped (not composited): the colour channels are
/// kept as stored. 16-bit samples keep their high byte; 1-, 2- and 4-bit samples are scaled to 0–255.
pub fn read_png(path: &Path) -> Result<(Shape, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| data_error(path, format!("not a readable PNG image: {e}")))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    let (color, _) = reader.output_color_type();
    let samples = color.samples();
    let channels = if samples <= 2 { 1 } else { 3 };
    let shape = Shape::image(channels, height, width);
    let size = shape
        .checked_len()
        .and_then(|_| width.checked_mul(height)?.checked_mul(samples))
        .filter(|&n| n <= MAX_TENSOR_VALUES)
        .ok_or_else(|| data_error(path, format!("the image is {width}×{height}: too large")))?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(size).max(size)];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| data_error(path, format!("corrupt PNG: {e}")))?;
    let pixels = buf
        .get(..frame.buffer_size())
        .filter(|p| frame.color_type.samples() == samples && p.len() == size)
        .ok_or_else(|| data_error(path, "the PNG decoded to an unexpected size"))?;
    let mut out = Vec::with_capacity(shape.len());
    for c in 0..channels {
        out.extend(pixels.chunks_exact(samples).map(|px| px[c]));
    }
    Ok((shape, out))
}

/// A directory's entries, hidden ones skipped, sorted by name.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// The last component of `path` as text.
fn name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The class folders of `dir` (sorted), checked: no files beside them, between `at_least` and
/// [`MAX_CLASSES`] of them.
fn class_folders(dir: &Path, at_least: usize) -> Result<Vec<PathBuf>> {
    let paths = entries(dir)?;
    if paths.is_empty() {
        return Err(data_error(
            dir,
            "the directory is empty: put each class's PNG images in a folder named after the class \
             (DIR/cat/1.png, DIR/dog/1.png, …)",
        ));
    }
    if let Some(file) = paths.iter().find(|p| !p.is_dir()) {
        return Err(data_error(
            dir,
            format!(
                "`{}` lies beside the class folders: the directory must hold only one folder of PNG \
                 images per class",
                name(file)
            ),
        ));
    }
    match paths.len() {
        n if n < at_least => Err(data_error(
            dir,
            format!(
                "only one class folder (`{}`): classification needs at least two",
                name(&paths[0])
            ),
        )),
        n if n > MAX_CLASSES => Err(data_error(
            dir,
            format!("{n} class folders, more than the {MAX_CLASSES} classes nabla takes"),
        )),
        _ => Ok(paths),
    }
}

/// The PNG files of a class folder, sorted by name; anything else (hidden entries aside) is an error.
fn class_images(folder: &Path) -> Result<Vec<PathBuf>> {
    let paths = entries(folder)?;
    if let Some(other) = paths
        .iter()
        .find(|p| !p.is_file() || !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
    {
        return Err(data_error(
            other,
            "not a PNG image: a class folder must hold only .png files (hidden files are skipped)",
        ));
    }
    if paths.is_empty() {
        return Err(data_error(folder, "the class folder holds no PNG images"));
    }
    Ok(paths)
}

/// Images read so far: their shape and the file that set it, for naming in a mismatch.
#[derive(Default)]
struct Images {
    first: Option<(Shape, PathBuf)>,
    bytes: Vec<u8>,
    labels: Vec<u32>,
}

impl Images {
    /// Appends the image at `path` with label `class`; it must have the shape of the first image.
    fn push(&mut self, path: &Path, class: u32) -> Result<()> {
        let (shape, pixels) = read_png(path)?;
        match &self.first {
            None => self.first = Some((shape, path.to_path_buf())),
            Some((first, first_path)) if *first != shape => {
                return Err(data_error(
                    path,
                    format!(
                        "the image is {shape} (channels×height×width) but {} is {first}: every image \
                         must have the same size and channel count",
                        first_path.display()
                    ),
                ));
            }
            Some(_) => {}
        }
        self.bytes.extend_from_slice(&pixels);
        self.labels.push(class);
        Ok(())
    }

    /// Appends the images of each class folder in `folders`, labelled by `classes` (one per folder).
    fn push_classes(&mut self, folders: &[PathBuf], classes: &[u32]) -> Result<()> {
        for (folder, &class) in folders.iter().zip(classes) {
            for path in class_images(folder)? {
                self.push(&path, class)?;
            }
        }
        Ok(())
    }

    /// The set of the images read, its classes named `names`.
    fn into_dataset(self, names: Vec<String>) -> Result<Dataset> {
        let shape = self.first.map_or(Shape::flat(0), |(s, _)| s);
        Dataset::new(
            shape,
            Features::Bytes(self.bytes),
            Targets::Classes {
                labels: self.labels,
                names,
            },
        )
    }
}

/// Reads a set from class folders of PNG images (bytes, `C×H×W`), classes named by the sorted folder
/// names. If `dir` holds exactly the folders `train` and `test`, each of class folders, the second
/// value is the test part, labelled with the training part's classes (the test part may lack some
/// of them, but a class only the test part has is an error) and of the same image shape.
pub fn load(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let top = class_folders(dir, 2)?;
    let names: Vec<String> = top.iter().map(|p| name(p)).collect();
    let mut train = Images::default();
    if names != ["test", "train"] {
        let classes: Vec<u32> = (0..top.len() as u32).collect();
        train.push_classes(&top, &classes)?;
        return Ok((train.into_dataset(names)?, None));
    }
    let train_folders = class_folders(&top[1], 2)?;
    let test_folders = class_folders(&top[0], 1)?;
    let names: Vec<String> = train_folders.iter().map(|p| name(p)).collect();
    let test_classes = test_folders
        .iter()
        .map(|folder| {
            let class = name(folder);
            names.iter().position(|n| *n == class).map(|i| i as u32).ok_or_else(|| {
                data_error(
                    folder,
                    format!(
                        "the test part has class `{class}`, which the training part lacks (it has: \
                         {})",
                        names.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    let classes: Vec<u32> = (0..train_folders.len() as u32).collect();
    train.push_classes(&train_folders, &classes)?;
    let mut test = Images {
        first: train.first.clone(),
        ..Images::default()
    };
    test.push_classes(&test_folders, &test_classes)?;
    Ok((
        train.into_dataset(names.clone())?,
        Some(test.into_dataset(names)?),
    ))
}

//! IDX files (MNIST's format, and Fashion-MNIST's, KMNIST's, EMNIST's): images of any size and labels
//! of any class count. Every header is checked against the file's size before anything is read, so a
//! truncated or corrupt file is a clear [`Error::Data`], never a panic.
//!
//! An IDX file is a big-endian header (`0, 0, type, dims`, then one `u32` per dimension) followed by
//! the values; nabla reads type `0x08` (unsigned bytes). Images have 3 dimensions (`N, H, W`: one
//! channel) or 4 (`N, C, H, W`); labels have 1 (`N`).

use std::path::{Path, PathBuf};

use super::{Dataset, Features, Targets};
use crate::error::{Error, Result};
use crate::layers::Shape;

/// The file names of a training and a test split in a directory, as MNIST and its drop-in
/// replacements name them (each may also be gzipped, with `.gz` added).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The dimensions of an IDX file of unsigned bytes with `dims` dimensions (`kind` names it in
/// errors), checked against the file's size; the values start after the header.
fn header(path: &Path, bytes: &[u8], dims: &[usize], kind: &str) -> Result<(Vec<usize>, usize)> {
    if bytes.len() < 4 {
        return Err(data_error(
            path,
            format!(
                "{} bytes is too short for an IDX {kind} header",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    let (zero, kind_byte, ndim) = (magic >> 16, (magic >> 8) & 0xFF, (magic & 0xFF) as usize);
    if zero != 0 || !dims.contains(&ndim) {
        return Err(data_error(
            path,
            format!(
                "magic number {magic:#010x} is not an IDX {kind} file's (0x000008{:02x})",
                dims[0]
            ),
        ));
    }
    if kind_byte != 0x08 {
        return Err(data_error(
            path,
            format!(
                "IDX value type {kind_byte:#04x} is not unsigned bytes (0x08), which nabla reads"
            ),
        ));
    }
    let start = 4 + 4 * ndim;
    if bytes.len() < start {
        return Err(data_error(
            path,
            format!(
                "{} bytes is too short for an IDX {kind} header ({start})",
                bytes.len()
            ),
        ));
    }
    let shape: Vec<usize> = (0..ndim)
        .map(|d| be_u32(bytes, 4 + 4 * d) as usize)
        .collect();
    let values = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|v| v.checked_add(start));
    match values {
        Some(expected) if expected == bytes.len() => Ok((shape, start)),
        Some(expected) => Err(data_error(
            path,
            format!(
                "{} bytes, but a header promising {} needs {expected}: the file is {}",
                bytes.len(),
                shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join("×"),
                if bytes.len() < expected {
                    "truncated"
                } else {
                    "too long"
                }
            ),
        )),
        None => Err(data_error(path, "the header's dimensions overflow")),
    }
}

/// Checks an IDX image file's bytes; returns the image count, one image's shape (`1×H×W` or
/// `C×H×W`) and where the pixels start.
pub fn check_images(path: &Path, bytes: &[u8]) -> Result<(usize, Shape, usize)> {
    let (dims, start) = header(path, bytes, &[3, 4], "image")?;
    let shape = match dims[1..] {
        [h, w] => Shape::image(1, h, w),
        [c, h, w] => Shape::image(c, h, w),
        _ => unreachable!("header() allows 3 or 4 dimensions"),
    };
    if shape.is_empty() {
        return Err(data_error(
            path,
            format!("images of {shape} have no pixels"),
        ));
    }
    if shape
        .checked_len()
        .is_none_or(|n| n > crate::layers::MAX_TENSOR_VALUES)
    {
        return Err(data_error(path, format!("images of {shape} are too large")));
    }
    Ok((dims[0], shape, start))
}

/// Checks an IDX label file's bytes; returns the labels.
pub fn check_labels<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
    let (_, start) = header(path, bytes, &[1], "label")?;
    Ok(&bytes[start..])
}

/// A set from the bytes of an IDX image file and an IDX label file, with `classes` classes named
/// `0, 1, …` (every label must be below it); the names name the files in errors.
pub fn from_bytes(
    images_name: &Path,
    images: &[u8],
    labels_name: &Path,
    labels: &[u8],
    classes: usize,
) -> Result<Dataset> {
    let (n, shape, start) = check_images(images_name, images)?;
    let labels = check_labels(labels_name, labels)?;
    if labels.len() != n {
        return Err(data_error(
            labels_name,
            format!(
                "{} labels for {n} images in {}",
                labels.len(),
                images_name.display()
            ),
        ));
    }
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= classes) {
        return Err(data_error(
            labels_name,
            format!("label {i} is {}, not a class below {classes}", labels[i]),
        ));
    }
    Dataset::new(
        shape,
        Features::Bytes(images[start..].to_vec()),
        Targets::Classes {
            labels: labels.iter().map(|&l| u32::from(l)).collect(),
            names: (0..classes).map(|c| c.to_string()).collect(),
        },
    )
}

/// Reads `path`, or `path.gz` gunzipped where only that exists.
pub fn read_maybe_gzipped(path: &Path) -> Result<(PathBuf, Vec<u8>)> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |cause| Error::Io { path: p, cause }
    };
    if path.exists() {
        return Ok((path.to_path_buf(), std::fs::read(path).map_err(io(path))?));
    }
    let mut gz = path.as_os_str().to_os_string();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    if gz.exists() {
        let file = std::fs::File::open(&gz).map_err(io(&gz))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut bytes)
            .map_err(|e| data_error(&gz, format!("not a readable gzip file: {e}")))?;
        return Ok((gz, bytes));
    }
    Err(Error::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file (nor .gz)"),
    })
}

/// True when `dir` holds the four files of [`FILES`] (plain or gzipped).
pub fn is_idx_dir(dir: &Path) -> bool {
    FILES.iter().all(|f| {
        let p = dir.join(f);
        p.exists() || p.with_file_name(format!("{f}.gz")).exists()
    })
}

/// The training and test sets of an IDX directory ([`FILES`]). The class count is one more than the
/// largest label of either split, so both splits name the same classes.
pub fn load_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    let [ti, tl, si, sl] = FILES.map(|f| read_maybe_gzipped(&dir.join(f)));
    let (ti, tl, si, sl) = (ti?, tl?, si?, sl?);
    let max_label = |(p, b): &(PathBuf, Vec<u8>)| -> Result<usize> {
        Ok(check_labels(p, b)?
            .iter()
            .copied()
            .max()
            .map_or(0, usize::from))
    };
    let classes = max_label(&tl)?.max(max_label(&sl)?) + 1;
    let train = from_bytes(&ti.0, &ti.1, &tl.0, &tl.1, classes)?;
    let test = from_bytes(&si.0, &si.1, &sl.0, &sl.1, classes)?;
    if train.shape != test.shape {
        return Err(data_error(
            &si.0,
            format!(
                "test images are {} but training images are {}",
                test.shape, train.shape
            ),
        ));
    }
    Ok((train, test))
}

/// The bytes of an IDX image file holding `images` (`[N, C·H·W]` bytes of `shape`): 3 dimensions for
/// one channel, 4 otherwise. For tests and fixtures.
pub fn image_file(shape: Shape, images: &[u8]) -> Vec<u8> {
    let n = images.len() / shape.len().max(1);
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let dims: Vec<usize> = if c == 1 {
        vec![n, h, w]
    } else {
        vec![n, c, h, w]
    };
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(images);
    out
}

/// The bytes of an IDX label file holding `labels`. For tests and fixtures.
pub fn label_file(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

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

/// Encodes `width × height` pixels of 8-bit samples, row-major and interleaved as `color` lays them out
/// (one byte per pixel for grey, three for RGB), as a PNG file's bytes.
pub fn encode_png(
    width: u32,
    height: u32,
    color: png::ColorType,
    samples: &[u8],
) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(samples))
        .map_err(|e| Error::Invalid(format!("encoding a PNG failed: {e}")))?;
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use png::{BitDepth, ColorType};

    use super::*;

    /// A directory of fixtures, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("nabla-folder-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Writes `bytes` at `name` (folders created as needed).
        fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            path
        }

        /// Writes a PNG at `name`.
        fn png(&self, name: &str, png: Png) -> PathBuf {
            self.file(name, &png.encode())
        }

        /// The error message of loading the directory (or `sub` in it).
        fn error(&self, sub: &str) -> String {
            load(&self.0.join(sub)).unwrap_err().to_string()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A PNG to encode: size, colour type, depth, samples as stored (row-major, interleaved).
    struct Png {
        width: u32,
        height: u32,
        color: ColorType,
        depth: BitDepth,
        data: Vec<u8>,
        palette: Option<Vec<u8>>,
    }

    impl Png {
        fn new(width: u32, height: u32, color: ColorType, data: Vec<u8>) -> Self {
            Png {
                width,
                height,
                color,
                depth: BitDepth::Eight,
                data,
                palette: None,
            }
        }

        fn encode(self) -> Vec<u8> {
            let mut out = Vec::new();
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(self.color);
            encoder.set_depth(self.depth);
            if let Some(palette) = self.palette {
                encoder.set_palette(palette);
            }
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&self.data).unwrap();
            writer.finish().unwrap();
            out
        }
    }

    /// Image `id`'s value at channel `c`, row `y`, column `x`.
    fn value(id: usize, c: usize, y: usize, x: usize) -> u8 {
        ((id * 37 + c * 11 + y * 5 + x) % 256) as u8
    }

    /// A 5-wide, 7-high RGB image `id`, interleaved as a PNG stores it.
    fn rgb(id: usize) -> Png {
        let mut data = Vec::new();
        for y in 0..7 {
            for x in 0..5 {
                data.extend((0..3).map(|c| value(id, c, y, x)));
            }
        }
        Png::new(5, 7, ColorType::Rgb, data)
    }

    /// A 4-wide, 3-high grey image of `id`.
    fn grey(id: usize) -> Png {
        let data = (0..3)
            .flat_map(|y| (0..4).map(move |x| value(id, 0, y, x)))
            .collect();
        Png::new(4, 3, ColorType::Grayscale, data)
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn rgb_class_folders_load_channel_first_in_sorted_order() {
        let s = Scratch::new("rgb");
        // Written out of order: classes sort to bird, cat, dog and files by name ("10" before "9").
        let files = [
            ("dog/b.png", 0),
            ("dog/a.png", 1),
            ("cat/9.png", 2),
            ("cat/10.png", 3),
            ("cat/1.png", 4),
            ("bird/x.png", 5),
        ];
        for (name, id) in files {
            s.png(name, rgb(id));
        }
        s.file(".DS_Store", b"hidden");
        s.file("cat/.hidden.png", b"not even a PNG");
        let (set, test) = load(&s.0).unwrap();
        assert!(test.is_none());
        assert_eq!(set.shape, Shape::image(3, 7, 5));
        let order = [5, 4, 3, 2, 1, 0];
        let mut expected = Vec::new();
        for id in order {
            for c in 0..3 {
                for y in 0..7 {
                    expected.extend((0..5).map(|x| value(id, c, y, x)));
                }
            }
        }
        assert_eq!(set.features, Features::Bytes(expected));
        let targets = Targets::Classes {
            labels: vec![0, 1, 1, 1, 2, 2],
            names: names(&["bird", "cat", "dog"]),
        };
        assert_eq!(set.targets, targets);
    }

    #[test]
    fn grey_class_folders_have_one_channel() {
        let s = Scratch::new("grey");
        s.png("zero/a.png", grey(0));
        s.png("one/a.png", grey(1));
        s.png("one/b.PNG", grey(2));
        let (set, _) = load(&s.0).unwrap();
        assert_eq!(set.shape, Shape::image(1, 3, 4));
        let expected: Vec<u8> = [1, 2, 0]
            .iter()
            .flat_map(|&id| (0..3).flat_map(move |y| (0..4).map(move |x| value(id, 0, y, x))))
            .collect();
        assert_eq!(set.features, Features::Bytes(expected));
        assert_eq!(set.targets.names(), names(&["one", "zero"]));
    }

    #[test]
    fn png_depths_alpha_and_palettes() {
        let s = Scratch::new("kinds");
        let mut wide = Png::new(2, 1, ColorType::Grayscale, vec![0xAB, 0x12, 0x01, 0xFF]);
        wide.depth = BitDepth::Sixteen;
        assert_eq!(
            read_png(&s.png("16.png", wide)).unwrap(),
            (Shape::image(1, 1, 2), vec![0xAB, 0x01])
        );
        let mut bits = Png::new(8, 1, ColorType::Grayscale, vec![0b1010_0001]);
        bits.depth = BitDepth::One;
        let (_, pixels) = read_png(&s.png("1.png", bits)).unwrap();
        assert_eq!(pixels, [255, 0, 255, 0, 0, 0, 0, 255]);
        let rgba = Png::new(2, 1, ColorType::Rgba, vec![1, 2, 3, 0, 4, 5, 6, 255]);
        assert_eq!(
            read_png(&s.png("rgba.png", rgba)).unwrap(),
            (Shape::image(3, 1, 2), vec![1, 4, 2, 5, 3, 6])
        );
        let grey_alpha = Png::new(2, 1, ColorType::GrayscaleAlpha, vec![10, 0, 20, 99]);
        assert_eq!(
            read_png(&s.png("ga.png", grey_alpha)).unwrap(),
            (Shape::image(1, 1, 2), vec![10, 20])
        );
        let mut indexed = Png::new(3, 1, ColorType::Indexed, vec![1, 0, 1]);
        indexed.palette = Some(vec![10, 20, 30, 40, 50, 60]);
        assert_eq!(
            read_png(&s.png("palette.png", indexed)).unwrap(),
            (
                Shape::image(3, 1, 3),
                vec![40, 10, 40, 50, 20, 50, 60, 30, 60]
            )
        );
        let path = s.file("bad.png", b"\x89PNG\r\n\x1a\n garbage");
        let e = read_png(&path).unwrap_err().to_string();
        assert!(
            e.contains("bad.png") && e.contains("not a readable PNG image"),
            "{e}"
        );
        let mut cut = rgb(0).encode();
        cut.truncate(cut.len() - 20);
        let e = read_png(&s.file("cut.png", &cut)).unwrap_err().to_string();
        assert!(e.contains("cut.png") && e.contains("corrupt PNG"), "{e}");
    }

    #[test]
    fn train_and_test_folders_share_the_classes() {
        let s = Scratch::new("split");
        s.png("train/a/1.png", grey(0));
        s.png("train/b/1.png", grey(1));
        s.png("train/c/1.png", grey(2));
        s.png("test/c/1.png", grey(3));
        s.png("test/a/1.png", grey(4));
        let (train, test) = load(&s.0).unwrap();
        let test = test.unwrap();
        assert_eq!(train.targets.names(), names(&["a", "b", "c"]));
        let targets = Targets::Classes {
            labels: vec![0, 2],
            names: names(&["a", "b", "c"]),
        };
        assert_eq!(test.targets, targets);
        assert_eq!(test.shape, train.shape);
        s.png("test/d/1.png", grey(5));
        let e = s.error("");
        assert!(
            e.contains("class `d`, which the training part lacks (it has: a, b, c)"),
            "{e}"
        );
        std::fs::remove_dir_all(s.0.join("test/d")).unwrap();
        s.png("test/b/1.png", rgb(0));
        let e = s.error("");
        assert!(
            e.contains("test/b/1.png") && e.contains("is 3x7x5") && e.contains("is 1x3x4"),
            "{e}"
        );
    }

    #[test]
    fn bad_layouts_are_named() {
        let s = Scratch::new("layouts");
        std::fs::create_dir_all(s.0.join("empty")).unwrap();
        assert!(s.error("empty").contains("the directory is empty"));
        s.png("one/a/1.png", grey(0));
        assert!(s.error("one").contains("only one class folder (`a`)"));
        s.png("beside/a/1.png", grey(0));
        s.png("beside/b/1.png", grey(1));
        s.file("beside/labels.txt", b"");
        assert!(
            s.error("beside")
                .contains("`labels.txt` lies beside the class folders")
        );
        s.png("nopng/a/1.png", grey(0));
        s.file("nopng/b/.keep", b"");
        let e = s.error("nopng");
        assert!(
            e.contains("nopng/b") && e.contains("holds no PNG images"),
            "{e}"
        );
        s.png("other/a/1.png", grey(0));
        s.file("other/b/notes.txt", b"");
        let e = s.error("other");
        assert!(
            e.contains("other/b/notes.txt") && e.contains("not a PNG image"),
            "{e}"
        );
        s.png("nested/a/1.png", grey(0));
        s.png("nested/b/deeper/1.png", grey(0));
        assert!(
            s.error("nested")
                .contains("nested/b/deeper: not a PNG image")
        );
        s.png("corrupt/a/1.png", grey(0));
        s.file("corrupt/b/1.png", b"not a png");
        let e = s.error("corrupt");
        assert!(
            e.contains("corrupt/b/1.png") && e.contains("not a readable PNG"),
            "{e}"
        );
        let e = load(&s.0.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn mixed_sizes_and_channels_name_both_files() {
        let s = Scratch::new("mixed");
        s.png("sizes/a/1.png", grey(0));
        s.png(
            "sizes/b/1.png",
            Png::new(3, 4, ColorType::Grayscale, vec![0; 12]),
        );
        let e = s.error("sizes");
        assert!(
            e.contains("sizes/b/1.png: the image is 1x4x3 (channels×height×width) but ")
                && e.contains("sizes/a/1.png is 1x3x4"),
            "{e}"
        );
        s.png("channels/a/1.png", grey(0));
        s.png(
            "channels/a/2.png",
            Png::new(4, 3, ColorType::Rgb, vec![0; 36]),
        );
        s.png("channels/b/1.png", grey(1));
        let e = s.error("channels");
        assert!(
            e.contains("channels/a/2.png: the image is 3x3x4") && e.contains("is 1x3x4"),
            "{e}"
        );
    }

    #[test]
    fn too_many_classes_are_refused() {
        let s = Scratch::new("many");
        for c in 0..=MAX_CLASSES {
            std::fs::create_dir(s.0.join(c.to_string())).unwrap();
        }
        assert!(
            s.error("")
                .contains("10001 class folders, more than the 10000 classes")
        );
    }
}

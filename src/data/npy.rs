//! NumPy arrays: a `.npy` file of inputs with `--target` naming a `.npy` file of targets, or one `.npz`
//! archive (as `numpy.savez` or `numpy.savez_compressed` write it) holding the arrays `x` and `y`, and
//! optionally `x_test` and `y_test`, its own test split.
//!
//! The inputs `x` are `uint8` (image bytes) or `float32` (`float64` is converted), shaped `[N, F]`
//! (flat features), `[N, H, W]` (one-channel images) or `[N, C, H, W]` (channel-first images). The
//! targets `y` are `[N]` integers or bools (class labels `0..=max`, named `"0"`, `"1"`, …) or `[N]`
//! / `[N, T]` floats (values to regress). Arrays must be little-endian and C-ordered.
//!
//! The headers are parsed here (the format is a magic string, a version and a Python dict literal),
//! and the archive's zip directory is read with `flate2` for deflated members: NumPy's archives use
//! only stored and deflated members, so a general zip crate (and the compressors it brings in) is not
//! needed. Every size is checked against the file before anything is allocated for it.

use std::io::Read;
use std::path::Path;

use super::csv::data_error;
use super::{Dataset, Features, MAX_CLASSES, Targets};
use crate::error::{Error, Result};
use crate::layers::{MAX_TENSOR_VALUES, Shape};

/// True for `.npy` and `.npz` paths.
pub fn is_npy(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".npy") || name.ends_with(".npz")
}

/// Where an array comes from, to name it in errors: a file, or a member of an archive.
#[derive(Clone, Copy)]
struct Origin<'a> {
    path: &'a Path,
    /// The array's name (`x`, `y`, `x_test`, `y_test`).
    name: &'a str,
    in_archive: bool,
}

impl<'a> Origin<'a> {
    fn new(path: &'a Path, name: &'a str, in_archive: bool) -> Self {
        Origin {
            path,
            name,
            in_archive,
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> Error {
        if self.in_archive {
            data_error(self.path, format!("array `{}`: {reason}", self.name))
        } else {
            data_error(self.path, reason.to_string())
        }
    }
}

/// A little-endian unsigned integer of `n` bytes at `at`, if the bytes are there.
fn le(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(n)?)?;
    Some(b.iter().rev().fold(0, |v, &byte| v << 8 | u64::from(byte)))
}

/// What an array's elements are.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Bool,
    Unsigned,
    Signed,
    Float,
}

/// An element type nabla reads: its kind and size in bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Dtype {
    kind: Kind,
    size: usize,
}

/// The element type of a `descr` such as `<f4` or `|u1`.
fn dtype(descr: &str) -> std::result::Result<Dtype, String> {
    let unknown = || {
        format!(
            "dtype `{descr}` is not one nabla reads: inputs (x) may be uint8, float32 or float64, \
             targets (y) integers, bools, float32 or float64"
        )
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unknown)?;
    let kind = match chars.next() {
        Some('b') => Kind::Bool,
        Some('u') => Kind::Unsigned,
        Some('i') => Kind::Signed,
        Some('f') => Kind::Float,
        _ => return Err(unknown()),
    };
    let size: usize = chars.as_str().parse().map_err(|_| unknown())?;
    let known = match kind {
        Kind::Bool => size == 1,
        Kind::Unsigned | Kind::Signed => matches!(size, 1 | 2 | 4 | 8),
        Kind::Float => matches!(size, 4 | 8),
    };
    if !known || !matches!(order, '<' | '|' | '>') {
        return Err(unknown());
    }
    if order == '>' && size > 1 {
        return Err(format!(
            "dtype `{descr}` is big-endian: save the array little-endian (`a.astype('<{}')`)",
            &descr[1..]
        ));
    }
    Ok(Dtype { kind, size })
}

/// A value of the header's dict literal.
enum Value {
    Text(String),
    Flag(bool),
    Dims(Vec<usize>),
}

/// A reader of the Python literals in a `.npy` header.
struct Literal<'a> {
    text: &'a [u8],
    at: usize,
}

impl Literal<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        self.text.get(self.at).copied()
    }

    /// Consumes `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        let next = self.peek() == Some(b);
        self.at += usize::from(next);
        next
    }

    /// A quoted string without escapes.
    fn string(&mut self) -> Option<String> {
        let quote = self.peek().filter(|q| matches!(q, b'\'' | b'"'))?;
        let rest = &self.text[self.at + 1..];
        let len = rest.iter().position(|&b| b == quote)?;
        let s = std::str::from_utf8(&rest[..len])
            .ok()
            .filter(|s| !s.contains('\\'))?;
        self.at += len + 2;
        Some(s.to_string())
    }

    /// A non-negative whole number (Python 2's `3L` included).
    fn number(&mut self) -> Option<usize> {
        self.peek()?;
        let digits = self.text[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let n = self.text[self.at..self.at + digits]
            .iter()
            .try_fold(0usize, |n, &d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            })?;
        self.at += digits;
        self.at += usize::from(self.text.get(self.at) == Some(&b'L'));
        Some(n)
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = self.text[self.at..].starts_with(word.as_bytes());
        if found {
            self.at += word.len();
        }
        found
    }

    /// A string, `True`, `False` or a tuple of whole numbers.
    fn value(&mut self) -> std::result::Result<Value, String> {
        let bad = || "the header's dict holds a value nabla cannot read".to_string();
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Text).ok_or_else(bad),
            Some(b'(') => {
                self.at += 1;
                let mut dims = Vec::new();
                while !self.eat(b')') {
                    dims.push(self.number().ok_or_else(bad)?);
                    if !self.eat(b',') && self.peek() != Some(b')') {
                        return Err(bad());
                    }
                }
                Ok(Value::Dims(dims))
            }
            Some(b'[') => Err(
                "the array has a structured dtype (named fields); nabla reads plain \
                               numbers: save each field as its own array"
                    .into(),
            ),
            _ if self.keyword("True") => Ok(Value::Flag(true)),
            _ if self.keyword("False") => Ok(Value::Flag(false)),
            _ => Err(bad()),
        }
    }
}

/// The `descr`, `fortran_order` and `shape` of a `.npy` header's dict literal.
fn header_dict(text: &[u8]) -> std::result::Result<(String, bool, Vec<usize>), String> {
    let mut lit = Literal { text, at: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    let not_dict = || {
        format!(
            "the header `{}` is not the dict of descr, fortran_order and shape that NumPy writes",
            String::from_utf8_lossy(&text[..text.len().min(200)]).trim_end()
        )
    };
    if !lit.eat(b'{') {
        return Err(not_dict());
    }
    while !lit.eat(b'}') {
        let key = lit.string().ok_or_else(not_dict)?;
        if !lit.eat(b':') {
            return Err(not_dict());
        }
        match (key.as_str(), lit.value()?) {
            ("descr", Value::Text(t)) if descr.is_none() => descr = Some(t),
            ("fortran_order", Value::Flag(f)) if fortran.is_none() => fortran = Some(f),
            ("shape", Value::Dims(d)) if shape.is_none() => shape = Some(d),
            _ => return Err(not_dict()),
        }
        if !lit.eat(b',') && lit.peek() != Some(b'}') {
            return Err(not_dict());
        }
    }
    if lit.peek().is_some() {
        return Err(not_dict());
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err(not_dict()),
    }
}

/// `dims` as Python writes a shape: `(3, 4)`, `(3,)`.
fn tuple(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A parsed `.npy` array: its element type, shape, and the file's bytes with the data from `start`.
struct Array {
    dtype: Dtype,
    descr: String,
    dims: Vec<usize>,
    bytes: Vec<u8>,
    start: usize,
}

impl Array {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The elements as `f32` (a float array's).
    fn floats(&self) -> Vec<f32> {
        match self.dtype.size {
            4 => self
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_bits(le(b, 0, 4).unwrap_or(0) as u32))
                .collect(),
            _ => self
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_bits(le(b, 0, 8).unwrap_or(0)) as f32)
                .collect(),
        }
    }

    /// The elements as integers (an integer or bool array's).
    fn integers(&self) -> impl Iterator<Item = i128> + '_ {
        let (size, signed) = (self.dtype.size, self.dtype.kind == Kind::Signed);
        self.data().chunks_exact(size).map(move |b| {
            let v = le(b, 0, size).unwrap_or(0);
            let shift = 64 - 8 * size as u32;
            if signed {
                i128::from(((v << shift) as i64) >> shift)
            } else {
                i128::from(v)
            }
        })
    }
}

/// Parses a `.npy` file's bytes, checking that the data is exactly what the header promises.
fn parse(origin: Origin, bytes: Vec<u8>) -> Result<Array> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err(origin.error(
            "not a NumPy .npy array: the file does not start with NumPy's magic string \\x93NUMPY",
        ));
    }
    let (major, minor) = (bytes.get(6).copied(), bytes.get(7).copied());
    let (len, at) = match major {
        Some(1) => (le(&bytes, 8, 2), 10),
        Some(2 | 3) => (le(&bytes, 8, 4), 12),
        Some(v) => {
            return Err(origin.error(format!(
                ".npy format version {v}.{} is not 1.0, 2.0 or 3.0",
                minor.unwrap_or(0)
            )));
        }
        None => (None, 0),
    };
    let header = len
        .and_then(|len| usize::try_from(len).ok()?.checked_add(at))
        .and_then(|end| Some((bytes.get(at..end)?, end)));
    let Some((header, start)) = header else {
        return Err(origin.error("the file ends inside its header: it is truncated"));
    };
    let (descr, fortran, dims) = header_dict(header).map_err(|e| origin.error(e))?;
    let dtype = dtype(&descr).map_err(|e| origin.error(e))?;
    if fortran {
        return Err(origin.error(
            "the array is stored in Fortran (column-major) order: save it C-ordered \
             (`np.save(path, np.ascontiguousarray(a))`)",
        ));
    }
    let need = dims.iter().try_fold(dtype.size, |n, &d| n.checked_mul(d));
    let have = bytes.len() - start;
    match need {
        None => Err(origin.error(format!("the header's shape {} overflows", tuple(&dims)))),
        Some(need) if need != have => Err(origin.error(format!(
            "{have} data bytes, but the header's shape {} of `{descr}` needs {need}: the file is {}",
            tuple(&dims),
            if have < need { "truncated" } else { "too long" }
        ))),
        Some(_) => Ok(Array {
            dtype,
            descr,
            dims,
            bytes,
            start,
        }),
    }
}

/// The inputs of `x`: one sample's shape, and the features.
fn features(origin: Origin, mut x: Array) -> Result<(Shape, Features)> {
    let shape = match x.dims[..] {
        [_, f] => Shape::flat(f),
        [_, h, w] => Shape::image(1, h, w),
        [_, h, w, c] if matches!(c, 1 | 3 | 4) && h > 4 && w > 4 => {
            return Err(origin.error(format!(
                "shape {} looks channel-last ([N, H, W, C]); nabla reads images channel-first: \
                 save `x.transpose(0, 3, 1, 2)`",
                tuple(&x.dims)
            )));
        }
        [_, c, h, w] => Shape::image(c, h, w),
        _ => {
            return Err(origin.error(format!(
                "the inputs have shape {}: nabla reads [N, F] (features), [N, H, W] (one-channel \
                 images) or [N, C, H, W] (channel-first images)",
                tuple(&x.dims)
            )));
        }
    };
    if x.dims[0] == 0 || shape.is_empty() {
        return Err(origin.error(format!(
            "the inputs have shape {}: no values",
            tuple(&x.dims)
        )));
    }
    if shape.checked_len().is_none_or(|n| n > MAX_TENSOR_VALUES) {
        return Err(origin.error(format!("samples of {shape} are too large")));
    }
    let features = match x.dtype {
        Dtype {
            kind: Kind::Unsigned,
            size: 1,
        } => {
            x.bytes.drain(..x.start);
            Features::Bytes(x.bytes)
        }
        Dtype {
            kind: Kind::Float, ..
        } => {
            let values = x.floats();
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                let width = shape.len();
                return Err(origin.error(format!(
                    "sample {}, feature {} (flat index {i}) is {}: inputs must be finite float32 \
                     numbers",
                    i / width,
                    i % width,
                    values[i]
                )));
            }
            Features::Floats(values)
        }
        _ => {
            return Err(origin.error(format!(
                "the inputs have dtype `{}`: nabla reads uint8 (images) or float32/float64",
                x.descr
            )));
        }
    };
    Ok((shape, features))
}

/// The targets of `y`, one per sample of `n`.
fn targets(origin: Origin, y: &Array, n: usize) -> Result<Targets> {
    if y.dims.first() != Some(&n) {
        return Err(origin.error(format!(
            "the targets have shape {} but the inputs hold {n} samples",
            tuple(&y.dims)
        )));
    }
    if y.dtype.kind == Kind::Float {
        let names = match y.dims[..] {
            [_] => vec!["y".to_string()],
            [_, t] if t > 0 => (0..t).map(|i| format!("y{i}")).collect(),
            _ => {
                return Err(origin.error(format!(
                    "float targets have shape {}: nabla reads [N] or [N, T]",
                    tuple(&y.dims)
                )));
            }
        };
        let values = y.floats();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let t = names.len();
            return Err(origin.error(format!(
                "sample {}, target {} is {}: targets must be finite float32 numbers",
                i / t,
                i % t,
                values[i]
            )));
        }
        return Ok(Targets::Values { values, names });
    }
    if !matches!(y.dims[..], [_] | [_, 1]) {
        return Err(origin.error(format!(
            "class labels have shape {}: nabla reads [N] (or [N, 1])",
            tuple(&y.dims)
        )));
    }
    let mut labels = Vec::with_capacity(n);
    for (i, label) in y.integers().enumerate() {
        if label < 0 {
            return Err(origin.error(format!(
                "sample {i} has label {label}: class labels count from 0"
            )));
        }
        if label >= MAX_CLASSES as i128 {
            return Err(origin.error(format!(
                "sample {i} has label {label}, which makes more than {MAX_CLASSES} classes: for \
                 values to regress, save the targets as floats"
            )));
        }
        labels.push(label as u32);
    }
    let classes = if y.dtype.kind == Kind::Bool {
        labels.iter_mut().for_each(|l| *l = u32::from(*l != 0));
        2
    } else {
        labels.iter().max().map_or(0, |&m| m as usize + 1)
    };
    Ok(Targets::Classes {
        labels,
        names: (0..classes).map(|c| c.to_string()).collect(),
    })
}

/// A set of inputs `x` and targets `y`.
fn dataset(x_origin: Origin, x: Array, y_origin: Origin, y: Array) -> Result<Dataset> {
    let n = x.dims.first().copied().unwrap_or(0);
    let (shape, features) = features(x_origin, x)?;
    let targets = targets(y_origin, &y, n)?;
    Dataset::new(shape, features, targets).map_err(|e| x_origin.error(e))
}

/// A member of a zip archive, as its central directory describes it.
struct Member {
    name: String,
    flags: u64,
    method: u64,
    crc: u64,
    packed: u64,
    size: u64,
    offset: u64,
}

/// The members of the zip archive `zip`, from its central directory (zip64 included).
fn members(path: &Path, zip: &[u8]) -> Result<Vec<Member>> {
    let bad = |why: &str| data_error(path, format!("not a readable .npz (zip) archive: {why}"));
    let lowest = zip.len().saturating_sub(22 + 0xFFFF);
    let end = (lowest..=zip.len().saturating_sub(22))
        .rev()
        .find(|&at| le(zip, at, 4) == Some(0x0605_4b50))
        .ok_or_else(|| bad("no end of central directory record"))?;
    let field = |at, n| le(zip, end + at, n).ok_or_else(|| bad("the end record is truncated"));
    let (mut count, mut dir_at) = (field(10, 2)?, field(16, 4)?);
    if count == 0xFFFF || dir_at == 0xFFFF_FFFF {
        let record = end
            .checked_sub(20)
            .filter(|&at| le(zip, at, 4) == Some(0x0706_4b50))
            .and_then(|at| usize::try_from(le(zip, at + 8, 8)?).ok())
            .filter(|&at| le(zip, at, 4) == Some(0x0606_4b50))
            .ok_or_else(|| bad("the zip64 end record is missing or corrupt"))?;
        let field = |at| le(zip, record.saturating_add(at), 8);
        (count, dir_at) = field(32)
            .zip(field(48))
            .ok_or_else(|| bad("the zip64 end record is truncated"))?;
    }
    let mut at = usize::try_from(dir_at).unwrap_or(usize::MAX);
    let mut members = Vec::new();
    for _ in 0..count {
        let entry = zip
            .get(at..)
            .filter(|e| le(e, 0, 4) == Some(0x0201_4b50) && e.len() >= 46)
            .ok_or_else(|| bad("a central directory entry is missing or corrupt"))?;
        let f = |at, n| le(entry, at, n).unwrap_or(0);
        let (name_len, extra_len, comment_len) =
            (f(28, 2) as usize, f(30, 2) as usize, f(32, 2) as usize);
        let (name, extra) = entry
            .get(46..46 + name_len)
            .zip(entry.get(46 + name_len..46 + name_len + extra_len))
            .ok_or_else(|| bad("a central directory entry is truncated"))?;
        let mut member = Member {
            name: String::from_utf8_lossy(name).into_owned(),
            flags: f(8, 2),
            method: f(10, 2),
            crc: f(16, 4),
            packed: f(20, 4),
            size: f(24, 4),
            offset: f(42, 4),
        };
        zip64_sizes(extra, &mut member).ok_or_else(|| bad("a zip64 extra field is corrupt"))?;
        members.push(member);
        at = at.saturating_add(46 + name_len + extra_len + comment_len);
    }
    Ok(members)
}

/// Replaces the sizes and offset a directory entry marks as `0xFFFFFFFF` by those in its zip64 extra
/// field (`None` if that field is missing or short).
fn zip64_sizes(mut extra: &[u8], m: &mut Member) -> Option<()> {
    let mut wide: Vec<&mut u64> = [&mut m.size, &mut m.packed, &mut m.offset]
        .into_iter()
        .filter(|v| **v == 0xFFFF_FFFF)
        .collect();
    if wide.is_empty() {
        return Some(());
    }
    while let (Some(id), Some(len)) = (le(extra, 0, 2), le(extra, 2, 2)) {
        let data = extra.get(4..4 + len as usize)?;
        if id == 1 {
            for (i, v) in wide.iter_mut().enumerate() {
                **v = le(data, 8 * i, 8)?;
            }
            return Some(());
        }
        extra = &extra[4 + len as usize..];
    }
    None
}

/// The unpacked bytes of `member`, checked against its size and CRC.
fn unpack(path: &Path, zip: &[u8], member: &Member) -> Result<Vec<u8>> {
    let bad = |why: String| data_error(path, format!("member `{}`: {why}", member.name));
    if member.flags & 1 != 0 {
        return Err(bad("it is encrypted".into()));
    }
    let data = usize::try_from(member.offset)
        .ok()
        .and_then(|at| zip.get(at..))
        .filter(|local| le(local, 0, 4) == Some(0x0403_4b50))
        .and_then(|local| {
            let skip = 30 + le(local, 26, 2)? as usize + le(local, 28, 2)? as usize;
            local
                .get(skip..)?
                .get(..usize::try_from(member.packed).ok()?)
        })
        .ok_or_else(|| bad("its data is missing: the archive is truncated or corrupt".into()))?;
    let mut out = Vec::new();
    match member.method {
        0 => out.extend_from_slice(data),
        8 => {
            flate2::read::DeflateDecoder::new(data)
                .take(member.size.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
        }
        m => {
            return Err(bad(format!(
                "compression method {m} is not stored (0) or deflate (8), which NumPy writes"
            )));
        }
    }
    if out.len() as u64 != member.size {
        return Err(bad(format!(
            "it unpacks to {} bytes where the directory says {}",
            out.len(),
            member.size
        )));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if u64::from(crc.sum()) != member.crc {
        return Err(bad("its CRC does not match: the archive is corrupt".into()));
    }
    Ok(out)
}

/// Reads a set from NumPy arrays; returns it, its own test part (a `.npz` with `x_test` and
/// `y_test`), and whether the inputs are bytes. A `.npy` file holds the inputs and `targets` must
/// name one `.npy` file of targets; a `.npz` archive holds both, and `targets` must be empty.
pub fn load(path: &Path, targets: &[String]) -> Result<(Dataset, Option<Dataset>, bool)> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|cause| Error::Io {
            path: p.to_path_buf(),
            cause,
        })
    };
    let bytes = read(path)?;
    let (set, test) = if path
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".npz")
    {
        if !targets.is_empty() {
            return Err(data_error(
                path,
                "a .npz archive holds its own targets (array `y`): drop --target",
            ));
        }
        load_archive(path, &bytes)?
    } else {
        let [y_path] = targets else {
            return Err(data_error(
                path,
                format!(
                    "give the labels' .npy with --target FILE (one file; {} given)",
                    targets.len()
                ),
            ));
        };
        let y_path = Path::new(y_path);
        let (x_origin, y_origin) = (
            Origin::new(path, "x", false),
            Origin::new(y_path, "y", false),
        );
        let x = parse(x_origin, bytes)?;
        let y = parse(y_origin, read(y_path)?)?;
        (dataset(x_origin, x, y_origin, y)?, None)
    };
    let bytes = matches!(set.features, Features::Bytes(_));
    Ok((set, test, bytes))
}

/// The set in a `.npz` archive's bytes, and its own test part.
fn load_archive(path: &Path, zip: &[u8]) -> Result<(Dataset, Option<Dataset>)> {
    let members = members(path, zip)?;
    let origin = |name| Origin::new(path, name, true);
    let array = |name: &'static str| -> Result<Option<Array>> {
        let file = format!("{name}.npy");
        match members.iter().find(|m| m.name == file) {
            Some(m) => Ok(Some(parse(origin(name), unpack(path, zip, m)?)?)),
            None => Ok(None),
        }
    };
    let required = |name: &'static str| {
        array(name)?.ok_or_else(|| {
            let held: Vec<&str> = members
                .iter()
                .map(|m| m.name.strip_suffix(".npy").unwrap_or(&m.name))
                .collect();
            data_error(
                path,
                format!(
                    "the archive has no array `{name}` (it holds: {}): save the inputs as x and \
                     the targets as y, `np.savez(path, x=inputs, y=targets)`",
                    held.join(", ")
                ),
            )
        })
    };
    let mut set = dataset(origin("x"), required("x")?, origin("y"), required("y")?)?;
    let mut test = match (array("x_test")?, array("y_test")?) {
        (Some(x), Some(y)) => dataset(origin("x_test"), x, origin("y_test"), y)?,
        (None, None) => return Ok((set, None)),
        _ => {
            return Err(data_error(
                path,
                "the archive has one of `x_test` and `y_test` but not the other: give both or \
                 neither",
            ));
        }
    };
    if test.shape != set.shape
        || std::mem::discriminant(&test.features) != std::mem::discriminant(&set.features)
    {
        let kind = |f: &Features| match f {
            Features::Bytes(_) => "uint8",
            Features::Floats(_) => "float",
        };
        return Err(origin("x_test").error(format!(
            "test samples are {} {} but training samples (x) are {} {}",
            kind(&test.features),
            test.shape,
            kind(&set.features),
            set.shape
        )));
    }
    match (&mut set.targets, &mut test.targets) {
        (Targets::Classes { names: a, .. }, Targets::Classes { names: b, .. }) => {
            let longest = if a.len() >= b.len() {
                a.clone()
            } else {
                b.clone()
            };
            (*a, *b) = (longest.clone(), longest);
        }
        (Targets::Values { names: a, .. }, Targets::Values { names: b, .. }) if a == b => {}
        _ => {
            let kind = |t: &Targets| match t {
                Targets::Classes { .. } => "class labels".to_string(),
                Targets::Values { names, .. } => format!("{} float target(s)", names.len()),
            };
            return Err(origin("y_test").error(format!(
                "the test targets are {} but the training targets (y) are {}",
                kind(&test.targets),
                kind(&set.targets)
            )));
        }
    }
    Ok((set, Some(test)))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    /// A directory of fixtures, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(test: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("nabla-npy-{}-{test}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Little-endian fields `(value, bytes)` appended to `out`.
    fn put(out: &mut Vec<u8>, fields: &[(u64, usize)]) {
        for &(v, n) in fields {
            out.extend_from_slice(&v.to_le_bytes()[..n]);
        }
    }

    /// A `.npy` file of format `version` with the header dict `dict`, then `data`.
    fn npy_with(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let len_bytes = if version == 1 { 2 } else { 4 };
        let mut header = dict.as_bytes().to_vec();
        header.extend(std::iter::repeat_n(
            b' ',
            63 - (8 + len_bytes + header.len()) % 64,
        ));
        header.push(b'\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        put(&mut out, &[(header.len() as u64, len_bytes)]);
        out.extend(header);
        out.extend_from_slice(data);
        out
    }

    /// A `.npy` file (format 1.0) of `descr` and `dims` holding `data`, as `numpy.save` writes it.
    fn npy(descr: &str, dims: &[usize], data: &[u8]) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
            tuple(dims)
        );
        npy_with(1, &dict, data)
    }

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn f64s(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn i64s(values: &[i64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A zip archive of `members`, deflated or stored; with `zip64`, its directory entries and end
    /// record use the zip64 extensions.
    fn zip(members: &[(&str, Vec<u8>)], deflate: bool, zip64: bool) -> Vec<u8> {
        const WIDE: u64 = 0xFFFF_FFFF;
        let (mut out, mut dir) = (Vec::new(), Vec::new());
        for (name, data) in members {
            let name = format!("{name}.npy");
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let packed = if deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.clone()
            };
            let method = if deflate { 8 } else { 0 };
            let (crc, size, offset) = (u64::from(crc.sum()), data.len() as u64, out.len() as u64);
            let sizes = [(crc, 4), (packed.len() as u64, 4), (size, 4)];
            put(
                &mut out,
                &[(0x0403_4b50, 4), (20, 2), (0, 2), (method, 2), (0, 4)],
            );
            put(&mut out, &sizes);
            put(&mut out, &[(name.len() as u64, 2), (0, 2)]);
            out.extend(name.as_bytes());
            out.extend(packed.iter());
            put(
                &mut dir,
                &[
                    (0x0201_4b50, 4),
                    (20, 2),
                    (20, 2),
                    (0, 2),
                    (method, 2),
                    (0, 4),
                ],
            );
            if zip64 {
                put(&mut dir, &[(crc, 4), (WIDE, 4), (WIDE, 4)]);
                put(
                    &mut dir,
                    &[(name.len() as u64, 2), (28, 2), (0, 2), (0, 8), (WIDE, 4)],
                );
                dir.extend(name.as_bytes());
                put(
                    &mut dir,
                    &[(1, 2), (24, 2), (size, 8), (packed.len() as u64, 8)],
                );
                put(&mut dir, &[(offset, 8)]);
            } else {
                put(&mut dir, &sizes);
                put(
                    &mut dir,
                    &[(name.len() as u64, 2), (0, 2), (0, 2), (0, 8), (offset, 4)],
                );
                dir.extend(name.as_bytes());
            }
        }
        let (count, dir_at, dir_len) = (members.len() as u64, out.len() as u64, dir.len() as u64);
        out.extend(dir);
        if zip64 {
            let record = out.len() as u64;
            put(
                &mut out,
                &[(0x0606_4b50, 4), (44, 8), (45, 2), (45, 2), (0, 8)],
            );
            put(
                &mut out,
                &[(count, 8), (count, 8), (dir_len, 8), (dir_at, 8)],
            );
            put(&mut out, &[(0x0706_4b50, 4), (0, 4), (record, 8), (1, 4)]);
            put(
                &mut out,
                &[(0x0605_4b50, 4), (0, 4), (0xFFFF, 2), (0xFFFF, 2)],
            );
            put(&mut out, &[(WIDE, 4), (WIDE, 4), (0, 2)]);
        } else {
            put(
                &mut out,
                &[(0x0605_4b50, 4), (0, 4), (count, 2), (count, 2)],
            );
            put(&mut out, &[(dir_len, 4), (dir_at, 4), (0, 2)]);
        }
        out
    }

    /// Loads `x` with `--target` naming `y` (both `.npy` files' bytes).
    fn load_pair(test: &str, x: &[u8], y: &[u8]) -> Result<(Dataset, Option<Dataset>, bool)> {
        let s = Scratch::new(test);
        let y_path = s.file("y.npy", y).to_string_lossy().into_owned();
        load(&s.file("x.npy", x), &[y_path])
    }

    /// The error message of loading `x` with targets `y`.
    fn pair_error(test: &str, x: &[u8], y: &[u8]) -> String {
        load_pair(test, x, y).unwrap_err().to_string()
    }

    fn load_npz(test: &str, zip: &[u8]) -> Result<(Dataset, Option<Dataset>, bool)> {
        let s = Scratch::new(test);
        load(&s.file("set.npz", zip), &[])
    }

    fn classes(labels: &[u32], n: usize) -> Targets {
        Targets::Classes {
            labels: labels.to_vec(),
            names: (0..n).map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn byte_images_and_integer_labels() {
        let pixels: Vec<u8> = (0..12).collect();
        let x = npy("|u1", &[3, 2, 2], &pixels);
        let (set, test, bytes) =
            load_pair("bytes", &x, &npy("<i8", &[3], &i64s(&[2, 0, 1]))).unwrap();
        assert!(bytes && test.is_none());
        assert_eq!(set.shape, Shape::image(1, 2, 2));
        assert_eq!(set.features, Features::Bytes(pixels.clone()));
        assert_eq!(set.targets, classes(&[2, 0, 1], 3));
        let x = npy("|u1", &[1, 3, 2, 2], &pixels);
        let (set, _, _) = load_pair("chw", &x, &npy("|u1", &[1], &[0])).unwrap();
        assert_eq!(set.shape, Shape::image(3, 2, 2));
        assert_eq!(set.targets, classes(&[0], 1));
    }

    #[test]
    fn float_features_and_values() {
        let x = npy("<f4", &[2, 3], &f32s(&[1.0, -2.5, 3.0, 0.0, 1e-3, 7.0]));
        let (set, _, bytes) =
            load_pair("floats", &x, &npy("<f4", &[2], &f32s(&[0.5, -1.0]))).unwrap();
        assert!(!bytes);
        assert_eq!(set.shape, Shape::flat(3));
        assert_eq!(
            set.features,
            Features::Floats(vec![1.0, -2.5, 3.0, 0.0, 1e-3, 7.0])
        );
        let values = Targets::Values {
            values: vec![0.5, -1.0],
            names: vec!["y".into()],
        };
        assert_eq!(set.targets, values);
        let x = npy("<f8", &[2, 1], &f64s(&[0.25, 4.0]));
        let y = npy("<f8", &[2, 2], &f64s(&[1.0, 2.0, 3.0, 4.0]));
        let (set, _, _) = load_pair("doubles", &x, &y).unwrap();
        assert_eq!(set.features, Features::Floats(vec![0.25, 4.0]));
        let values = Targets::Values {
            values: vec![1.0, 2.0, 3.0, 4.0],
            names: vec!["y0".into(), "y1".into()],
        };
        assert_eq!(set.targets, values);
    }

    #[test]
    fn every_integer_and_bool_label_type() {
        let x = npy("|u1", &[3, 1], &[7, 8, 9]);
        let cases: [(&str, Vec<u8>); 7] = [
            ("|u1", vec![1, 0, 2]),
            ("|i1", vec![1, 0, 2]),
            ("<i2", vec![1, 0, 0, 0, 2, 0]),
            ("<u2", vec![1, 0, 0, 0, 2, 0]),
            (
                "<i4",
                [1i32, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                "<u4",
                [1u32, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                "<u8",
                [1u64, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ];
        for (descr, data) in cases {
            let (set, _, _) = load_pair(&descr[1..], &x, &npy(descr, &[3], &data)).unwrap();
            assert_eq!(set.targets, classes(&[1, 0, 2], 3), "{descr}");
        }
        let (set, _, _) = load_pair("bool", &x, &npy("|b1", &[3, 1], &[0, 0, 0])).unwrap();
        assert_eq!(set.targets, classes(&[0, 0, 0], 2));
    }

    #[test]
    fn header_versions_2_and_3() {
        for version in [2, 3] {
            let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }";
            let x = npy_with(version, dict, &[1, 2, 3, 4]);
            let y = npy_with(
                version,
                "{\"shape\": (2,), \"fortran_order\": False, \"descr\": '|b1'}",
                &[1, 0],
            );
            let (set, _, _) = load_pair(&format!("v{version}"), &x, &y).unwrap();
            assert_eq!(set.targets, classes(&[1, 0], 2));
        }
    }

    #[test]
    fn archives_stored_deflated_and_zip64_with_a_test_split() {
        let members = [
            ("x", npy("<f4", &[2, 2], &f32s(&[1.0, 2.0, 3.0, 4.0]))),
            ("y", npy("<i8", &[2], &i64s(&[0, 1]))),
            ("x_test", npy("<f4", &[1, 2], &f32s(&[5.0, 6.0]))),
            ("y_test", npy("<i8", &[1], &i64s(&[2]))),
        ];
        for (deflate, zip64) in [(false, false), (true, false), (false, true), (true, true)] {
            let name = format!("npz-{deflate}-{zip64}");
            let (set, test, bytes) = load_npz(&name, &zip(&members, deflate, zip64)).unwrap();
            assert!(!bytes);
            assert_eq!(set.features, Features::Floats(vec![1.0, 2.0, 3.0, 4.0]));
            assert_eq!(
                set.targets,
                classes(&[0, 1], 3),
                "both parts name every class"
            );
            let test = test.unwrap();
            assert_eq!((test.shape, test.len()), (Shape::flat(2), 1));
            assert_eq!(test.targets, classes(&[2], 3));
        }
        let (_, test, _) = load_npz("npz-no-test", &zip(&members[..2], true, false)).unwrap();
        assert!(test.is_none());
    }

    #[test]
    fn targets_are_given_one_way_only() {
        let s = Scratch::new("targets-given");
        let x = s.file("x.npy", &npy("|u1", &[1, 1], &[0]));
        for targets in [vec![], vec!["a.npy".to_string(), "b.npy".to_string()]] {
            let e = load(&x, &targets).unwrap_err().to_string();
            assert!(
                e.contains("give the labels' .npy with --target FILE"),
                "{e}"
            );
        }
        let members = [
            ("x", npy("|u1", &[1, 1], &[0])),
            ("y", npy("|u1", &[1], &[0])),
        ];
        let npz = s.file("set.NPZ", &zip(&members, false, false));
        let e = load(&npz, &["y.npy".into()]).unwrap_err().to_string();
        assert!(e.contains("drop --target"), "{e}");
    }

    #[test]
    fn archives_missing_arrays_are_refused() {
        let x = ("x", npy("|u1", &[1, 1], &[0]));
        let y = ("y", npy("|u1", &[1], &[0]));
        let e = load_npz("no-y", &zip(std::slice::from_ref(&x), false, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no array `y` (it holds: x)"), "{e}");
        let half = [x.clone(), y.clone(), ("x_test", x.1.clone())];
        let e = load_npz("half-test", &zip(&half, false, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("one of `x_test` and `y_test`"), "{e}");
        let wide = [
            x.clone(),
            y.clone(),
            ("x_test", npy("|u1", &[1, 2], &[0, 0])),
            ("y_test", y.1.clone()),
        ];
        let e = load_npz("test-shape", &zip(&wide, false, false))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "array `x_test`: test samples are uint8 2 but training samples (x) are uint8 1"
            ),
            "{e}"
        );
        let kinds = [
            x.clone(),
            y,
            ("x_test", x.1),
            ("y_test", npy("<f4", &[1], &f32s(&[0.5]))),
        ];
        let e = load_npz("test-kind", &zip(&kinds, false, false))
            .unwrap_err()
            .to_string();
        assert!(e.contains("array `y_test`: the test targets are 1 float target(s) but the training targets (y) are class labels"), "{e}");
    }

    #[test]
    fn corrupt_archives_are_refused() {
        let members = [
            ("x", npy("|u1", &[1, 1], &[0])),
            ("y", npy("|u1", &[1], &[0])),
        ];
        let good = zip(&members, false, false);
        let e = load_npz("not-zip", b"PK but not really")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no end of central directory record"), "{e}");
        let mut flipped = good.clone();
        flipped[100] ^= 0xFF;
        let e = load_npz("crc", &flipped).unwrap_err().to_string();
        assert!(e.contains("CRC does not match"), "{e}");
        let e = load_npz("cut", &good[good.len() / 2..])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a readable .npz"), "{e}");
    }

    #[test]
    fn dtypes_and_orders_nabla_does_not_read_are_named() {
        let y = npy("|u1", &[1], &[0]);
        let cases = [
            (npy("<i4", &[1, 1], &[0; 4]), "the inputs have dtype `<i4`"),
            (
                npy("<c8", &[1, 1], &[0; 8]),
                "dtype `<c8` is not one nabla reads",
            ),
            (npy(">f4", &[1, 1], &[0; 4]), "dtype `>f4` is big-endian"),
            (
                npy("<f2", &[1, 1], &[0; 2]),
                "dtype `<f2` is not one nabla reads",
            ),
            (
                npy_with(
                    1,
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }",
                    &[0; 4],
                ),
                "Fortran (column-major) order",
            ),
            (
                npy_with(
                    1,
                    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                    &[0; 4],
                ),
                "structured dtype",
            ),
        ];
        for (i, (x, message)) in cases.iter().enumerate() {
            let e = pair_error(&format!("dtype-{i}"), x, &y);
            assert!(e.contains(message), "{e}");
        }
        let x = npy("|u1", &[1, 1], &[0]);
        let e = pair_error("y-complex", &x, &npy("<c16", &[1], &[0; 16]));
        assert!(e.contains("y.npy") && e.contains("dtype `<c16`"), "{e}");
    }

    #[test]
    fn headers_and_sizes_are_checked() {
        let y = npy("|u1", &[2], &[0, 1]);
        let good = npy("|u1", &[2, 2], &[1, 2, 3, 4]);
        let mut version = good.clone();
        version[6] = 4;
        let huge = usize::MAX / 4;
        let cases = [
            (b"\x93NUMPX\x01\x00".to_vec(), "magic string"),
            (version, "version 4.0 is not 1.0, 2.0 or 3.0"),
            (good[..9].to_vec(), "ends inside its header"),
            (good[..40].to_vec(), "ends inside its header"),
            (
                good[..good.len() - 1].to_vec(),
                "3 data bytes, but the header's shape (2, 2) of `|u1` needs 4: the file is truncated",
            ),
            ([&good[..], &[0]].concat(), "the file is too long"),
            (npy("|u1", &[1 << 60, 1], &[0; 4]), "the file is truncated"),
            (
                npy("<f4", &[huge, 4], &[0; 4]),
                "the header's shape (4611686018427387903, 4) overflows",
            ),
            (
                npy_with(1, "{'descr': '|u1', 'shape': (2, 2), }", &[0; 4]),
                "not the dict of descr",
            ),
            (
                npy_with(
                    1,
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
                    &[0; 4],
                ),
                "cannot read",
            ),
            (
                npy_with(
                    1,
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999999, 2), }",
                    &[0; 4],
                ),
                "cannot read",
            ),
            (
                npy_with(
                    1,
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), } junk",
                    &[0; 4],
                ),
                "not the dict of descr",
            ),
        ];
        for (i, (x, message)) in cases.iter().enumerate() {
            let e = pair_error(&format!("header-{i}"), x, &y);
            assert!(e.contains("x.npy") && e.contains(message), "case {i}: {e}");
        }
    }

    #[test]
    fn shapes_nabla_does_not_read_are_refused() {
        let y = npy("|u1", &[2], &[0, 1]);
        let cases = [
            (npy("|u1", &[2], &[0, 0]), "shape (2,): nabla reads [N, F]"),
            (
                npy("|u1", &[2, 1, 1, 1, 1], &[0, 0]),
                "shape (2, 1, 1, 1, 1): nabla reads",
            ),
            (npy("|u1", &[2, 8, 8, 3], &[0; 384]), "looks channel-last"),
            (npy("|u1", &[2, 0], &[]), "shape (2, 0): no values"),
            (npy("|u1", &[0, 3], &[]), "shape (0, 3): no values"),
        ];
        for (i, (x, message)) in cases.iter().enumerate() {
            let e = pair_error(&format!("shape-{i}"), x, &y);
            assert!(e.contains(message), "{e}");
        }
        let x = npy("|u1", &[2, 1], &[0, 0]);
        let cases = [
            (
                npy("|u1", &[3], &[0, 1, 2]),
                "the targets have shape (3,) but the inputs hold 2 samples",
            ),
            (
                npy("|u1", &[2, 2], &[0; 4]),
                "class labels have shape (2, 2)",
            ),
            (
                npy("<f4", &[2, 1, 1], &[0; 8]),
                "float targets have shape (2, 1, 1)",
            ),
            (npy("<f4", &[2, 0], &[]), "float targets have shape (2, 0)"),
        ];
        for (i, (y, message)) in cases.iter().enumerate() {
            let e = pair_error(&format!("y-shape-{i}"), &x, y);
            assert!(e.contains("y.npy") && e.contains(message), "{e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let y = npy("|u1", &[2], &[0, 1]);
        let x = npy("<f4", &[2, 3], &f32s(&[0.0, 1.0, 2.0, 3.0, 4.0, f32::NAN]));
        let e = pair_error("nan", &x, &y);
        assert!(
            e.contains("sample 1, feature 2 (flat index 5) is NaN"),
            "{e}"
        );
        let x = npy("<f8", &[2, 1], &f64s(&[0.0, 1e300]));
        let e = pair_error("f64-range", &x, &y);
        assert!(
            e.contains("sample 1, feature 0 (flat index 1) is inf"),
            "{e}"
        );
        let x = npy("|u1", &[2, 1], &[0, 0]);
        let e = pair_error(
            "y-inf",
            &x,
            &npy("<f4", &[2, 2], &f32s(&[0.0, 1.0, f32::NEG_INFINITY, 0.0])),
        );
        assert!(e.contains("sample 1, target 0 is -inf"), "{e}");
        let e = pair_error("negative", &x, &npy("<i8", &[2], &i64s(&[0, -1])));
        assert!(
            e.contains("sample 1 has label -1: class labels count from 0"),
            "{e}"
        );
        let e = pair_error(
            "many",
            &x,
            &npy("<i8", &[2], &i64s(&[0, MAX_CLASSES as i64])),
        );
        assert!(e.contains("more than 10000 classes"), "{e}");
    }
}

//! CSV tables (`.csv`, or gzipped `.csv.gz`): a header row, then one sample per row.
//!
//! The `--target` columns are what to predict; every other column is an input. A column is numeric
//! when its first value is a number, and every later value must then be one (finite); otherwise it is
//! text, and becomes one input per category (one-hot, categories in sorted order, kept in the
//! checkpoint so `predict` encodes new rows the same way). One numeric target of whole numbers, or a
//! text target, is a class label; other numeric targets are values to regress ([`super::Task`] can
//! convert either way). Numeric columns are parsed straight into the feature matrix, one pass over the
//! file, so loading holds little more than the f32 data.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::prep::Column;
use super::{Dataset, Features, Targets};
use crate::error::{Error, Result};
use crate::layers::Shape;

/// A data error about `path`.
pub(super) fn data_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// True for a path the CSV reader takes: `.csv` or `.csv.gz`.
pub fn is_csv(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// True for a gzipped file (`.gz`, any case).
fn gzipped(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

/// A CSV reader over `path`, gunzipping a `.gz` file.
fn reader(path: &Path) -> Result<csv::Reader<Box<dyn Read>>> {
    let file = std::fs::File::open(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    let input: Box<dyn Read> = if gzipped(path) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input))
}

/// The header's names, checked: at least one, none empty or repeated.
fn header(path: &Path, r: &mut csv::Reader<Box<dyn Read>>) -> Result<Vec<String>> {
    let names: Vec<String> = r
        .headers()
        .map_err(|e| read_error(path, &e))?
        .iter()
        .map(|n| n.trim().to_string())
        .collect();
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(data_error(
            path,
            "the file is empty: a CSV table needs a header row naming its columns, then one row per \
             sample",
        ));
    }
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() {
            return Err(data_error(
                path,
                format!("column {} has no name in the header", i + 1),
            ));
        }
        if names[..i].contains(n) {
            return Err(data_error(
                path,
                format!("column `{n}` is named twice in the header"),
            ));
        }
    }
    Ok(names)
}

/// A CSV error as a data error naming the line.
fn read_error(path: &Path, e: &csv::Error) -> Error {
    let line = e
        .position()
        .map(|p| format!("line {}: ", p.line()))
        .unwrap_or_default();
    let reason = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the text is not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    data_error(path, format!("{line}{reason}"))
}

/// The size of a table that is not gzipped.
fn uncompressed_size(path: &Path) -> Option<u64> {
    let gz = path.to_string_lossy().to_ascii_lowercase().ends_with(".gz");
    (!gz)
        .then(|| std::fs::metadata(path).ok().map(|m| m.len()))
        .flatten()
}

/// A finite number (surrounding spaces allowed), or `None`.
fn number(field: &[u8]) -> Option<f32> {
    let field = field.trim_ascii();
    let v: f32 = std::str::from_utf8(field).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// What a column holds, decided by its first value.
enum Kind {
    Numeric,
    /// Category indices in order of first appearance.
    Text(HashMap<String, u32>),
}

impl Kind {
    fn of(first: &[u8]) -> Kind {
        if std::str::from_utf8(first.trim_ascii())
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some()
        {
            Kind::Numeric
        } else {
            Kind::Text(HashMap::new())
        }
    }
}

/// Reads one field of `kind` into a number (a text column's category index as a number).
fn field(
    path: &Path,
    kind: &mut Kind,
    value: &[u8],
    row: usize,
    line: u64,
    name: &str,
) -> Result<f32> {
    if let (Kind::Numeric, Some(v)) = (&kind, number(value)) {
        return Ok(v);
    }
    let at = || format!("row {row} (line {line}), column `{name}`");
    let value = value.trim_ascii();
    if value.is_empty() {
        return Err(data_error(path, format!("{}: the value is missing", at())));
    }
    match kind {
        Kind::Numeric => number(value).ok_or_else(|| {
            let text = String::from_utf8_lossy(value);
            let why = match text.parse::<f64>() {
                Ok(_) => "is not a finite number",
                Err(_) => "is not a number, though the column's first value is",
            };
            data_error(path, format!("{}: `{text}` {why}", at()))
        }),
        Kind::Text(map) => {
            let text = std::str::from_utf8(value)
                .map_err(|_| data_error(path, format!("{}: the text is not UTF-8", at())))?;
            let next = map.len() as u32;
            Ok(*map.entry(text.to_string()).or_insert(next) as f32)
        }
    }
}

/// A table's columns as read: per input column its kind, and the targets.
struct Table {
    rows: usize,
    /// Numeric inputs in column order (text columns hold category indices here, expanded later).
    inputs: Vec<f32>,
    input_kinds: Vec<(String, Kind)>,
    targets: Vec<f32>,
    target_kinds: Vec<(String, Kind)>,
}

/// Reads `path` with `targets` naming the columns to predict.
fn read_table(path: &Path, targets: &[String]) -> Result<Table> {
    let mut r = reader(path)?;
    let names = header(path, &mut r)?;
    if targets.is_empty() {
        return Err(data_error(
            path,
            format!(
                "say which column to predict with --target (the columns are: {})",
                names.join(", ")
            ),
        ));
    }
    let mut is_target = vec![false; names.len()];
    for t in targets {
        let i = names.iter().position(|n| n == t).ok_or_else(|| {
            data_error(
                path,
                format!(
                    "no column `{t}` to predict; the columns are: {}",
                    names.join(", ")
                ),
            )
        })?;
        is_target[i] = true;
    }
    if is_target.iter().all(|&t| t) {
        return Err(data_error(
            path,
            "every column is a target: nothing is left to learn from",
        ));
    }
    let mut table = Table {
        rows: 0,
        inputs: Vec::new(),
        input_kinds: Vec::new(),
        targets: Vec::new(),
        target_kinds: Vec::new(),
    };
    let mut record = csv::ByteRecord::new();
    loop {
        match r.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(path, &e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        table.rows += 1;
        if table.rows == 1 {
            // Room for the whole table at the first row's size, so the matrix is not copied as it grows
            // (a gzipped file's size says nothing of its rows).
            if let Some(bytes) = uncompressed_size(path) {
                let row_bytes = record.as_slice().len() + record.len();
                let rows = (bytes as usize / row_bytes.max(1)) * 21 / 20;
                let targets = is_target.iter().filter(|&&t| t).count();
                table.inputs.reserve(rows * (names.len() - targets));
                table.targets.reserve(rows * targets);
            }
            for (i, (name, value)) in names.iter().zip(record.iter()).enumerate() {
                let column = (name.clone(), Kind::of(value));
                if is_target[i] {
                    table.target_kinds.push(column);
                } else {
                    table.input_kinds.push(column);
                }
            }
        }
        let (mut input, mut target) = (0, 0);
        for (i, value) in record.iter().enumerate() {
            let (kinds, out, k) = if is_target[i] {
                target += 1;
                (&mut table.target_kinds, &mut table.targets, target - 1)
            } else {
                input += 1;
                (&mut table.input_kinds, &mut table.inputs, input - 1)
            };
            let (name, kind) = &mut kinds[k];
            out.push(field(path, kind, value, table.rows, line, name)?);
        }
    }
    if table.rows == 0 {
        return Err(data_error(path, "the table has a header but no rows"));
    }
    table.inputs.shrink_to_fit();
    table.targets.shrink_to_fit();
    Ok(table)
}

/// Category names sorted, and each first-appearance index's place among them.
fn sorted_categories(map: &HashMap<String, u32>) -> (Vec<String>, Vec<u32>) {
    let mut names: Vec<(&String, u32)> = map.iter().map(|(k, &v)| (k, v)).collect();
    names.sort();
    let mut rank = vec![0u32; names.len()];
    for (r, (_, first)) in names.iter().enumerate() {
        rank[*first as usize] = r as u32;
    }
    (names.into_iter().map(|(k, _)| k.clone()).collect(), rank)
}

/// The input columns' schema and the features `[N, F]`: numeric columns as they are, text columns
/// one-hot over their sorted categories.
fn expand_inputs(table: &mut Table) -> (Vec<Column>, Vec<f32>) {
    let mut columns = Vec::new();
    let mut ranks = Vec::new();
    for (name, kind) in &table.input_kinds {
        match kind {
            Kind::Numeric => {
                columns.push(Column {
                    name: name.clone(),
                    categories: None,
                });
                ranks.push(None);
            }
            Kind::Text(map) => {
                let (names, rank) = sorted_categories(map);
                columns.push(Column {
                    name: name.clone(),
                    categories: Some(names),
                });
                ranks.push(Some(rank));
            }
        }
    }
    if ranks.iter().all(Option::is_none) {
        return (columns, std::mem::take(&mut table.inputs));
    }
    let width: usize = columns
        .iter()
        .map(|c| c.categories.as_ref().map_or(1, Vec::len))
        .sum();
    let mut features = Vec::with_capacity(table.rows * width);
    for row in table.inputs.chunks_exact(columns.len()) {
        for (&v, rank) in row.iter().zip(&ranks) {
            match rank {
                None => features.push(v),
                Some(rank) => {
                    let hot = rank[v as usize] as usize;
                    features.extend((0..rank.len()).map(|c| f32::from(u8::from(c == hot))));
                }
            }
        }
    }
    (columns, features)
}

/// The most distinct whole numbers a numeric target may hold to be read as classes; more are a value
/// to regress.
pub const MAX_NUMERIC_CLASSES: usize = 50;

/// True when `values` are whole numbers with at most [`MAX_NUMERIC_CLASSES`] distinct values.
fn whole_numbers_few(values: &[f32]) -> bool {
    if values.iter().any(|v| v.fract() != 0.0) {
        return false;
    }
    let mut distinct = values.to_vec();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    distinct.len() <= MAX_NUMERIC_CLASSES
}

/// The targets: one text column, or one numeric column of a few whole numbers, as classes; numeric
/// columns otherwise as values.
fn table_targets(path: &Path, table: &Table) -> Result<Targets> {
    let names: Vec<String> = table.target_kinds.iter().map(|(n, _)| n.clone()).collect();
    match &table.target_kinds[..] {
        [(_, Kind::Text(map))] => {
            let (names, rank) = sorted_categories(map);
            Ok(Targets::Classes {
                labels: table.targets.iter().map(|&v| rank[v as usize]).collect(),
                names,
            })
        }
        [(_, Kind::Numeric)] if whole_numbers_few(&table.targets) => super::prep::Task::Classify
            .convert(Targets::Values {
                values: table.targets.clone(),
                names,
            })
            .map_err(|e| match e {
                Error::Invalid(reason) => data_error(path, reason),
                e => e,
            }),
        kinds => {
            if let Some((n, _)) = kinds.iter().find(|(_, k)| matches!(k, Kind::Text(_))) {
                return Err(data_error(
                    path,
                    format!(
                        "target `{n}` is text; several targets must all be numbers (a regression)"
                    ),
                ));
            }
            Ok(Targets::Values {
                values: table.targets.clone(),
                names,
            })
        }
    }
}

/// Reads a table, `targets` naming the columns to predict; returns the set (flat features) and its
/// input columns.
pub fn load(path: &Path, targets: &[String]) -> Result<(Dataset, Vec<Column>)> {
    let mut table = read_table(path, targets)?;
    let targets = table_targets(path, &table)?;
    let (columns, features) = expand_inputs(&mut table);
    let width = features.len() / table.rows;
    let set = Dataset::new(Shape::flat(width), Features::Floats(features), targets)?;
    Ok((set, columns))
}

/// Reads a table whose inputs are to be encoded by given `columns` (a model's, or the training table's
/// for its test table): each found by name in any order, text columns one-hot over those columns'
/// categories; `targets` as [`load`] reads them. Two passes over the file.
pub fn load_by_columns(path: &Path, targets: &[String], columns: &[Column]) -> Result<Dataset> {
    let table = read_table(path, targets)?;
    let targets = table_targets(path, &table)?;
    drop(table);
    let features = load_inputs(path, columns)?;
    let width = columns
        .iter()
        .map(|c| c.categories.as_ref().map_or(1, Vec::len))
        .sum();
    Dataset::new(Shape::flat(width), Features::Floats(features), targets)
}

/// The rows of a table as the model's raw features (before scaling), read by the model's `columns`:
/// each found by its header name (other columns, the targets among them, are ignored), text columns
/// one-hot over the model's categories. A missing column or an unseen category is an error.
pub fn load_inputs(path: &Path, columns: &[Column]) -> Result<Vec<f32>> {
    let mut r = reader(path)?;
    let names = header(path, &mut r)?;
    let at: Vec<usize> = columns
        .iter()
        .map(|c| {
            names.iter().position(|n| n == &c.name).ok_or_else(|| {
                data_error(
                    path,
                    format!(
                        "no column `{}`; the columns needed are: {}",
                        c.name,
                        columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut features = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row = 0;
    loop {
        match r.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(path, &e)),
        }
        row += 1;
        let line = record.position().map_or(0, |p| p.line());
        for (c, &i) in columns.iter().zip(&at) {
            let value = &record[i];
            match &c.categories {
                None => features.push(field(path, &mut Kind::Numeric, value, row, line, &c.name)?),
                Some(categories) => {
                    let text = String::from_utf8_lossy(value.trim_ascii());
                    let hot = categories.iter().position(|k| *k == text).ok_or_else(|| {
                        data_error(
                            path,
                            format!(
                                "row {row} (line {line}), column `{}`: `{text}` is not one of the \
                                 categories the model was trained on ({})",
                                c.name,
                                categories.join(", ")
                            ),
                        )
                    })?;
                    features.extend((0..categories.len()).map(|k| f32::from(u8::from(k == hot))));
                }
            }
        }
    }
    if row == 0 {
        return Err(data_error(path, "the table has a header but no rows"));
    }
    Ok(features)
}

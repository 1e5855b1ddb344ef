//! Real tables with no download: the CSV files the `linfa-datasets` crate ships (a dev-dependency, so
//! cargo has unpacked it into its registry before any example or test runs). Shared by the examples
//! and, through `#[path]`, by the tests.

use std::path::{Path, PathBuf};

/// The version whose files the figures in README and BENCHMARKS were measured on.
const CRATE: &str = "linfa-datasets-0.8.1";

/// The directory of the crate's `.csv.gz` tables (winequality-red, iris, diabetes_data and
/// diabetes_target, linnerud_*), in cargo's registry (`$CARGO_HOME`, else `~/.cargo`).
pub fn linfa_data() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    let registry = home.join("registry/src");
    let found = std::fs::read_dir(&registry)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(CRATE).join("data"))
        .find(|d| d.join("winequality-red.csv.gz").exists());
    found.unwrap_or_else(|| {
        panic!(
            "{CRATE} is not unpacked under {}: `cargo fetch` (or any cargo test/example build) \
             brings it, as a dev-dependency",
            registry.display()
        )
    })
}

/// Wine quality (red): 1 599 wines, 11 measurements, and `quality` (3–8) to predict.
pub fn wine() -> PathBuf {
    linfa_data().join("winequality-red.csv.gz")
}

/// Iris: 150 flowers, 4 measurements, and `species` (0, 1, 2).
pub fn iris() -> PathBuf {
    linfa_data().join("iris.csv.gz")
}

/// Diabetes: 442 patients, 10 standardised measurements and the disease's progression a year later.
/// The crate ships the features and the target as two headerless files; this writes them as one table
/// with a header (sklearn's column names, target `progression`) into `dir` and returns its path.
pub fn diabetes(dir: &Path) -> PathBuf {
    let read = |name: &str| {
        let mut text = String::new();
        let file = std::fs::File::open(linfa_data().join(name)).expect("diabetes file");
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
            .expect("gzip");
        text
    };
    let (data, target) = (read("diabetes_data.csv.gz"), read("diabetes_target.csv.gz"));
    let mut csv = String::from("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,progression\n");
    for (row, t) in data.lines().zip(target.lines()) {
        csv.push_str(&format!("{row},{t}\n"));
    }
    std::fs::create_dir_all(dir).expect("directory");
    let path = dir.join("diabetes.csv");
    std::fs::write(&path, csv).expect("write diabetes.csv");
    path
}

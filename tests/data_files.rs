//! The data path at the library level: CSV tables (text columns, every kind of target, gzip), every bad
//! CSV input as a clear `Error::Data` naming the file, row and column, the task conversions, the
//! preprocessing fitted on the training part only and its JSON record, the seeded split, IDX files of
//! another size, and `data::open`'s choice of source and `--test` file. Every fixture is written by its
//! test into a directory of its own, removed when the test ends.

use std::io::Write;
use std::path::{Path, PathBuf};

use nabla::Error;
use nabla::data::prep::Column;
use nabla::data::{
    self, Dataset, Features, LoadOptions, MAX_CLASSES, Prep, Scaling, Schema, Targets, Task, csv,
    idx,
};
use nabla::layers::Shape;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A directory of fixtures for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("nabla-data-files-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// Writes `bytes` at `name` (folders created as needed) and returns the path.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `bytes` gzipped at `name`.
    fn gz(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        self.file(name, &e.finish().unwrap())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn targets(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts `result` is an `Error::Data` about `path` whose reason contains every one of `parts`;
/// returns the full message.
#[track_caller]
fn data_error<T: std::fmt::Debug>(result: nabla::Result<T>, path: &Path, parts: &[&str]) -> String {
    match result {
        Err(e @ Error::Data { .. }) => {
            let message = e.to_string();
            let Error::Data { path: p, reason } = &e else {
                unreachable!()
            };
            assert_eq!(p, path, "the error names another file: {message}");
            assert!(
                message.contains(&path.display().to_string()),
                "the message does not name the file: {message}"
            );
            for part in parts {
                assert!(reason.contains(part), "`{part}` not in: {message}");
            }
            message
        }
        other => panic!(
            "expected a data error about {}, got {other:?}",
            path.display()
        ),
    }
}

/// Asserts `result` is an `Error::Invalid` containing every one of `parts`.
#[track_caller]
fn invalid<T: std::fmt::Debug>(result: nabla::Result<T>, parts: &[&str]) {
    match result {
        Err(Error::Invalid(reason)) => {
            for part in parts {
                assert!(reason.contains(part), "`{part}` not in: {reason}");
            }
        }
        other => panic!("expected an invalid-value error, got {other:?}"),
    }
}

/// Reads a CSV table's features as floats.
fn floats(set: &Dataset) -> &[f32] {
    match &set.features {
        Features::Floats(v) => v,
        Features::Bytes(_) => panic!("a table's features are floats"),
    }
}

fn classes(labels: &[u32], names: &[&str]) -> Targets {
    Targets::Classes {
        labels: labels.to_vec(),
        names: targets(names),
    }
}

// ----- CSV tables -----

#[test]
fn csv_text_columns_are_one_hot_in_sorted_category_order() {
    let s = Scratch::new("one-hot");
    let path = s.file(
        "t.csv",
        b"a,colour,b,y\n1.5,red,-2,0\n2,blue,0.25,1\n-3,green,7,0\n0,red,1e2,1\n",
    );
    let (set, columns) = csv::load(&path, &targets(&["y"])).unwrap();
    assert_eq!(
        columns,
        vec![
            Column {
                name: "a".into(),
                categories: None
            },
            Column {
                name: "colour".into(),
                categories: Some(targets(&["blue", "green", "red"]))
            },
            Column {
                name: "b".into(),
                categories: None
            },
        ]
    );
    assert_eq!(set.shape, Shape::flat(5));
    #[rustfmt::skip]
    let want = [
        1.5, 0.0, 0.0, 1.0, -2.0,
        2.0, 1.0, 0.0, 0.0, 0.25,
        -3.0, 0.0, 1.0, 0.0, 7.0,
        0.0, 0.0, 0.0, 1.0, 100.0,
    ];
    assert_eq!(floats(&set), want);
    assert_eq!(set.targets, classes(&[0, 1, 0, 1], &["0", "1"]));
}

#[test]
fn csv_integer_targets_are_classes_named_by_value() {
    let s = Scratch::new("int-target");
    let path = s.file("t.csv", b"x,quality\n1,7\n2,3\n3,5\n4,7\n5,-1\n");
    let (set, _) = csv::load(&path, &targets(&["quality"])).unwrap();
    assert_eq!(
        set.targets,
        classes(&[3, 1, 2, 3, 0], &["-1", "3", "5", "7"])
    );
    // Text targets: classes in sorted order, whatever order they first appear in.
    let path = s.file("u.csv", b"x,kind\n1,pear\n2,apple\n3,fig\n4,apple\n");
    let (set, _) = csv::load(&path, &targets(&["kind"])).unwrap();
    assert_eq!(
        set.targets,
        classes(&[2, 0, 1, 0], &["apple", "fig", "pear"])
    );
}

#[test]
fn csv_float_targets_are_values_and_several_targets_a_multi_target_regression() {
    let s = Scratch::new("float-target");
    let path = s.file("t.csv", b"x,y\n1,0.5\n2,-1.25\n3,3\n");
    let (set, _) = csv::load(&path, &targets(&["y"])).unwrap();
    assert_eq!(
        set.targets,
        Targets::Values {
            values: vec![0.5, -1.25, 3.0],
            names: targets(&["y"])
        }
    );
    assert_eq!(floats(&set), [1.0, 2.0, 3.0]);

    // Several targets: values per row, one per target column (even whole numbers), the other columns
    // the inputs.
    let path = s.file(
        "m.csv",
        b"y1,x,y2,z\n1,10,0.5,-1\n2,20,1.5,-2\n3,30,2.5,-3\n",
    );
    let (set, columns) = csv::load(&path, &targets(&["y1", "y2"])).unwrap();
    assert_eq!(
        set.targets,
        Targets::Values {
            values: vec![1.0, 0.5, 2.0, 1.5, 3.0, 2.5],
            names: targets(&["y1", "y2"])
        }
    );
    assert_eq!(
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["x", "z"]
    );
    assert_eq!(floats(&set), [10.0, -1.0, 20.0, -2.0, 30.0, -3.0]);
    // The names always say which value is which, whatever order --target gives them in.
    let (set, _) = csv::load(&path, &targets(&["y2", "y1"])).unwrap();
    let Targets::Values { values, names } = &set.targets else {
        panic!("values expected")
    };
    let y1 = names.iter().position(|n| n == "y1").unwrap();
    let y2 = names.iter().position(|n| n == "y2").unwrap();
    assert_eq!([values[y1], values[y2]], [1.0, 0.5]);
    assert_eq!([values[2 + y1], values[2 + y2]], [2.0, 1.5]);
}

#[test]
fn csv_gz_is_read_as_the_same_table() {
    let s = Scratch::new("gz");
    let text = b"a,colour,y\n1,red,0.5\n2,blue,1.5\n3,green,-2\n4,red,7\n";
    let plain = s.file("t.csv", text);
    let gz = s.gz("t.csv.gz", text);
    assert!(csv::is_csv(&plain) && csv::is_csv(&gz));
    assert!(csv::is_csv(Path::new("T.CSV.GZ")));
    let want = csv::load(&plain, &targets(&["y"])).unwrap();
    assert_eq!(csv::load(&gz, &targets(&["y"])).unwrap(), want);
    let columns = want.1;
    assert_eq!(
        csv::load_inputs(&gz, &columns).unwrap(),
        csv::load_inputs(&plain, &columns).unwrap()
    );
}

// ----- bad CSV input: a clear data error naming the file, the row (line) and the column -----

#[test]
fn a_ragged_row_is_named_by_its_line() {
    let s = Scratch::new("ragged");
    let path = s.file("t.csv", b"a,b,y\n1,2,0\n3,4,1\n5,6\n7,8,0\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["line 4", "2 fields", "header has 3"],
    );
    let path = s.file("u.csv", b"a,b,y\n1,2,0\n3,4,1,9\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["line 3", "4 fields"],
    );
}

#[test]
fn a_value_that_is_not_a_number_is_named_by_row_and_column() {
    let s = Scratch::new("not-number");
    let path = s.file("t.csv", b"a,b,y\n1,2,0\n3,x7,1\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["row 2", "line 3", "column `b`", "`x7`", "not a number"],
    );
    // In a numeric target column too.
    let path = s.file("u.csv", b"a,y\n1,0.5\n2,0.25\n3,n/a\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["row 3", "line 4", "column `y`", "`n/a`"],
    );
}

#[test]
fn nan_and_inf_are_refused_by_row_and_column() {
    let s = Scratch::new("nan-inf");
    for (name, text, row, line, column, value) in [
        (
            "first-nan.csv",
            "a,y\nNaN,1\n2,0\n",
            "row 1",
            "line 2",
            "`a`",
            "`NaN`",
        ),
        (
            "later-nan.csv",
            "a,y\n1,1\n2,0\nnan,1\n",
            "row 3",
            "line 4",
            "`a`",
            "`nan`",
        ),
        (
            "inf.csv",
            "a,y\n1,1\ninf,0\n",
            "row 2",
            "line 3",
            "`a`",
            "`inf`",
        ),
        (
            "minus-inf.csv",
            "a,y\n1,1\n-inf,0\n",
            "row 2",
            "line 3",
            "`a`",
            "`-inf`",
        ),
        (
            "target-inf.csv",
            "a,y\n1,0.5\n2,inf\n",
            "row 2",
            "line 3",
            "`y`",
            "`inf`",
        ),
        (
            "overflow.csv",
            "a,y\n1,1\n1e39,0\n",
            "row 2",
            "line 3",
            "`a`",
            "`1e39`",
        ),
    ] {
        let path = s.file(name, text.as_bytes());
        data_error(
            csv::load(&path, &targets(&["y"])),
            &path,
            &[row, line, column, value, "not a finite number"],
        );
    }
}

#[test]
fn an_empty_file_and_a_header_without_rows_are_refused() {
    let s = Scratch::new("empty");
    let path = s.file("empty.csv", b"");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["the file is empty", "header row"],
    );
    let path = s.file("blank.csv", b"\n\n");
    data_error(csv::load(&path, &targets(&["y"])), &path, &["empty"]);
    let path = s.file("header.csv", b"a,b,y\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["header but no rows"],
    );
    // The same for rows to predict.
    let columns = vec![Column {
        name: "a".into(),
        categories: None,
    }];
    data_error(
        csv::load_inputs(&path, &columns),
        &path,
        &["header but no rows"],
    );
    let gz = s.gz("header.csv.gz", b"a,b,y\n");
    data_error(
        csv::load(&gz, &targets(&["y"])),
        &gz,
        &["header but no rows"],
    );
}

#[test]
fn a_missing_or_unknown_target_lists_the_columns() {
    let s = Scratch::new("target-names");
    let path = s.file("t.csv", b"alpha,beta,gamma\n1,2,3\n4,5,6\n");
    data_error(
        csv::load(&path, &[]),
        &path,
        &["--target", "alpha, beta, gamma"],
    );
    data_error(
        csv::load(&path, &targets(&["delta"])),
        &path,
        &["`delta`", "alpha, beta, gamma"],
    );
    // Every column a target: nothing is left to learn from.
    data_error(
        csv::load(&path, &targets(&["alpha", "beta", "gamma"])),
        &path,
        &["every column is a target"],
    );
    // Through `open`, as the command line reads it.
    let options = LoadOptions {
        targets: targets(&["Gamma"]),
        ..LoadOptions::default()
    };
    data_error(data::open(&path, &options), &path, &["`Gamma`", "gamma"]);
}

#[test]
fn a_target_with_one_class_is_refused() {
    let s = Scratch::new("one-class");
    let options = LoadOptions {
        targets: targets(&["y"]),
        task: Some(Task::Classify),
        ..LoadOptions::default()
    };
    let text = s.file("text.csv", b"x,y\n1,yes\n2,yes\n3,yes\n4,yes\n5,yes\n");
    data_error(
        data::open(&text, &options),
        &text,
        &["1 class", "at least two"],
    );
    let number = s.file("number.csv", b"x,y\n1,3\n2,3\n3,3\n4,3\n5,3\n");
    data_error(
        data::open(&number, &options),
        &number,
        &["1 class", "at least two"],
    );
}

#[test]
fn a_text_target_with_too_many_classes_is_refused() {
    let s = Scratch::new("many-classes");
    let mut text = String::from("x,id\n");
    for i in 0..=MAX_CLASSES {
        text.push_str(&format!("{i},item{i:05}\n"));
    }
    let path = s.file("t.csv", text.as_bytes());
    let options = LoadOptions {
        targets: targets(&["id"]),
        ..LoadOptions::default()
    };
    let message = data_error(
        data::open(&path, &options),
        &path,
        &["more than the", "--task regression"],
    );
    assert!(
        message.contains(&MAX_CLASSES.to_string()),
        "the limit is not named: {message}"
    );
    // As a regression the names are not numbers.
    let options = LoadOptions {
        task: Some(Task::Regress),
        ..options
    };
    data_error(data::open(&path, &options), &path, &["numeric targets"]);
}

#[test]
fn a_duplicate_or_empty_header_name_is_refused() {
    let s = Scratch::new("header-names");
    let path = s.file("t.csv", b"a,b,a,y\n1,2,3,0\n4,5,6,1\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["`a`", "named twice"],
    );
    let path = s.file("u.csv", b"a,,y\n1,2,0\n4,5,1\n");
    data_error(
        csv::load(&path, &targets(&["y"])),
        &path,
        &["column 2", "no name"],
    );
}

#[test]
fn an_empty_value_is_named_by_row_and_column() {
    let s = Scratch::new("empty-value");
    for (name, text, row, line, column) in [
        (
            "later.csv",
            "a,b,y\n1,2,0\n3,,1\n",
            "row 2",
            "line 3",
            "`b`",
        ),
        (
            "first.csv",
            "a,b,y\n,2,0\n3,4,1\n",
            "row 1",
            "line 2",
            "`a`",
        ),
        (
            "blank.csv",
            "a,b,y\n1,2,0\n3,  ,1\n",
            "row 2",
            "line 3",
            "`b`",
        ),
        (
            "text.csv",
            "a,c,y\n1,red,0\n3,,1\n",
            "row 2",
            "line 3",
            "`c`",
        ),
        (
            "target.csv",
            "a,b,y\n1,2,0\n3,4,\n",
            "row 2",
            "line 3",
            "`y`",
        ),
    ] {
        let path = s.file(name, text.as_bytes());
        data_error(
            csv::load(&path, &targets(&["y"])),
            &path,
            &[row, line, column, "missing"],
        );
    }
}

#[test]
fn a_text_value_in_a_multi_target_regression_is_refused() {
    let s = Scratch::new("text-multi");
    let path = s.file("t.csv", b"x,y1,y2\n1,2,red\n2,3,blue\n");
    data_error(
        csv::load(&path, &targets(&["y1", "y2"])),
        &path,
        &["`y2`", "text"],
    );
}

#[test]
fn rows_to_predict_are_read_by_the_model_columns() {
    let s = Scratch::new("load-inputs");
    let columns = vec![
        Column {
            name: "a".into(),
            categories: None,
        },
        Column {
            name: "colour".into(),
            categories: Some(targets(&["blue", "red"])),
        },
    ];
    // Other order, an extra column, no target.
    let path = s.file("rows.csv", b"colour,extra,a\nred,9,1.5\nblue,8,-2\n");
    assert_eq!(
        csv::load_inputs(&path, &columns).unwrap(),
        [1.5, 0.0, 1.0, -2.0, 1.0, 0.0]
    );
    let path = s.file("missing.csv", b"colour,b\nred,1\n");
    data_error(
        csv::load_inputs(&path, &columns),
        &path,
        &["no column `a`", "a, colour"],
    );
    let path = s.file("unseen.csv", b"a,colour\n1,red\n2,green\n");
    data_error(
        csv::load_inputs(&path, &columns),
        &path,
        &["row 2", "line 3", "`colour`", "`green`", "blue, red"],
    );
    let path = s.file("bad.csv", b"a,colour\n1,red\nNaN,red\n");
    data_error(
        csv::load_inputs(&path, &columns),
        &path,
        &["row 2", "`a`", "finite"],
    );
}

// ----- Task::convert -----

#[test]
fn classes_become_values_for_a_regression() {
    let t = Task::Regress
        .convert(classes(&[0, 1, 2, 1], &["1.5", "2", "-3"]))
        .unwrap();
    let Targets::Values { values, names } = t else {
        panic!("values expected")
    };
    assert_eq!(values, [1.5, 2.0, -3.0, 2.0]);
    assert_eq!(names.len(), 1);
    // Names that are not numbers are refused, and so are names that are not finite.
    invalid(
        Task::Regress.convert(classes(&[0, 1], &["cat", "dog"])),
        &["numeric targets", "--task classification"],
    );
    invalid(
        Task::Regress.convert(classes(&[0, 1], &["1", "inf"])),
        &["numeric targets"],
    );
    // Values stay values.
    let values = Targets::Values {
        values: vec![0.5, 1.5],
        names: targets(&["y"]),
    };
    assert_eq!(Task::Regress.convert(values.clone()).unwrap(), values);
}

#[test]
fn whole_number_values_become_classes() {
    let values = |v: &[f32]| Targets::Values {
        values: v.to_vec(),
        names: targets(&["y"]),
    };
    assert_eq!(
        Task::Classify
            .convert(values(&[2.0, 0.0, 2.0, 5.0, -1.0]))
            .unwrap(),
        classes(&[2, 1, 2, 3, 0], &["-1", "0", "2", "5"])
    );
    assert_eq!(
        Task::Binary.convert(values(&[1.0, 0.0, 0.0])).unwrap(),
        classes(&[1, 0, 0], &["0", "1"])
    );
    invalid(
        Task::Classify.convert(values(&[1.0, 2.5])),
        &["2.5", "--task regression"],
    );
    invalid(Task::Classify.convert(values(&[1.0, f32::NAN])), &["NaN"]);
    invalid(
        Task::Classify.convert(Targets::Values {
            values: vec![1.0, 2.0, 3.0, 4.0],
            names: targets(&["a", "b"]),
        }),
        &["one target column, not 2"],
    );
    let one = Task::Classify.convert(values(&[3.0, 3.0])).unwrap();
    invalid(
        Task::Classify.check_classes(&one).map(|()| one.clone()),
        &["1 class"],
    );
}

#[test]
fn negative_zero_is_the_class_zero() {
    // -0 and 0 are equal: one class. The values are sorted with `total_cmp` (which puts -0 before 0)
    // and deduplicated with `==` (which keeps -0 only), then 0 is looked up with `total_cmp`, which
    // does not find it.
    let t = Task::Classify
        .convert(Targets::Values {
            values: vec![0.0, -0.0, 1.0],
            names: targets(&["y"]),
        })
        .unwrap();
    let Targets::Classes { labels, names } = t else {
        panic!("classes expected")
    };
    assert_eq!(names.len(), 2);
    assert_eq!(labels[0], labels[1]);
    // The same from a CSV file: `0` and `-0` in a whole-number target.
    let s = Scratch::new("negative-zero");
    let path = s.file("t.csv", b"x,y\n1,0\n2,-0\n3,1\n");
    let (set, _) = csv::load(&path, &targets(&["y"])).unwrap();
    assert_eq!(set.class_counts(), Some(vec![2, 1]));
}

#[test]
fn class_counts_are_checked_for_the_task() {
    let three = classes(&[0, 1, 2], &["a", "b", "c"]);
    invalid(
        Task::Binary.check_classes(&three).map(|()| three.clone()),
        &["exactly two", "3", "--task classification"],
    );
    assert_eq!(Task::Classify.convert(three.clone()).unwrap(), three);
    let two = classes(&[0, 1, 1], &["no", "yes"]);
    assert_eq!(Task::Binary.convert(two.clone()).unwrap(), two);
    let one = classes(&[0, 0], &["a"]);
    invalid(
        Task::Binary.check_classes(&one).map(|()| one.clone()),
        &["1 class"],
    );
    let names: Vec<String> = (0..=MAX_CLASSES).map(|i| format!("c{i}")).collect();
    let many = Targets::Classes {
        labels: (0..=MAX_CLASSES as u32).collect(),
        names,
    };
    invalid(
        Task::Classify.check_classes(&many).map(|()| many.clone()),
        &["more than the"],
    );
    // What `infer` picks.
    assert_eq!(Task::infer(&two).unwrap(), Task::Binary);
    assert_eq!(Task::infer(&three).unwrap(), Task::Classify);
    let values = Targets::Values {
        values: vec![1.0],
        names: targets(&["y"]),
    };
    assert_eq!(Task::infer(&values).unwrap(), Task::Regress);
    for task in [Task::Classify, Task::Binary, Task::Regress] {
        assert_eq!(Task::parse(task.name()).unwrap(), task);
    }
    invalid(Task::parse("clustering"), &["clustering"]);
}

// ----- Prep -----

/// Mean and population standard deviation of column `j` of `[N, width]` values, in f64.
fn column_stats(values: &[f32], width: usize, j: usize) -> (f64, f64) {
    let column: Vec<f64> = values
        .chunks_exact(width)
        .map(|r| f64::from(r[j]))
        .collect();
    let n = column.len() as f64;
    let mean = column.iter().sum::<f64>() / n;
    let var = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// 60 samples of 3 features (the second constant) and 2 targets, skewed so that any part's statistics
/// differ from the whole set's.
fn skewed_set() -> Dataset {
    let mut rng = StdRng::seed_from_u64(11);
    let n = 60;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let a = (i * i) as f32 * 0.37 + 100.0;
        let c = rng.random_range(-3.0f32..3.0);
        x.extend([a, 5.0, c]);
        y.extend([2.0 * a - c + 1000.0, rng.random_range(-0.01f32..0.01)]);
    }
    Dataset::new(
        Shape::flat(3),
        Features::Floats(x),
        Targets::Values {
            values: y,
            names: targets(&["big", "small"]),
        },
    )
    .unwrap()
}

#[test]
fn standardisation_is_fitted_on_the_training_part_only() {
    let set = skewed_set();
    let (train, test) = set.split_fraction(0.3, 5).unwrap();
    let prep = Prep::fit(&train, Task::Regress, true, Schema::Array).unwrap();
    let Scaling::Standard { mean, std } = &prep.scaling else {
        panic!("float features are standardised: {:?}", prep.scaling)
    };
    let (x, all) = (floats(&train), floats(&set));
    for j in [0, 2] {
        let (m, s) = column_stats(x, 3, j);
        // f32 statistics of an f64 computation: within a few f32 ulps.
        assert!(
            (f64::from(mean[j]) - m).abs() <= 1e-6 * (1.0 + m.abs()),
            "mean[{j}] {} vs {m}",
            mean[j]
        );
        assert!(
            (f64::from(std[j]) - s).abs() <= 1e-6 * s,
            "std[{j}] {} vs {s}",
            std[j]
        );
        // The whole set's statistics are measurably different: the test part was not used.
        let (m_all, s_all) = column_stats(all, 3, j);
        assert!(
            (m_all - m).abs() > 1e-3 * (1.0 + m.abs()) || (s_all - s).abs() > 1e-3 * s,
            "column {j}: the split does not tell the fits apart"
        );
    }
    // A constant column: mean 5, std 1 (not 0), and inputs of 0, not NaN, in both parts.
    assert_eq!((mean[1], std[1]), (5.0, 1.0));
    for part in [&train, &test] {
        let inputs = prep.inputs(&part.features);
        assert!(inputs.iter().all(|v| v.is_finite()));
        assert!(inputs.chunks_exact(3).all(|r| r[1] == 0.0));
        // The test part is scaled with the training part's statistics.
        for (r, raw) in inputs.chunks_exact(3).zip(floats(part).chunks_exact(3)) {
            assert_eq!(r[0], (raw[0] - mean[0]) / std[0]);
            assert_eq!(r[2], (raw[2] - mean[2]) / std[2]);
        }
    }
    // Unnormalised: the features as they are.
    let raw = Prep::fit(&train, Task::Regress, false, Schema::Array).unwrap();
    assert_eq!(raw.scaling, Scaling::Identity);
    assert_eq!(raw.inputs(&train.features), x);
}

#[test]
fn a_constant_column_of_one_row_or_of_many_gives_zero() {
    let one = Dataset::new(
        Shape::flat(2),
        Features::Floats(vec![3.0, -7.5]),
        classes(&[0], &["a", "b"]),
    )
    .unwrap();
    let prep = Prep::fit(&one, Task::Binary, true, Schema::Array).unwrap();
    assert_eq!(prep.inputs(&one.features), [0.0, 0.0]);
    let prepared = prep.prepare(one).unwrap();
    assert_eq!(prepared.features, Features::Floats(vec![0.0, 0.0]));
    assert_eq!(prepared.labels, [0]);
    assert_eq!(prepared.targets, [0.0]);
}

#[test]
fn regression_targets_are_standardised_and_mapped_back() {
    let set = skewed_set();
    let (train, test) = set.split_fraction(0.25, 9).unwrap();
    let prep = Prep::fit(&train, Task::Regress, true, Schema::Array).unwrap();
    let (mean, std) = prep
        .target
        .clone()
        .expect("a regression records its target scaling");
    let Targets::Values { values: y, .. } = &train.targets else {
        unreachable!()
    };
    for j in 0..2 {
        let (m, s) = column_stats(y, 2, j);
        assert!((f64::from(mean[j]) - m).abs() <= 1e-6 * (1.0 + m.abs()));
        assert!((f64::from(std[j]) - s).abs() <= 1e-6 * s);
    }
    assert_eq!(prep.outputs(), 2);
    for part in [train, test] {
        let Targets::Values { values: truth, .. } = part.targets.clone() else {
            unreachable!()
        };
        let prepared = prep.prepare(part).unwrap();
        assert_eq!(prepared.target_width, 2);
        assert!(prepared.labels.iter().all(|&l| l == data::NO_LABEL));
        for (k, (&z, &t)) in prepared.targets.iter().zip(&truth).enumerate() {
            assert_eq!(z, (t - mean[k % 2]) / std[k % 2]);
        }
        let mut back = prepared.targets.clone();
        prep.outputs_to_targets(&mut back);
        for (k, (&b, &t)) in back.iter().zip(&truth).enumerate() {
            // (t − m)/s·s + m in f32: a few ulps of the larger of t and m.
            let tol = 4.0 * f32::EPSILON * (t.abs() + mean[k % 2].abs());
            assert!((b - t).abs() <= tol, "target {k}: {b} back for {t}");
        }
    }
    // Classification outputs are left alone.
    let images = Prep::images(Shape::image(1, 2, 2), 3, true);
    let mut out = vec![0.5, -1.0, 2.0];
    images.outputs_to_targets(&mut out);
    assert_eq!(out, [0.5, -1.0, 2.0]);
}

#[test]
fn prep_checks_what_it_is_given() {
    let set = skewed_set();
    let prep = Prep::fit(&set, Task::Regress, true, Schema::Array).unwrap();
    let other = Dataset::new(
        Shape::flat(2),
        Features::Floats(vec![1.0, 2.0]),
        Targets::Values {
            values: vec![1.0, 2.0],
            names: targets(&["big", "small"]),
        },
    )
    .unwrap();
    assert!(matches!(prep.check(&other), Err(Error::Shape(_))));
    let renamed = Dataset::new(
        Shape::flat(3),
        Features::Floats(vec![1.0, 2.0, 3.0]),
        Targets::Values {
            values: vec![1.0, 2.0],
            names: targets(&["big", "other"]),
        },
    )
    .unwrap();
    invalid(prep.check(&renamed), &["other"]);
    // Classes are not a regression's targets.
    let labelled = Dataset::new(
        Shape::flat(3),
        Features::Floats(vec![1.0, 2.0, 3.0]),
        classes(&[0], &["a", "b"]),
    )
    .unwrap();
    invalid(
        Prep::fit(&labelled, Task::Regress, true, Schema::Array),
        &["regression"],
    );
    let empty = set.truncated(0);
    invalid(
        Prep::fit(&empty, Task::Regress, true, Schema::Array),
        &["no samples"],
    );
}

#[test]
fn prep_json_round_trips_for_every_schema() {
    let s = Scratch::new("prep-json");
    // Images.
    let images = Prep::images(Shape::image(1, 8, 6), 5, true);
    let mut unnormalised = Prep::images(Shape::image(3, 4, 4), 2, false);
    unnormalised.task = Task::Binary;
    // A table with categories, binary and multi-class.
    let path = s.file(
        "t.csv",
        b"a,colour,b,y,kind\n1.5,red,-2,no,x\n2,blue,0.1,yes,y\n-3,green,7,no,z\n",
    );
    let (set, columns) = csv::load(&path, &targets(&["y"])).unwrap();
    let table = Prep::fit(&set, Task::Binary, true, Schema::Table(columns)).unwrap();
    let (set, columns) = csv::load(&path, &targets(&["kind"])).unwrap();
    let table3 = Prep::fit(&set, Task::Classify, false, Schema::Table(columns)).unwrap();
    // A float array, regression (with target scaling), awkward floats included.
    let mut array = Prep::fit(&skewed_set(), Task::Regress, true, Schema::Array).unwrap();
    if let Scaling::Standard { mean, .. } = &mut array.scaling {
        mean[2] = 0.1 + f32::EPSILON;
    }
    for prep in [images, unnormalised, table, table3, array] {
        let text = prep.to_json();
        assert_eq!(Prep::from_json(&text).unwrap(), prep, "{text}");
        // And the record of the record is the same text.
        assert_eq!(Prep::from_json(&text).unwrap().to_json(), text);
    }
}

#[test]
fn corrupt_prep_json_is_refused() {
    let array = Prep::fit(&skewed_set(), Task::Regress, true, Schema::Array).unwrap();
    let text = array.to_json();
    let edited = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        f(&mut v);
        v.to_string()
    };
    let mut cases = vec![
        String::new(),
        "not json".into(),
        "{}".into(),
        "[]".into(),
        "null".into(),
        "42".into(),
        text[..text.len() / 2].to_string(),
    ];
    cases.push(edited(&|v| v["task"] = "clustering".into()));
    cases.push(edited(&|v| v["task"] = 3.into()));
    cases.push(edited(&|v| v["shape"] = "3x".into()));
    cases.push(edited(&|v| v["shape"] = "0".into()));
    cases.push(edited(&|v| {
        v["scaling"]["standard"]["mean"]
            .as_array_mut()
            .unwrap()
            .pop();
    }));
    cases.push(edited(&|v| v["scaling"]["standard"]["std"][0] = "x".into()));
    cases.push(edited(&|v| v["scaling"] = "cubic".into()));
    cases.push(edited(&|v| v["target"] = serde_json::Value::Null));
    cases.push(edited(&|v| {
        v["target"]["mean"].as_array_mut().unwrap().pop();
    }));
    cases.push(edited(&|v| v["names"] = 7.into()));
    cases.push(edited(&|v| v["names"][0] = 7.into()));
    cases.push(edited(&|v| v["schema"] = "spreadsheet".into()));
    cases.push(edited(&|v| v["schema"] = serde_json::json!({"table": 3})));
    cases.push(edited(&|v| {
        v["schema"] = serde_json::json!({"table": [{"name": 1}]})
    }));
    cases.push(edited(&|v| {
        v["schema"] = serde_json::json!({"table": [{"name": "a", "categories": [1]}]})
    }));
    for case in &cases {
        match Prep::from_json(case) {
            Err(Error::Invalid(_)) => {}
            other => panic!("{case:?} read as {other:?}"),
        }
    }
}

// ----- splits -----

/// `n` samples whose one feature and target are their index.
fn indexed(n: usize) -> Dataset {
    Dataset::new(
        Shape::flat(1),
        Features::Floats((0..n).map(|i| i as f32).collect()),
        Targets::Values {
            values: (0..n).map(|i| i as f32).collect(),
            names: targets(&["i"]),
        },
    )
    .unwrap()
}

fn indices(set: &Dataset) -> Vec<usize> {
    floats(set).iter().map(|&v| v as usize).collect()
}

#[test]
fn split_fraction_is_seeded_disjoint_and_complete() {
    let set = indexed(100);
    let (train, test) = set.split_fraction(0.2, 7).unwrap();
    assert_eq!((train.len(), test.len()), (80, 20));
    let (again_train, again_test) = set.split_fraction(0.2, 7).unwrap();
    assert_eq!((&again_train, &again_test), (&train, &test));
    let (_, other) = set.split_fraction(0.2, 8).unwrap();
    assert_ne!(
        indices(&other),
        indices(&test),
        "another seed, another split"
    );
    // Disjoint and covering every sample, targets moving with their features.
    let mut all: Vec<usize> = indices(&train).into_iter().chain(indices(&test)).collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    for part in [&train, &test] {
        let Targets::Values { values, .. } = &part.targets else {
            unreachable!()
        };
        assert_eq!(values.as_slice(), floats(part));
    }
    // Shuffled, not a cut at the end.
    assert_ne!(indices(&test), (80..100).collect::<Vec<_>>());
}

#[test]
fn split_sizes_round_and_leave_one_sample_each_side() {
    for (n, fraction, held) in [
        (10, 0.25, 3), // 2.5 rounds away from zero
        (10, 0.24, 2),
        (10, 0.01, 1), // at least one test sample
        (10, 0.99, 9), // at least one training sample
        (2, 0.5, 1),
        (2, 0.01, 1),
        (2, 0.99, 1),
        (3, 0.5, 2),
        (1000, 0.1, 100),
    ] {
        let (train, test) = indexed(n).split_fraction(fraction, 1).unwrap();
        assert_eq!(
            (train.len(), test.len()),
            (n - held, held),
            "{n} samples, fraction {fraction}"
        );
    }
}

#[test]
fn split_fraction_refuses_fractions_outside_zero_to_one() {
    let set = indexed(10);
    for f in [0.0, -0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
        invalid(set.split_fraction(f, 1), &["strictly between 0 and 1"]);
    }
    invalid(indexed(1).split_fraction(0.5, 1), &["1 sample"]);
}

#[test]
fn truncated_and_split_at_keep_the_order() {
    let set = indexed(5);
    assert_eq!(indices(&set.truncated(3)), [0, 1, 2]);
    assert_eq!(indices(&set.truncated(9)), [0, 1, 2, 3, 4]);
    let (head, tail) = set.split_at(2);
    assert_eq!(
        (indices(&head), indices(&tail)),
        (vec![0, 1], vec![2, 3, 4])
    );
    let (head, tail) = set.split_at(7);
    assert_eq!((head.len(), tail.len()), (5, 0));
}

// ----- IDX files of another size -----

/// `n` images of `shape` and their labels below `classes`, from a seed.
fn idx_images(shape: Shape, n: usize, classes: u8, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Vec<u8> = (0..n).map(|i| (i % classes as usize) as u8).collect();
    let images = (0..n * shape.len()).map(|_| rng.random()).collect();
    (images, labels)
}

#[test]
fn idx_files_of_another_size_and_class_count_open_with_their_test_split() {
    let s = Scratch::new("idx");
    let shape = Shape::image(1, 8, 6);
    let (train_x, train_y) = idx_images(shape, 40, 5, 1);
    let (test_x, test_y) = idx_images(shape, 15, 5, 2);
    let files = [
        idx::image_file(shape, &train_x),
        idx::label_file(&train_y),
        idx::image_file(shape, &test_x),
        idx::label_file(&test_y),
    ];
    // Fashion-MNIST's file names, plain in one directory, gzipped in another, mixed in a third.
    for (dir, gzipped) in [
        ("plain", [false; 4]),
        ("gz", [true; 4]),
        ("mixed", [true, false, false, true]),
    ] {
        for ((name, bytes), gz) in idx::FILES.iter().zip(&files).zip(gzipped) {
            if gz {
                s.gz(&format!("{dir}/{name}.gz"), bytes);
            } else {
                s.file(&format!("{dir}/{name}"), bytes);
            }
        }
        let path = s.0.join(dir);
        assert!(idx::is_idx_dir(&path));
        let loaded = data::open(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.schema, Schema::Images);
        assert_eq!(loaded.task, Task::Classify);
        assert!(
            loaded.test_from.contains("own test split"),
            "{}",
            loaded.test_from
        );
        let names = ["0", "1", "2", "3", "4"];
        let labels = |y: &[u8]| y.iter().map(|&l| u32::from(l)).collect::<Vec<_>>();
        for (part, x, y) in [
            (&loaded.train, &train_x, &train_y),
            (&loaded.test, &test_x, &test_y),
        ] {
            assert_eq!(part.shape, shape);
            assert_eq!(part.features, Features::Bytes(x.clone()));
            assert_eq!(part.targets, classes(&labels(y), &names));
        }
    }
    // Colour images: 4 dimensions.
    let colour = Shape::image(3, 4, 5);
    let (x, y) = idx_images(colour, 6, 3, 3);
    for (name, bytes) in idx::FILES.iter().zip([
        idx::image_file(colour, &x),
        idx::label_file(&y),
        idx::image_file(colour, &x),
        idx::label_file(&y),
    ]) {
        s.file(&format!("colour/{name}"), &bytes);
    }
    let loaded = data::open(&s.0.join("colour"), &LoadOptions::default()).unwrap();
    assert_eq!(loaded.train.shape, colour);
    assert_eq!(loaded.train.features, Features::Bytes(x));
    assert_eq!(loaded.train.targets.names().len(), 3);
}

#[test]
fn idx_files_that_disagree_are_refused() {
    let s = Scratch::new("idx-bad");
    let shape = Shape::image(1, 8, 6);
    let (x, y) = idx_images(shape, 10, 5, 4);
    let write = |dir: &str, files: [Vec<u8>; 4]| {
        for (name, bytes) in idx::FILES.iter().zip(files) {
            s.file(&format!("{dir}/{name}"), &bytes);
        }
        s.0.join(dir)
    };
    // Test images of another size.
    let other = Shape::image(1, 6, 8 + 1);
    let (ox, oy) = idx_images(other, 10, 5, 5);
    let dir = write(
        "size",
        [
            idx::image_file(shape, &x),
            idx::label_file(&y),
            idx::image_file(other, &ox),
            idx::label_file(&oy),
        ],
    );
    let test_images = dir.join(idx::FILES[2]);
    data_error(
        data::open(&dir, &LoadOptions::default()),
        &test_images,
        &["1x6x9", "1x8x6"],
    );
    // One label too few.
    let dir = write(
        "count",
        [
            idx::image_file(shape, &x),
            idx::label_file(&y[1..]),
            idx::image_file(shape, &x),
            idx::label_file(&y),
        ],
    );
    data_error(
        data::open(&dir, &LoadOptions::default()),
        &dir.join(idx::FILES[1]),
        &["9 labels for 10 images"],
    );
    // A truncated image file.
    let mut cut = idx::image_file(shape, &x);
    cut.truncate(cut.len() - 1);
    let dir = write(
        "cut",
        [
            cut,
            idx::label_file(&y),
            idx::image_file(shape, &x),
            idx::label_file(&y),
        ],
    );
    data_error(
        data::open(&dir, &LoadOptions::default()),
        &dir.join(idx::FILES[0]),
        &["truncated"],
    );
}

// ----- data::open -----

#[test]
fn open_refuses_unknown_and_missing_paths() {
    let s = Scratch::new("open-paths");
    let path = s.file("table.txt", b"a,y\n1,0\n");
    data_error(
        data::open(&path, &LoadOptions::default()),
        &path,
        &[".csv", ".npz", "IDX", "PNG"],
    );
    let missing = s.0.join("nothing-here.csv");
    match data::open(&missing, &LoadOptions::default()) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error naming the path, got {other:?}"),
    }
    // A missing --test file.
    let train = s.file("train.csv", b"a,y\n1,0\n2,1\n3,0\n");
    let options = LoadOptions {
        targets: targets(&["y"]),
        test: Some(s.0.join("no-test.csv")),
        ..LoadOptions::default()
    };
    match data::open(&train, &options) {
        Err(Error::Io { path, .. }) => assert_eq!(path, s.0.join("no-test.csv")),
        other => panic!("expected an I/O error naming the test file, got {other:?}"),
    }
}

#[test]
fn open_splits_a_table_with_the_seed() {
    let s = Scratch::new("open-split");
    let mut text = String::from("x,y\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{}\n", (i % 3) as f32 + 0.5));
    }
    let path = s.file("t.csv", text.as_bytes());
    let options = LoadOptions {
        targets: targets(&["y"]),
        test_fraction: 0.3,
        seed: 3,
        ..LoadOptions::default()
    };
    let loaded = data::open(&path, &options).unwrap();
    assert_eq!(loaded.task, Task::Regress);
    assert_eq!((loaded.train.len(), loaded.test.len()), (35, 15));
    assert!(loaded.test_from.contains("30%") && loaded.test_from.contains("seed 3"));
    let (set, _) = csv::load(&path, &targets(&["y"])).unwrap();
    let (train, test) = set.split_fraction(0.3, 3).unwrap();
    assert_eq!((loaded.train, loaded.test), (train, test));
}

/// A table of `rows` (x1, x2, class) with a text target.
fn class_table(rows: &[(f32, f32, &str)]) -> Vec<u8> {
    let mut text = String::from("x1,x2,species\n");
    for (a, b, c) in rows {
        text.push_str(&format!("{a},{b},{c}\n"));
    }
    text.into_bytes()
}

#[test]
fn a_test_file_with_a_subset_of_the_classes_is_renumbered() {
    let s = Scratch::new("test-subset");
    let train = s.file(
        "train.csv",
        &class_table(&[
            (1.0, 2.0, "a"),
            (2.0, 3.0, "b"),
            (3.0, 4.0, "c"),
            (4.0, 5.0, "a"),
        ]),
    );
    let test = s.file(
        "test.csv",
        &class_table(&[(1.0, 1.0, "c"), (2.0, 2.0, "b"), (3.0, 3.0, "c")]),
    );
    let options = LoadOptions {
        targets: targets(&["species"]),
        test: Some(test.clone()),
        ..LoadOptions::default()
    };
    let loaded = data::open(&train, &options).unwrap();
    assert_eq!(loaded.train.len(), 4, "all of --data trains");
    assert_eq!(loaded.test.targets, classes(&[2, 1, 2], &["a", "b", "c"]));
    assert_eq!(floats(&loaded.test), [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    assert!(loaded.test_from.contains("test.csv"));
    // Whole-number classes too.
    let train = s.file("train-n.csv", b"x,y\n1,0\n2,1\n3,2\n4,2\n");
    let test = s.file("test-n.csv", b"x,y\n1,2\n2,1\n");
    let options = LoadOptions {
        targets: targets(&["y"]),
        test: Some(test),
        ..LoadOptions::default()
    };
    let loaded = data::open(&train, &options).unwrap();
    assert_eq!(loaded.test.targets, classes(&[2, 1], &["0", "1", "2"]));
}

#[test]
fn a_test_file_with_one_of_the_classes_is_renumbered() {
    let s = Scratch::new("test-one-class");
    let train = s.file(
        "train.csv",
        &class_table(&[(1.0, 2.0, "no"), (2.0, 3.0, "yes"), (3.0, 4.0, "no")]),
    );
    let test = s.file(
        "test.csv",
        &class_table(&[(1.0, 1.0, "yes"), (2.0, 2.0, "yes")]),
    );
    let options = LoadOptions {
        targets: targets(&["species"]),
        test: Some(test),
        ..LoadOptions::default()
    };
    let loaded = data::open(&train, &options).unwrap();
    assert_eq!(loaded.task, Task::Binary);
    assert_eq!(loaded.test.targets, classes(&[1, 1], &["no", "yes"]));
}

#[test]
fn a_test_file_with_an_unseen_class_is_refused() {
    let s = Scratch::new("test-unseen");
    let train = s.file(
        "train.csv",
        &class_table(&[(1.0, 2.0, "a"), (2.0, 3.0, "b"), (3.0, 4.0, "c")]),
    );
    let test = s.file(
        "test.csv",
        &class_table(&[(1.0, 1.0, "a"), (2.0, 2.0, "d"), (3.0, 3.0, "c")]),
    );
    let options = LoadOptions {
        targets: targets(&["species"]),
        test: Some(test.clone()),
        ..LoadOptions::default()
    };
    data_error(
        data::open(&train, &options),
        &test,
        &["class `d`", "a, b, c"],
    );
    // A test file with other columns.
    let other = s.file("other.csv", b"x1,x3,species\n1,2,a\n2,3,b\n");
    let options = LoadOptions {
        test: Some(other.clone()),
        ..options
    };
    data_error(data::open(&train, &options), &other, &["columns"]);
}

#[test]
fn a_test_file_with_fewer_input_categories_is_read_with_the_training_columns() {
    let s = Scratch::new("test-categories");
    let train = s.file(
        "train.csv",
        b"x,colour,y\n1,red,0.5\n2,blue,1.5\n3,green,2.5\n4,red,3.5\n",
    );
    let test = s.file("test.csv", b"x,colour,y\n5,red,4.5\n6,blue,5.5\n");
    let options = LoadOptions {
        targets: targets(&["y"]),
        test: Some(test),
        ..LoadOptions::default()
    };
    let loaded = data::open(&train, &options).unwrap();
    // blue, green, red.
    assert_eq!(
        floats(&loaded.test),
        [5.0, 0.0, 0.0, 1.0, 6.0, 1.0, 0.0, 0.0]
    );
}

//! Structured data, the course's opening picture: house prices. Six houses fitted by one ReLU neuron,
//! `price = max(0, w·size + b)`, which must end at the least-squares line; then 1 000 generated houses
//! with four features (one of them text), where a network with two hidden layers beats a single linear
//! neuron. Runs on the CPU and, where there is one, the GPU; draws both fits.
//!
//! `cargo run --release --example houses [OUT.png]` (default `runs/houses.png`)

#[allow(dead_code)]
mod support;

use nabla::Backend;
use nabla::curriculum::houses::{self, HOUSES};
use nabla::data::{LoadOptions, Task, open};
use nabla::plot::{Chart, Series, Style, regression_errors, write_png};

const STEPS: usize = 2000;

fn lesson<B: Backend>(
    b: &B,
    name: &str,
    data: &nabla::data::Loaded,
) -> anyhow::Result<(houses::ReluFit, Vec<f32>, Vec<f32>)> {
    let fit = houses::relu_neuron(b, STEPS)?;
    println!(
        "  {name}: price = max(0, {:.4}·size + {:.4}), loss {:.5} after {STEPS} steps",
        fit.w,
        fit.b,
        fit.losses.last().copied().unwrap_or(f32::NAN)
    );
    let (neuron, network) = houses::compare(b, data, 7)?;
    println!(
        "  {name}: one linear neuron: test {}",
        neuron.metrics.summary()
    );
    println!(
        "  {name}: 2 hidden layers of 16: test {}",
        network.metrics.summary()
    );
    Ok((fit, neuron.predicted, network.predicted))
}

fn main() -> anyhow::Result<()> {
    let (w, b) = houses::least_squares();
    println!(
        "Six houses (size in 1000 ft², price in $100k); least squares: price = {w:.4}·size + {b:.4}"
    );
    let dir = std::env::temp_dir().join(format!("nabla-houses-{}", std::process::id()));
    let csv = dir.join("houses.csv");
    houses::write_houses_csv(&csv, 1000, 3)?;
    let options = LoadOptions {
        targets: vec!["price".into()],
        task: Some(Task::Regress),
        seed: 7,
        ..LoadOptions::default()
    };
    let data = open(&csv, &options)?;
    println!(
        "Then {} generated houses (size, bedrooms, district, wealth → price), 80/20 split:",
        data.train.len() + data.test.len()
    );
    let (cpu, gpu) = support::backends();
    let (fit, neuron, network) = lesson(&cpu, "CPU", &data)?;
    if let Some(gpu) = &gpu {
        lesson(gpu, "GPU", &data)?;
    }
    let sizes: Vec<f64> = (0..=60).map(|i| f64::from(i) * 0.05).collect();
    let relu = Chart {
        title: "One ReLU neuron: price = max(0, w·size + b)".into(),
        x_label: "size (1000 ft²)".into(),
        y_label: "price ($100k)".into(),
        series: vec![
            Series::line(
                "neuron",
                sizes
                    .iter()
                    .map(|&s| (s, f64::from(fit.price(s as f32))))
                    .collect(),
            ),
            Series {
                style: Style::Dots,
                ..Series::line(
                    "houses",
                    HOUSES
                        .iter()
                        .map(|&(x, y)| (f64::from(x), f64::from(y)))
                        .collect(),
                )
            },
        ],
        y_range: None,
    };
    let truth = match &data.test.targets {
        nabla::data::Targets::Values { values, .. } => values.clone(),
        _ => unreachable!("a regression's targets are values"),
    };
    let mut one = regression_errors(&neuron, &truth, "price");
    one.title = "One linear neuron, four features".into();
    let mut two = regression_errors(&network, &truth, "price");
    two.title = "Two hidden layers of 16".into();
    let path = support::output("houses.png");
    write_png(&path, &[relu, one, two], 3, (420, 380))?;
    println!("Fits drawn to {}", path.display());
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

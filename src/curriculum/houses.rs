//! The course's first picture of a neural network: house prices. Six houses, size against price, fitted
//! by one neuron with a ReLU, `price = max(0, w·size + b)` (a price is never negative); then a table of
//! houses with several features, where a small network with hidden units (think "family size",
//! "walkability", "school quality") beats the single linear neuron on the same inputs.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::tables::{Fitted, fit, table};
use crate::backend::Backend;
use crate::data::prep::Schema;
use crate::data::{Loaded, Task};
use crate::error::Result;
use crate::init::Init;
use crate::model::{Model, ModelSpec};
use crate::optim::{Optimizer, OptimizerKind};
use crate::schedule::LrSchedule;
use crate::train::{DeviceSplit, TrainConfig, train};

/// Six houses: size in thousands of square feet, price in hundreds of thousands of dollars.
pub const HOUSES: [(f32, f32); 6] = [
    (0.5, 0.6),
    (0.8, 1.0),
    (1.0, 1.6),
    (1.5, 2.4),
    (2.0, 3.3),
    (2.5, 4.0),
];

/// The least-squares line through [`HOUSES`], `(w, b)`, in f64 from the normal equations: where one
/// ReLU neuron trained on the squared error must end, since the line is positive at every house.
pub fn least_squares() -> (f64, f64) {
    let n = HOUSES.len() as f64;
    let (sx, sy) = HOUSES.iter().fold((0.0, 0.0), |(a, c), &(x, y)| {
        (a + f64::from(x), c + f64::from(y))
    });
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = HOUSES.iter().fold((0.0, 0.0), |(a, c), &(x, y)| {
        let dx = f64::from(x) - mx;
        (a + dx * (f64::from(y) - my), c + dx * dx)
    });
    let w = sxy / sxx;
    (w, my - w * mx)
}

/// One ReLU neuron fitted to [`HOUSES`].
#[derive(Clone, Debug)]
pub struct ReluFit {
    /// The weight: dollars per square foot, in the units above.
    pub w: f32,
    /// The bias.
    pub b: f32,
    /// The training loss (half the mean squared error) after every step.
    pub losses: Vec<f32>,
}

impl ReluFit {
    /// The neuron's price for a size.
    pub fn price(&self, size: f32) -> f32 {
        (self.w * size + self.b).max(0.0)
    }
}

/// Fits `input 1, dense 1, relu` to the six houses by full-batch gradient descent (rate 0.1, `steps`
/// steps) on the raw numbers. It starts at `w = 1, b = 0`: a ReLU whose every input is negative passes
/// no gradient and never learns (a dead unit), so the start is chosen alive rather than drawn.
pub fn relu_neuron<B: Backend>(b: &B, steps: usize) -> Result<ReluFit> {
    let (x, y): (Vec<f32>, Vec<f32>) = HOUSES.iter().copied().unzip();
    let set = table(x, 1, y, &["price"])?;
    let prep = crate::data::Prep::fit(&set, Task::Regress, false, Schema::Array)?;
    let spec = ModelSpec::parse_layers("dense 1, relu", Some(prep.shape))?;
    let mut model = Model::new(b, spec, Init::Normal(0.0), 0, 0)?;
    model.task = Task::Regress;
    let mut params = model.params_mut();
    let weight = params.next().expect("a weight");
    b.write(&mut weight.value, &[1.0])?;
    drop(params);
    let device = DeviceSplit::from_dataset(b, set, &prep)?;
    let config = TrainConfig {
        epochs: steps,
        batch: HOUSES.len(),
        optimizer: Optimizer::new(OptimizerKind::Sgd, 0.1),
        schedule: LrSchedule::constant(),
        seed: 1,
        max_steps: None,
        report_every: 1,
        patience: None,
    };
    let history = train(b, &mut model, &device, None, &config, |_, _| {})?;
    let values: Vec<Vec<f32>> = model
        .params()
        .map(|p| b.read(&p.value))
        .collect::<Result<_>>()?;
    Ok(ReluFit {
        w: values[0][0],
        b: values[1][0],
        losses: history.iter().map(|e| e.train_loss).collect(),
    })
}

/// Town districts of the generated houses, with how walkable each is.
const DISTRICTS: [(&str, f32); 5] = [
    ("centre", 1.0),
    ("east", 0.5),
    ("north", 0.6),
    ("south", 0.3),
    ("west", 0.2),
];

/// Writes `n` generated houses (seeded) as a CSV table: `size` (thousand ft²), `bedrooms`, `district`
/// (text, one-hot in training), `wealth` (the neighbourhood's, 0–1) and `price` ($100k). The price
/// follows what the course's picture says the hidden units find: family size (from size and
/// bedrooms) times walkability (from the district), plus school quality (from wealth and district)
/// squared, plus noise; products and a square, so no single linear neuron can fit it.
pub fn write_houses_csv(path: &std::path::Path, n: usize, seed: u64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut csv = String::from("size,bedrooms,district,wealth,price\n");
    for _ in 0..n {
        let size: f32 = rng.random_range(0.5..3.5);
        let bedrooms = (1.0 + size * 1.2 + rng.random_range(-0.7..0.7f32))
            .round()
            .clamp(1.0, 6.0);
        let (district, walk) = DISTRICTS[rng.random_range(0..DISTRICTS.len())];
        let wealth: f32 = rng.random_range(0.0..1.0);
        let family = 0.8 * bedrooms + 0.5 * size;
        let school = 0.6 * wealth + 0.4 * walk;
        let noise: f32 = rng.random_range(-0.15..0.15);
        let price = 0.5 + 0.6 * family * (0.5 + walk) + 3.0 * school * school + noise;
        csv.push_str(&format!(
            "{size:.3},{bedrooms},{district},{wealth:.3},{price:.3}\n"
        ));
    }
    crate::checkpoint::write_atomically(path, csv.as_bytes())
}

/// The generated houses' table fitted twice, seeded alike: by one linear neuron (`dense 1`) and by a
/// network with two hidden layers of 16 ReLU units. Returns (neuron, network).
pub fn compare<B: Backend>(b: &B, data: &Loaded, seed: u64) -> Result<(Fitted<B>, Fitted<B>)> {
    let config = |epochs| TrainConfig {
        epochs,
        batch: 32,
        optimizer: Optimizer::new(
            OptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
            },
            0.01,
        ),
        schedule: LrSchedule::parse("cosine", 0).expect("a valid schedule"),
        seed,
        max_steps: None,
        report_every: 50,
        patience: None,
    };
    let neuron = fit(b, data, "dense 1", Init::Xavier, &config(60), true)?;
    let network = fit(
        b,
        data,
        "dense 16, relu, dense 16, relu, dense 1",
        Init::He,
        &config(60),
        true,
    )?;
    Ok((neuron, network))
}

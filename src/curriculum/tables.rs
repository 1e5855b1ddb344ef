//! Training on a table, an array or an image folder from the library, as `nabla train --data` does:
//! the preprocessing fitted on the training part, the model trained, and its figures on the test part
//! in the targets' own units. The lessons on structured data and image folders build on it.

use crate::backend::Backend;
use crate::data::metrics::Metrics;
use crate::data::{Dataset, Loaded, Prep};
use crate::error::Result;
use crate::init::Init;
use crate::layers::Shape;
use crate::model::{Model, ModelSpec};
use crate::train::{DeviceSplit, EpochStats, TrainConfig, outputs, train};

/// A model trained on a set, with what it was trained through and how it did.
pub struct Fitted<B: Backend> {
    /// The trained model.
    pub model: Model<B>,
    /// The preprocessing fitted on the training part.
    pub prep: Prep,
    /// Every epoch's figures (evaluated on the test part).
    pub history: Vec<EpochStats>,
    /// The test part's figures after training.
    pub metrics: Metrics,
    /// The test part's predictions: values in the targets' units for a regression, logits otherwise.
    pub predicted: Vec<f32>,
}

/// Trains the model `layers` describes (a layer list for the data's input shape, ending in the task's
/// outputs, e.g. `"dense 64, relu, dense 1"`) on `data.train` with `config`, from He/Xavier weights
/// drawn with `config.seed`, and scores it on `data.test`. `normalise` as [`Prep::fit`] takes it.
pub fn fit<B: Backend>(
    b: &B,
    data: &Loaded,
    layers: &str,
    init: Init,
    config: &TrainConfig,
    normalise: bool,
) -> Result<Fitted<B>> {
    let prep = Prep::fit(&data.train, data.task, normalise, data.schema.clone())?;
    let spec = ModelSpec::parse_layers(layers, Some(prep.shape))?;
    let mut model = Model::new(b, spec, init, config.seed, config.optimizer.state_count())?;
    model.task = prep.task;
    let train_set = DeviceSplit::from_dataset(b, data.train.clone(), &prep)?;
    let test_set = DeviceSplit::from_dataset(b, data.test.clone(), &prep)?;
    let history = train(
        b,
        &mut model,
        &train_set,
        Some(&test_set),
        config,
        |_, _| {},
    )?;
    let mut predicted = outputs(b, &model, &test_set, 1000)?;
    let metrics = Metrics::of_outputs(&prep, &predicted, &data.test.targets)?;
    prep.outputs_to_targets(&mut predicted);
    Ok(Fitted {
        model,
        prep,
        history,
        metrics,
        predicted,
    })
}

/// A flat set of `rows` samples from their float features (`[rows, width]`) and real targets: what the
/// lessons build their small tables from.
pub fn table(
    features: Vec<f32>,
    width: usize,
    targets: Vec<f32>,
    names: &[&str],
) -> Result<Dataset> {
    Dataset::new(
        Shape::flat(width),
        crate::data::Features::Floats(features),
        crate::data::Targets::Values {
            values: targets,
            names: names.iter().map(|n| n.to_string()).collect(),
        },
    )
}

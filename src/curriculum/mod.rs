//! The "deep learning from scratch" lessons as library code, so that each example prints what a lesson
//! computes and each test pins the same numbers. The README's "Learn" section takes them in order;
//! the numbers are the lessons':
//!
//! 1. [`perceptron`]: AND, NAND and OR as single perceptrons; XOR needs two layers.
//! 2. [`xor`]: a two-layer network learns XOR by backprop.
//! 3. (activation functions: the `activations` example uses the kernels directly)
//! 4. [`gradient_descent`]: numerical differentiation and gradient descent on simple functions.
//! 5. [`graph`]: backprop on a computational graph of multiply and add nodes.
//! 6. [`gradcheck`]: a whole network's backprop gradients against numerical ones.
//! 7. and 8. (training on MNIST and batched inference: `nabla train` and the `inference` example)
//! 9. [`overfitting`]: a deep network memorises 300 images; weight decay and dropout narrow the gap.
//! 10. [`logistic_regression`]: one sigmoid neuron tells a digit from the rest, by vectorised descent.
//! 11. [`optimizers`]: SGD, momentum, AdaGrad and Adam on x²/20 + y², paths side by side.
//! 12. [`weight_init`]: how the first weights' spread shapes the activations five layers deep.
//! 13. [`batch_norm`]: with batch normalisation a deep network learns from any initial scale.
//! 14. [`hyperparameters`]: random search of the learning rate and weight decay on a validation split.
//! 15. [`im2col`]: a convolution unrolled into one matrix product, shown on a small image.
//! 16. and 17. [`cnn`]: SimpleConvNet on MNIST, its training curves and its first layer's filters.
//! 18. [`houses`]: house prices, one ReLU neuron, then a network on a table.
//! 19. [`image_folder`]: a binary image classifier trained from class folders.
//! 20. (a real table: the `wine` example, on [`tables`])
//! 21. [`adding`]: why LSTM, the adding problem: gated cells learn what a tanh RNN cannot.
//! 22. [`rbm`]: an RBM learns MNIST's strokes without labels; a stack of them pre-trains a deep network.
//!
//! [`mnist_curves`] trains the MNIST comparisons of lessons 11 and 12.

pub mod adding;
pub mod batch_norm;
pub mod cnn;
pub mod gradcheck;
pub mod gradient_descent;
pub mod graph;
pub mod houses;
pub mod hyperparameters;
pub mod im2col;
pub mod image_folder;
pub mod logistic_regression;
pub mod mnist_curves;
pub mod optimizers;
pub mod overfitting;
pub mod perceptron;
pub mod rbm;
pub mod tables;
pub mod weight_init;
pub mod xor;

use crate::backend::Backend;
use crate::error::Result;
use crate::model::Model;
use crate::train::{DeviceSplit, EpochStats, Event, TrainConfig, evaluate, train};

/// Trains `model` on `set` (evaluating on `test` after each epoch, if given) and also measures its
/// accuracy on `set` itself by inference after every epoch: how the overfitting and batch-norm lessons
/// watch what the network has learnt. Returns the training's result beside the accuracies of the epochs
/// that finished, so that a run that diverges still shows how far it got.
fn train_watching_accuracy<B: Backend>(
    b: &B,
    model: &mut Model<B>,
    set: &DeviceSplit<B>,
    test: Option<&DeviceSplit<B>>,
    config: &TrainConfig,
) -> (Result<Vec<EpochStats>>, Vec<f32>) {
    let mut accuracy = Vec::with_capacity(config.epochs);
    let mut failure = None;
    let trained = train(b, model, set, test, config, |event, model| {
        if let Event::Epoch(_) = event {
            match evaluate(b, model, set, set.len) {
                Ok(a) => accuracy.push(a),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
    });
    match failure {
        Some(e) => (Err(e), accuracy),
        None => (trained, accuracy),
    }
}

//! The "deep learning from scratch" lessons as library code, so that each example prints what a lesson
//! computes and each test pins the same numbers. Read them in this order:
//!
//! 1. [`perceptron`]: AND, NAND and OR as single perceptrons; XOR needs two layers.
//! 2. [`xor`]: a two-layer network learns XOR by backprop.
//! 3. [`gradient_descent`]: numerical differentiation and gradient descent on simple functions.
//! 4. [`graph`]: backprop on a computational graph of multiply and add nodes.
//! 5. [`gradcheck`]: a whole network's backprop gradients against numerical ones.
//!
//! The activation functions' lesson and MNIST inference use the engine directly (see the
//! `activations` and `inference` examples).

pub mod gradcheck;
pub mod gradient_descent;
pub mod graph;
pub mod perceptron;
pub mod xor;

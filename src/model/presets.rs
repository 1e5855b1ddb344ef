//! The convolutional networks `nabla train --preset` names, as layer lists (see [`super::spec`]).

/// The `cnn` preset, built to pass 99% quickly: two 5×5 convolutions of 16 and 32 filters, each with
/// ReLU and 2×2 max pooling, then one dense layer.
pub const FAST_CNN: &str = "input 1x28x28, conv 16x5x5, relu, max_pool 2, conv 32x5x5, relu, \
                            max_pool 2, dense 10";

/// The `simple_cnn` preset: "Deep Learning from Scratch"'s SimpleConvNet (chapter 7).
pub const SIMPLE_CNN: &str =
    "input 1x28x28, conv 30x5x5, relu, max_pool 2, dense 100, relu, dense 10";

/// The `deep_cnn` preset: the book's DeepConvNet (chapter 8). Its fourth convolution pads by 2, as the
/// book's, so the last pooling sees 8×8 and the dense layer 64×4×4 values. The book also drops out the
/// logits; a dropout after the last layer only adds noise to the loss, and is left out.
pub const DEEP_CNN: &str = "input 1x28x28, conv 16x3x3 pad 1, relu, conv 16x3x3 pad 1, relu, \
                            max_pool 2, conv 32x3x3 pad 1, relu, conv 32x3x3 pad 2, relu, max_pool 2, \
                            conv 64x3x3 pad 1, relu, conv 64x3x3 pad 1, relu, max_pool 2, dense 50, \
                            relu, dropout 0.5, dense 10";

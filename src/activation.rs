//! Activation functions: the scalar math the CPU backend uses, and the codes the WGSL kernels share.
//!
//! `shaders/activation_fns.wgsl` implements the same functions; the numbering of [`Activation::code`]
//! must match the `ACT_*` constants there.

/// An element-wise activation function `y = f(x)` with its derivative `f'(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = 1 if x > 0 else 0`; its derivative is taken as 0 everywhere.
    Step,
    /// `f(x) = 1 / (1 + e^-x)`, `f' = f (1 - f)`.
    Sigmoid,
    /// `f(x) = tanh x`, `f' = 1 - f²`.
    Tanh,
    /// `f(x) = max(0, x)`, `f' = 1 if x > 0 else 0`.
    Relu,
    /// `f(x) = x if x > 0 else αx`.
    LeakyRelu(f32),
    /// `f(x) = x if x > 0 else α(e^x - 1)`.
    Elu(f32),
    /// `f(x) = λx if x > 0 else λα(e^x - 1)` with the self-normalising constants λ, α.
    Selu,
    /// Swish / SiLU: `f(x) = x·σ(x)`, `f' = σ(x) + x·σ(x)(1 - σ(x))`.
    Swish,
    /// GELU, tanh approximation: `f(x) = ½x(1 + tanh u)`, `u = √(2/π)(x + 0.044715x³)`, computed as the
    /// equal `x·σ(2u)`, which saturates exactly (to 0 or x) and does not cancel where `tanh u ≈ -1`.
    Gelu,
    /// `f(x) = ln(1 + e^x)`, `f' = σ(x)`.
    Softplus,
}

/// SELU's λ (scale), from Klambauer et al. 2017.
pub const SELU_LAMBDA: f32 = 1.050_701;
/// SELU's α.
pub const SELU_ALPHA: f32 = 1.673_263_2;
const GELU_C: f32 = 0.797_884_6; // √(2/π)
const GELU_K: f32 = 0.044_715;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Activation {
    /// Every activation, with the conventional α for the parametrised ones; used by tests and plots.
    pub const ALL: [Activation; 11] = [
        Activation::Identity,
        Activation::Step,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu(0.01),
        Activation::Elu(1.0),
        Activation::Selu,
        Activation::Swish,
        Activation::Gelu,
        Activation::Softplus,
    ];

    /// The kernel's code for this function (`ACT_*` in `activation_fns.wgsl`).
    pub fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Step => 1,
            Activation::Sigmoid => 2,
            Activation::Tanh => 3,
            Activation::Relu => 4,
            Activation::LeakyRelu(_) => 5,
            Activation::Elu(_) => 6,
            Activation::Selu => 7,
            Activation::Swish => 8,
            Activation::Gelu => 9,
            Activation::Softplus => 10,
        }
    }

    /// The parameter α (0 for functions without one).
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) | Activation::Elu(a) => a,
            _ => 0.0,
        }
    }

    /// A short lowercase name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Step => "step",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Selu => "selu",
            Activation::Swish => "swish",
            Activation::Gelu => "gelu",
            Activation::Softplus => "softplus",
        }
    }

    /// Parses a CLI name (`relu`, `leaky_relu`, `elu`, …); parametrised ones take their usual α.
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == name)
    }

    /// `f(x)`, computed the numerically careful way (the reference for the kernels).
    pub fn forward(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Step => f32::from(x > 0.0),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Activation::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Activation::Selu => {
                if x > 0.0 {
                    SELU_LAMBDA * x
                } else {
                    SELU_LAMBDA * SELU_ALPHA * x.exp_m1()
                }
            }
            Activation::Swish => x * sigmoid(x),
            Activation::Gelu => x * sigmoid(2.0 * GELU_C * (x + GELU_K * x * x * x)),
            Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// True when `f'(x)` is determined by the output `y = f(x)` alone, so that backprop can skip storing
    /// `x` and fuse `dx = dy ⊙ f'` into the matrix product that computes `dy` (see
    /// [`crate::Epilogue::ActivationGrad`]). Swish and GELU are not invertible; leaky ReLU and ELU need
    /// `α ≥ 0` for the sign of `y` to tell the branch.
    pub fn has_output_derivative(self) -> bool {
        match self {
            Activation::Swish | Activation::Gelu => false,
            Activation::LeakyRelu(a) | Activation::Elu(a) => a >= 0.0,
            _ => true,
        }
    }

    /// `f'(x)` computed from `y = f(x)`, for the functions where [`Activation::has_output_derivative`]
    /// holds: sigmoid `y(1 - y)`, tanh `1 - y²`, ReLU `[y > 0]`, leaky ReLU `y > 0 ? 1 : α`, ELU
    /// `y > 0 ? 1 : y + α`, SELU `y > 0 ? λ : y + λα`, softplus `1 - e^-y`. Others return NaN.
    pub fn output_derivative(self, y: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Step => 0.0,
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Relu => f32::from(y > 0.0),
            Activation::LeakyRelu(a) if a >= 0.0 => {
                if y > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            Activation::Elu(a) if a >= 0.0 => {
                if y > 0.0 {
                    1.0
                } else {
                    y + a
                }
            }
            Activation::Selu => {
                if y > 0.0 {
                    SELU_LAMBDA
                } else {
                    y + SELU_LAMBDA * SELU_ALPHA
                }
            }
            Activation::Softplus => -(-y).exp_m1(),
            _ => f32::NAN,
        }
    }

    /// `f'(x)`.
    pub fn derivative(self, x: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Step => 0.0,
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (1.0 - s)
            }
            Activation::Tanh => {
                let t = x.tanh();
                1.0 - t * t
            }
            Activation::Relu => f32::from(x > 0.0),
            Activation::LeakyRelu(a) => {
                if x > 0.0 {
                    1.0
                } else {
                    a
                }
            }
            Activation::Elu(a) => {
                if x > 0.0 {
                    1.0
                } else {
                    a * x.exp()
                }
            }
            Activation::Selu => {
                if x > 0.0 {
                    SELU_LAMBDA
                } else {
                    SELU_LAMBDA * SELU_ALPHA * x.exp()
                }
            }
            Activation::Swish => {
                let s = sigmoid(x);
                s + x * s * (1.0 - s)
            }
            Activation::Gelu => {
                // ½(1 + tanh u) = s and ½(1 - tanh² u) = 2s(1 - s), with s = σ(2u).
                let s = sigmoid(2.0 * GELU_C * (x + GELU_K * x * x * x));
                s + x * 2.0 * s * (1.0 - s) * GELU_C * (1.0 + 3.0 * GELU_K * x * x)
            }
            Activation::Softplus => sigmoid(x),
        }
    }
}

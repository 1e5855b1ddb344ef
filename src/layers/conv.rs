//! A 2-D convolution, `y[n, o] = b[o] + Σ_c W[o, c] ⋆ x[n, c]` (cross-correlation, as every framework).
//!
//! The forward pass is the implicit GEMM ([`Backend::convolution`]): one matrix-product kernel reads the
//! images through im2col's index map and writes images with the bias and activation applied. The
//! backward pass ([`Backend::convolution_backward`]) works the book's way: im2col unrolls each window
//! position into a row of columns, and matrix products with the output gradient give `dW` and the
//! columns' gradient, which col2im folds back onto the images (on the CPU one image at a time; the GPU
//! computes the input's gradient as a convolution where it can). Recomputing the columns there beat
//! keeping them from an im2col forward pass (im2col, a product, a layout change) on lavapipe and on the
//! CPU (BENCHMARKS.md).

use super::{BuildAt, Draw, Exported, Import, Layer, LayerKind, Param, Shape, Values};
use crate::activation::Activation;
use crate::backend::{Backend, ConvGrads, Epilogue};
use crate::error::{Error, Result};
use crate::window::Window;

/// `conv OxKHxKW [stride S] [pad P]`: `O` filters of `KH × KW` over every input channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvKind {
    /// Output channels (filters).
    pub filters: usize,
    /// Filter rows.
    pub kernel_h: usize,
    /// Filter columns.
    pub kernel_w: usize,
    /// Step between positions.
    pub stride: usize,
    /// Zeros added on every side.
    pub padding: usize,
}

/// Reads the words after a window layer's size: `stride S` and `pad P`, in any order, each at most once.
pub fn options(item: &str, args: &[&str], allow_pad: bool) -> Result<(Option<usize>, usize)> {
    let mut stride = None;
    let mut padding = 0;
    let bad = || {
        Error::Invalid(format!(
            "layer `{item}`: after the size expected {}",
            if allow_pad {
                "`stride S` and `pad P`"
            } else {
                "`stride S`"
            }
        ))
    };
    let mut words = args.iter();
    let mut seen = Vec::new();
    while let Some(&word) = words.next() {
        let value: usize = words.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        if seen.contains(&word) {
            return Err(bad());
        }
        seen.push(word);
        match word {
            "stride" => stride = Some(value),
            "pad" if allow_pad => padding = value,
            _ => return Err(bad()),
        }
    }
    Ok((stride, padding))
}

/// Reads `conv 30x5x5`, `conv 16x3x3 pad 1`, `conv 32x3x3 stride 2 pad 1`.
pub fn parse(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    let bad = || {
        Error::Invalid(format!(
            "layer `{item}`: expected `conv FILTERSxHxW`, e.g. `conv 30x5x5` or `conv 16x3x3 pad 1`"
        ))
    };
    let (size, rest) = args.split_first().ok_or_else(bad)?;
    let dims: Vec<usize> = size
        .split('x')
        .map(|d| d.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let [filters, kernel_h, kernel_w] = dims[..] else {
        return Err(bad());
    };
    let (stride, padding) = options(item, rest, true)?;
    let kind = ConvKind {
        filters,
        kernel_h,
        kernel_w,
        stride: stride.unwrap_or(1),
        padding,
    };
    if filters == 0 || kernel_h == 0 || kernel_w == 0 || kind.stride == 0 {
        return Err(Error::Invalid(format!(
            "layer `{item}`: filters, sizes and stride must be at least 1"
        )));
    }
    if padding >= kernel_h.max(kernel_w) {
        return Err(Error::Invalid(format!(
            "layer `{item}`: padding must be smaller than the filter"
        )));
    }
    Ok(Box::new(kind))
}

impl ConvKind {
    /// The window this convolution slides over `input`.
    pub fn window(&self, input: Shape) -> Result<Window> {
        Window::new(
            input,
            self.kernel_h,
            self.kernel_w,
            self.stride,
            self.padding,
        )
    }

    fn build<B: Backend>(&self, b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        let window = self.window(at.input)?;
        let fan_in = window.patch();
        let weights = at.init.sample(at.rng, fan_in, fan_in * self.filters);
        Ok(Box::new(Conv::new(
            b,
            window,
            self.filters,
            &weights,
            at.states,
        )?))
    }
}

impl LayerKind for ConvKind {
    fn name(&self) -> &'static str {
        "conv"
    }

    fn describe(&self) -> String {
        let mut s = format!("conv {}x{}x{}", self.filters, self.kernel_h, self.kernel_w);
        if self.stride != 1 {
            s += &format!(" stride {}", self.stride);
        }
        if self.padding != 0 {
            s += &format!(" pad {}", self.padding);
        }
        s
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(self.window(input)?.output(self.filters))
    }

    /// Filters `[O, C·KH·KW]` and bias `[1, O]`.
    fn parameter_shapes(&self, input: Shape) -> Vec<(usize, usize)> {
        let patch = input.channels * self.kernel_h * self.kernel_w;
        vec![(self.filters, patch), (1, self.filters)]
    }

    /// The GPU's: the columns `[N·P, C·KH·KW]`, the output gradient in rows `[N·P, O]` and the flipped
    /// filters `[C, O·KH·KW]` (the CPU works one image at a time).
    fn scratch_shapes(&self, input: Shape, batch: usize) -> Vec<(usize, usize)> {
        match self.window(input) {
            Ok(w) => vec![
                (batch * w.positions(), w.patch()),
                (batch * w.positions(), self.filters),
                (input.channels, self.filters * self.kernel_h * self.kernel_w),
            ],
            Err(_) => Vec::new(),
        }
    }

    fn flops(&self, input: Shape) -> f64 {
        self.window(input).map_or(0.0, |w| {
            2.0 * (w.positions() * w.patch() * self.filters) as f64
        })
    }

    crate::build_on_every_backend!(build);
}

/// A convolution with its filters and bias.
pub struct Conv<B: Backend> {
    /// Filters `[O, C·KH·KW]`: PyTorch's `[O, C, KH, KW]`, row-major.
    pub weight: Param<B>,
    /// Bias `[1, O]`.
    pub bias: Param<B>,
    window: Window,
    filters: usize,
    scratch: B::ConvScratch,
}

impl<B: Backend> Conv<B> {
    /// A convolution of `filters` filters over `window` with the given weights (`[filters, C·KH·KW]`
    /// row-major) and zero biases, with room for `states` optimizer state tensors per parameter.
    pub fn new(
        b: &B,
        window: Window,
        filters: usize,
        weights: &[f32],
        states: usize,
    ) -> Result<Self> {
        Ok(Conv {
            weight: Param::new(b, filters, window.patch(), weights, states)?,
            bias: Param::new(b, 1, filters, &vec![0.0; filters], states)?,
            window,
            filters,
            scratch: B::ConvScratch::default(),
        })
    }
}

impl<B: Backend> Layer<B> for Conv<B> {
    fn output_shape(&self) -> Shape {
        self.window.output(self.filters)
    }

    /// The implicit GEMM: `y = f(conv(x, W) + b)` as `[N, O·OH·OW]`, no columns kept (training too:
    /// the backward pass recomputes them).
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, then: Activation) -> Result<()> {
        let epilogue = Epilogue::forward(Some(&self.bias.value), then);
        b.convolution(&self.window, x, &self.weight.value, epilogue, y)
    }

    /// [`Backend::convolution_backward`]: `dW`, `db` and, when asked, `dx` through the activation
    /// `before` that produced `x`.
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        let grads = ConvGrads {
            weight: &mut self.weight.grad,
            bias: &mut self.bias.grad,
            input: dx,
            before: Epilogue::through(before, x),
        };
        let (w, weight) = (&self.window, &self.weight.value);
        b.convolution_backward(w, x, dy, weight, grads, &mut self.scratch)
    }

    fn params(&self) -> Vec<&Param<B>> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param<B>> {
        vec![&mut self.weight, &mut self.bias]
    }

    fn fuses_activations(&self) -> bool {
        true
    }

    /// As PyTorch's `nn.Conv2d`: `weight` `[O, C, KH, KW]`, `bias` `[O]`.
    fn saved_tensors(&self) -> Vec<&B::Tensor> {
        vec![&self.weight.value, &self.bias.value]
    }

    fn export(&self, values: &[Vec<f32>]) -> Vec<Exported> {
        let w = &self.window;
        vec![
            Exported {
                name: "weight",
                shape: vec![self.filters, w.input.channels, w.kernel_h, w.kernel_w],
                values: Values::F32(values[0].clone()),
            },
            Exported {
                name: "bias",
                shape: vec![self.filters],
                values: Values::F32(values[1].clone()),
            },
        ]
    }

    fn import(&mut self, b: &B, read: &Import<'_>) -> Result<()> {
        let w = &self.window;
        let shape = [self.filters, w.input.channels, w.kernel_h, w.kernel_w];
        let weight = read("weight", &shape)?.into_f32("weight")?;
        b.write(&mut self.weight.value, &weight)?;
        let bias = read("bias", &[self.filters])?.into_f32("bias")?;
        b.write(&mut self.bias.value, &bias)
    }
}

//! Max and average pooling: each channel's windows reduced to their largest value or their mean.
//! Max pooling saves which position won, so its backward pass routes each gradient to that one input
//! (a gather: no atomics, deterministic).

use std::cell::RefCell;

use super::conv::options;
use super::{BuildAt, Draw, Layer, LayerKind, Shape};
use crate::activation::Activation;
use crate::backend::{Backend, Epilogue, Shaped};
use crate::error::{Error, Result};
use crate::window::Window;

/// What a pooling window computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The largest value.
    Max,
    /// The mean.
    Average,
}

/// `max_pool K [stride S]` or `avg_pool K [stride S]`: `K × K` windows, moving by `S` (default `K`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolKind {
    /// Max or average.
    pub reduce: Reduce,
    /// Window rows and columns.
    pub size: usize,
    /// Step between windows.
    pub stride: usize,
}

fn parse_pool(reduce: Reduce, item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    let bad = || {
        Error::Invalid(format!(
            "layer `{item}`: expected a window size, e.g. `max_pool 2` or `max_pool 3 stride 2`"
        ))
    };
    let (size, rest) = args.split_first().ok_or_else(bad)?;
    let size: usize = size.parse().map_err(|_| bad())?;
    let (stride, _) = options(item, rest, false)?;
    let stride = stride.unwrap_or(size);
    if size == 0 || stride == 0 {
        return Err(bad());
    }
    Ok(Box::new(PoolKind {
        reduce,
        size,
        stride,
    }))
}

/// Reads `max_pool K [stride S]`.
pub fn parse_max(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    parse_pool(Reduce::Max, item, args)
}

/// Reads `avg_pool K [stride S]`.
pub fn parse_avg(item: &str, args: &[&str]) -> Result<Box<dyn LayerKind>> {
    parse_pool(Reduce::Average, item, args)
}

impl PoolKind {
    fn window(&self, input: Shape) -> Result<Window> {
        Window::new(input, self.size, self.size, self.stride, 0)
    }

    fn build<B: Backend>(&self, _b: &B, at: &mut BuildAt<'_>) -> Result<Box<dyn Layer<B>>> {
        Ok(Box::new(Pool::<B> {
            reduce: self.reduce,
            window: self.window(at.input)?,
            winners: RefCell::new(None),
        }))
    }
}

impl LayerKind for PoolKind {
    fn name(&self) -> &'static str {
        match self.reduce {
            Reduce::Max => "max_pool",
            Reduce::Average => "avg_pool",
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("{} {}", self.name(), self.size);
        if self.stride != self.size {
            s += &format!(" stride {}", self.stride);
        }
        s
    }

    fn output_shape(&self, input: Shape) -> Result<Shape> {
        if input.is_flat() {
            return Err(Error::Invalid(format!(
                "`{}` needs images, not {} flat features",
                self.describe(),
                input.len()
            )));
        }
        Ok(self.window(input)?.output(input.channels))
    }

    crate::build_on_every_backend!(build);
}

/// A pooling layer.
pub struct Pool<B: Backend> {
    reduce: Reduce,
    window: Window,
    /// Max pooling's winners (`i·K + j` per output) for the last batch, and that batch's size.
    winners: RefCell<Option<(usize, B::Indices)>>,
}

impl<B: Backend> Layer<B> for Pool<B> {
    fn output_shape(&self) -> Shape {
        self.window.output(self.window.input.channels)
    }

    /// `y = f(max or mean of each window)`.
    fn forward(&self, b: &B, x: &B::Tensor, y: &mut B::Tensor, then: Activation) -> Result<()> {
        match self.reduce {
            Reduce::Average => b.avg_pool(&self.window, x, then, y),
            Reduce::Max => {
                let mut slot = self.winners.borrow_mut();
                if slot.as_ref().is_none_or(|(rows, _)| *rows != x.rows()) {
                    *slot = Some((x.rows(), b.indices(&vec![0; y.len()])?));
                }
                let (_, winners) = slot.as_mut().expect("allocated above");
                b.max_pool(&self.window, x, then, y, winners)
            }
        }
    }

    /// `dx = route(dy) ⊙ f'(x)`: to each window's winner, or spread evenly over the window.
    fn backward(
        &mut self,
        b: &B,
        x: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        before: Activation,
        _draw: Draw,
    ) -> Result<()> {
        let Some(dx) = dx else {
            return Ok(());
        };
        let epilogue = Epilogue::through(before, x);
        match self.reduce {
            Reduce::Average => b.avg_pool_backward(&self.window, dy, epilogue, dx),
            Reduce::Max => {
                let slot = self.winners.borrow();
                let (_, winners) = slot.as_ref().ok_or_else(|| {
                    Error::Invalid("max pooling's backward pass before its forward pass".into())
                })?;
                b.max_pool_backward(&self.window, dy, winners, epilogue, dx)
            }
        }
    }

    fn fuses_activations(&self) -> bool {
        true
    }
}

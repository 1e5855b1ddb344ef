//! Lesson 15, im2col: how a convolution becomes one matrix product. Every position of the filter
//! window over the input becomes one row holding the values under the window (all channels), so that
//! the filters, one per row of their own matrix, meet every window in a single product. The rows
//! repeat each input value once per window that covers it: memory traded for the fastest kernel there
//! is.

use crate::backend::{Backend, Epilogue};
use crate::error::Result;
use crate::layers::Shape;
use crate::window::Window;

/// A batch unrolled: its window and its columns `[N·OH·OW, C·KH·KW]`.
pub struct Unrolled {
    /// The window (input shape, kernel, stride, padding).
    pub window: Window,
    /// Images in the batch.
    pub batch: usize,
    /// The columns, row-major.
    pub cols: Vec<f32>,
}

impl Unrolled {
    /// `(rows, cols)` of the column matrix.
    pub fn shape(&self) -> (usize, usize) {
        (self.batch * self.window.positions(), self.window.patch())
    }
}

/// Unrolls `x` (`batch` images of `window.input`) on `b`.
pub fn unroll<B: Backend>(b: &B, window: Window, batch: usize, x: &[f32]) -> Result<Unrolled> {
    let xt = b.tensor(batch, window.input.len(), x)?;
    let mut cols = b.zeros(batch * window.positions(), window.patch())?;
    b.im2col(&window, &xt, &mut cols)?;
    Ok(Unrolled {
        window,
        batch,
        cols: b.read(&cols)?,
    })
}

/// The lesson's small example: the 3×3 image 1…9 under a 2×2 window, stride 1: four positions, four
/// values each.
pub fn small_example<B: Backend>(b: &B) -> Result<Unrolled> {
    let window = Window::new(Shape::image(1, 3, 3), 2, 2, 1, 0)?;
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    unroll(b, window, 1, &x)
}

/// The book's shapes: one 3×7×7 image and a batch of ten under a 5×5 window give 9 and 90 rows of 75.
pub fn book_shapes<B: Backend>(b: &B) -> Result<[(usize, usize); 2]> {
    let window = Window::new(Shape::image(3, 7, 7), 5, 5, 1, 0)?;
    let shape = |batch: usize| -> Result<(usize, usize)> {
        Ok(unroll(b, window, batch, &vec![0.5; batch * 147])?.shape())
    };
    Ok([shape(1)?, shape(10)?])
}

/// Convolves the unrolled example with one filter: `cols · filterᵀ`, one output per window position.
pub fn convolve<B: Backend>(b: &B, unrolled: &Unrolled, filter: &[f32]) -> Result<Vec<f32>> {
    let (rows, cols) = unrolled.shape();
    let c = b.tensor(rows, cols, &unrolled.cols)?;
    let f = b.tensor(1, cols, filter)?;
    let mut y = b.zeros(rows, 1)?;
    b.matmul(&c, false, &f, true, Epilogue::none(), &mut y)?;
    b.read(&y)
}

//! A window sliding over images: the geometry convolution and pooling share.
//!
//! An input image is `C × H × W`; a `KH × KW` window moves by `stride` over it, padded with `padding`
//! zeros (convolution) or ignored positions (pooling) on every side. It stops at
//! `OH = (H + 2·padding − KH)/stride + 1` rows and `OW` columns likewise (floor division, as PyTorch).
//! Output position `(oh, ow)` and window offset `(i, j)` read input row `oh·stride + i − padding` and
//! column `ow·stride + j − padding`.

use crate::backend::{ConvGrads, Shaped};
use crate::error::{Error, Result};
use crate::layers::{Shape, check_values};
use crate::shape;

/// A `kernel_h × kernel_w` window over `channels × height × width` images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The input image.
    pub input: Shape,
    /// Window rows.
    pub kernel_h: usize,
    /// Window columns.
    pub kernel_w: usize,
    /// Step between window positions, in both directions.
    pub stride: usize,
    /// Rows and columns added on every side.
    pub padding: usize,
}

impl Window {
    /// A window over `input`, checked: a kernel and stride of at least 1, padding smaller than the
    /// kernel, and a kernel that fits the padded image.
    pub fn new(
        input: Shape,
        kernel_h: usize,
        kernel_w: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let w = Window {
            input,
            kernel_h,
            kernel_w,
            stride,
            padding,
        };
        if input.is_empty() {
            return Err(Error::Invalid(format!(
                "a window over a {}×{}×{} image: channels, rows and columns must be at least 1",
                input.channels, input.height, input.width
            )));
        }
        if kernel_h == 0 || kernel_w == 0 || stride == 0 {
            return Err(Error::Invalid(format!(
                "a {kernel_h}×{kernel_w} window with stride {stride}: sizes and stride must be at least 1"
            )));
        }
        if padding >= kernel_h.max(kernel_w) {
            return Err(Error::Invalid(format!(
                "padding {padding} is not smaller than the {kernel_h}×{kernel_w} window"
            )));
        }
        let image = || {
            format!(
                "a {}×{}×{} image padded by {padding}",
                input.channels, input.height, input.width
            )
        };
        check_values(input.checked_len(), image)?;
        let padded = |side: usize| padding.checked_mul(2).and_then(|p| side.checked_add(p));
        let (Some(rows), Some(cols)) = (padded(input.height), padded(input.width)) else {
            return Err(Error::Invalid(format!("{} is too large", image())));
        };
        if rows < kernel_h || cols < kernel_w {
            return Err(Error::Invalid(format!(
                "a {kernel_h}×{kernel_w} window does not fit {}",
                image()
            )));
        }
        let patch = input.channels.checked_mul(kernel_h);
        check_values(patch.and_then(|p| p.checked_mul(kernel_w)), || {
            format!("a {kernel_h}×{kernel_w} window over {}", image())
        })?;
        check_values(w.out_height().checked_mul(w.out_width()), || {
            format!(
                "the output of a {kernel_h}×{kernel_w} window over {}",
                image()
            )
        })?;
        Ok(w)
    }

    /// Output rows `OH`.
    pub fn out_height(&self) -> usize {
        (self.input.height + 2 * self.padding - self.kernel_h) / self.stride + 1
    }

    /// Output columns `OW`.
    pub fn out_width(&self) -> usize {
        (self.input.width + 2 * self.padding - self.kernel_w) / self.stride + 1
    }

    /// Window positions per channel, `OH·OW`.
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Whether the windows tile the image exactly: no padding, a stride equal to the window on both
    /// axes, and no rows or columns left over (so every input lies in exactly one window).
    pub fn tiles_exactly(&self) -> bool {
        self.padding == 0
            && self.stride == self.kernel_h
            && self.stride == self.kernel_w
            && self.out_height() * self.kernel_h == self.input.height
            && self.out_width() * self.kernel_w == self.input.width
    }

    /// Values under the window across all channels, `C·KH·KW`: one im2col row.
    pub fn patch(&self) -> usize {
        self.input.channels * self.kernel_h * self.kernel_w
    }

    /// Values the window covers in one channel, `KH·KW`.
    pub fn area(&self) -> usize {
        self.kernel_h * self.kernel_w
    }

    /// One sample's output with `channels` channels at every window position.
    pub fn output(&self, channels: usize) -> Shape {
        Shape::image(channels, self.out_height(), self.out_width())
    }

    /// The input row (or column, with `out` a column) that output `out` and window offset `k` read,
    /// or `None` in the padding.
    pub fn source(&self, out: usize, k: usize, size: usize) -> Option<usize> {
        (out * self.stride + k)
            .checked_sub(self.padding)
            .filter(|&v| v < size)
    }

    /// The output positions `o` along one dimension (`size_out` of them, window size `kernel`) and
    /// window offsets `k` with `o·stride + k − padding = at`: where input position `at` was read, so
    /// where its gradient gathers from, in increasing `k`.
    pub fn covering(
        &self,
        at: usize,
        size_out: usize,
        kernel: usize,
    ) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..kernel).filter_map(move |k| {
            let shifted = (at + self.padding).checked_sub(k)?;
            (shifted % self.stride == 0 && shifted / self.stride < size_out)
                .then_some((shifted / self.stride, k))
        })
    }

    /// For a square window with stride 1 and padding below the kernel size, the window of the
    /// convolution that carries a `filters`-channel output gradient back to this window's input: over
    /// the output's `OH × OW` images, the same kernel size, padding `KH − 1 − padding`, so that its
    /// output is the input's `H × W`. With the filters flipped and transposed (`flip_filters`),
    /// `dx = conv(dy)` without im2col's columns. `None` for other windows.
    pub fn transposed(&self, filters: usize) -> Option<Window> {
        let (k, padding) = (self.kernel_h, self.padding);
        if self.stride != 1 || self.kernel_w != k || padding >= k {
            return None;
        }
        let t = Window::new(self.output(filters), k, k, 1, k - 1 - padding).ok()?;
        debug_assert_eq!(t.output(self.input.channels), self.input);
        Some(t)
    }

    /// The parameters a kernel reads, in `shaders/window.wgsl`'s order: batch, C, H, W, KH, KW, stride,
    /// padding, OH, OW.
    pub fn words(&self, batch: usize) -> [u32; 10] {
        [
            batch,
            self.input.channels,
            self.input.height,
            self.input.width,
            self.kernel_h,
            self.kernel_w,
            self.stride,
            self.padding,
            self.out_height(),
            self.out_width(),
        ]
        .map(|v| v as u32)
    }

    /// Checks that `x` holds images of the window's input shape and returns the batch size.
    pub fn check_input<T: Shaped>(&self, what: &str, x: &T) -> Result<usize> {
        if x.cols() != self.input.len() {
            return Err(Error::shape(format!(
                "{what}: {} features per sample where images of {} ({} values) belong",
                x.cols(),
                self.input,
                self.input.len()
            )));
        }
        Ok(x.rows())
    }

    /// Checks im2col's operands (`x` `[N, C·H·W]`, `cols` `[N·P, C·KH·KW]`) and returns `N`.
    pub fn check_columns<T: Shaped>(&self, x: &T, cols: &T) -> Result<usize> {
        let n = self.check_input("im2col input", x)?;
        shape::exact("im2col columns", cols, n * self.positions(), self.patch())?;
        Ok(n)
    }

    /// Checks a convolution's operands (`x` `[N, C·H·W]`, `weight` `[O, C·KH·KW]`, an optional bias
    /// `[1, O]`, `y` `[N, O·OH·OW]`) and returns `(N, O)`.
    pub fn check_convolution<T: Shaped>(
        &self,
        x: &T,
        weight: &T,
        bias: Option<&T>,
        y: &T,
    ) -> Result<(usize, usize)> {
        let n = self.check_input("convolution input", x)?;
        let filters = weight.rows();
        if filters == 0 {
            return Err(Error::Invalid(
                "a convolution needs at least one filter".into(),
            ));
        }
        shape::exact("convolution filters", weight, filters, self.patch())?;
        if let Some(bias) = bias {
            shape::exact("convolution bias", bias, 1, filters)?;
        }
        shape::exact("convolution output", y, n, self.output(filters).len())?;
        Ok((n, filters))
    }

    /// Checks a convolution's backward operands before anything is written: `x`, `weight` and `dy` as
    /// [`Window::check_convolution`] checks a forward pass's, the gradients shaped as what they
    /// differentiate, and `before` a gradient epilogue over an output shaped like `x`. Returns `(N, O)`.
    pub fn check_convolution_backward<T: Shaped>(
        &self,
        x: &T,
        dy: &T,
        weight: &T,
        grads: &ConvGrads<'_, T>,
    ) -> Result<(usize, usize)> {
        let (n, filters) = self.check_convolution(x, weight, Some(&*grads.bias), dy)?;
        shape::same("convolution filter gradient", weight, &*grads.weight)?;
        if let Some(dx) = &grads.input {
            shape::same("convolution input gradient", x, &**dx)?;
        }
        if let Some((_, output)) = grads.before.gradient_factor()? {
            shape::same("activation output", output, x)?;
        }
        Ok((n, filters))
    }

    /// Checks a pooling's operands (`x` `[N, C·H·W]`, `y` `[N, C·OH·OW]`) and returns `N`.
    pub fn check_pool<T: Shaped>(&self, x: &T, y: &T) -> Result<usize> {
        let n = self.check_input("pooling input", x)?;
        let out = self.output(self.input.channels).len();
        shape::exact("pooling output", y, n, out)?;
        Ok(n)
    }
}

/// Checks a layout change between `[N·P, C]` rows and `[N, C·P]` planes (`rows` and `planes` as named);
/// returns `(N, C)`.
pub fn check_layouts<T: Shaped>(positions: usize, rows: &T, planes: &T) -> Result<(usize, usize)> {
    let channels = rows.cols();
    if positions == 0 || !rows.rows().is_multiple_of(positions) {
        return Err(Error::shape(format!(
            "{} rows are not whole samples of {positions} positions",
            rows.rows()
        )));
    }
    let n = rows.rows() / positions;
    shape::exact("channel planes", planes, n, channels * positions)?;
    Ok((n, channels))
}

//! Shape checks shared by every backend, so both reject the same calls with the same message.

use crate::backend::{Epilogue, Shaped};
use crate::error::{Error, Result};

/// Checks `op(A)·op(B) → C` and its epilogue's operands (a `[1, N]` bias, an `[M, N]` forward output for a
/// gradient epilogue, whose activation must allow it) and returns `(M, K, N)`.
pub fn matmul<T: Shaped>(
    a: &T,
    trans_a: bool,
    b: &T,
    trans_b: bool,
    epilogue: &Epilogue<'_, T>,
    c: &T,
) -> Result<(usize, usize, usize)> {
    let (m, k) = if trans_a {
        (a.cols(), a.rows())
    } else {
        (a.rows(), a.cols())
    };
    let (k2, n) = if trans_b {
        (b.cols(), b.rows())
    } else {
        (b.rows(), b.cols())
    };
    if k != k2 {
        return Err(Error::shape(format!(
            "matmul inner dimensions differ: op(A) is {m}×{k}, op(B) is {k2}×{n}"
        )));
    }
    if c.rows() != m || c.cols() != n {
        return Err(Error::shape(format!(
            "matmul output is {}×{}, expected {m}×{n}",
            c.rows(),
            c.cols()
        )));
    }
    if let Some(output) = epilogue.grad_output() {
        exact("activation output of a gradient epilogue", output, m, n)?;
        let act = epilogue.activation();
        if !act.has_output_derivative() {
            return Err(Error::Invalid(format!(
                "{act:?}'s derivative cannot be computed from its output; apply its backward pass \
                 separately (activation_backward)"
            )));
        }
    }
    if let Some(bias) = epilogue.bias_row()
        && (bias.rows() != 1 || bias.cols() != n)
    {
        return Err(Error::shape(format!(
            "bias is {}×{}, expected 1×{n}",
            bias.rows(),
            bias.cols()
        )));
    }
    Ok((m, k, n))
}

/// Checks that `a` and `b` have the same shape.
pub fn same<T: Shaped>(what: &str, a: &T, b: &T) -> Result<()> {
    if a.rows() == b.rows() && a.cols() == b.cols() {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "{what}: {}×{} vs {}×{}",
            a.rows(),
            a.cols(),
            b.rows(),
            b.cols()
        )))
    }
}

/// Checks that `a` and `b` hold the same number of values, whatever their shapes.
pub fn same_len<T: Shaped>(what: &str, a: &T, b: &T) -> Result<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "{what}: {}×{} vs {}×{} hold different numbers of values",
            a.rows(),
            a.cols(),
            b.rows(),
            b.cols()
        )))
    }
}

/// Checks that `t` is `rows × cols`.
pub fn exact<T: Shaped>(what: &str, t: &T, rows: usize, cols: usize) -> Result<()> {
    if t.rows() == rows && t.cols() == cols {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "{what} is {}×{}, expected {rows}×{cols}",
            t.rows(),
            t.cols()
        )))
    }
}

/// Checks that there is one label per row of a `rows`-row batch.
pub fn labels(rows: usize, labels: usize) -> Result<()> {
    if labels == rows {
        Ok(())
    } else {
        Err(Error::shape(format!("{labels} labels for {rows} rows")))
    }
}

/// Checks that a host slice of `len` elements fills a `rows × cols` tensor.
pub fn data_len(len: usize, rows: usize, cols: usize) -> Result<()> {
    if rows.checked_mul(cols) == Some(len) {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "{len} values cannot fill a {rows}×{cols} tensor"
        )))
    }
}

/// Checks a batch gather: `rows` samples from `order[offset..]` of an order of length `order_len`,
/// into labels of length `labels_len`, with `cols` equal to the set's `features`.
pub fn gather(
    order_len: usize,
    offset: usize,
    rows: usize,
    cols: usize,
    features: usize,
    labels_len: usize,
) -> Result<()> {
    if cols != features {
        return Err(Error::shape(format!(
            "batch has {cols} columns but samples have {features} features"
        )));
    }
    if labels_len != rows {
        return Err(Error::shape(format!(
            "batch has {rows} rows but {labels_len} labels"
        )));
    }
    if offset.checked_add(rows).is_none_or(|end| end > order_len) {
        return Err(Error::shape(format!(
            "batch of {rows} at offset {offset} runs past the order's {order_len} entries"
        )));
    }
    Ok(())
}

/// Checks a dataset's byte counts: `labels.len()` samples of `features` bytes each.
pub fn dataset(pixels: usize, labels: usize, features: usize) -> Result<()> {
    if features == 0 || labels.checked_mul(features) != Some(pixels) {
        return Err(Error::shape(format!(
            "{pixels} pixel bytes are not {labels} samples of {features} features"
        )));
    }
    Ok(())
}

/// Checks an optimizer step's operands: the gradient matches the parameter, and so does every state
/// tensor the rule uses (`code` as in [`crate::OptimStep::code`]; unused states may be any shape).
pub fn optimizer<T: Shaped>(code: u32, param: &T, grad: &T, s1: &T, s2: &T) -> Result<()> {
    same("optimizer gradient", param, grad)?;
    let needed = match code {
        0 => 0,
        1..=3 => 1,
        _ => 2,
    };
    for (i, s) in [s1, s2].into_iter().enumerate().take(needed) {
        same(&format!("optimizer state {}", i + 1), param, s)?;
    }
    Ok(())
}

/// Checks a batch normalisation's operands: `x` is `[N, C·S]` with `C = affine.cols()` channels,
/// `affine` and every per-channel tensor are `[2, C]`, and `y` has `x`'s shape. Returns `(C, S)`.
pub fn batch_norm<T: Shaped>(
    x: &T,
    affine: &T,
    per_channel: &[(&str, &T)],
    y: &T,
) -> Result<(usize, usize)> {
    let c = affine.cols();
    exact("batch-norm scale and shift", affine, 2, c)?;
    if c == 0 || !x.cols().is_multiple_of(c) {
        return Err(Error::shape(format!(
            "batch norm over {c} channels cannot split {} features per sample",
            x.cols()
        )));
    }
    for (what, t) in per_channel {
        exact(what, *t, 2, c)?;
    }
    same("batch-norm output", x, y)?;
    Ok((c, x.cols() / c))
}

/// Checks that batch statistics have at least two values per channel (`rows·spatial ≥ 2`).
pub fn batch_statistics(rows: usize, spatial: usize) -> Result<()> {
    if rows * spatial < 2 {
        return Err(Error::shape(format!(
            "batch normalisation in training needs at least 2 values per channel, got {rows} sample(s) \
             of {spatial}; use a batch of 2 or more"
        )));
    }
    Ok(())
}

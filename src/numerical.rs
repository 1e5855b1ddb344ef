//! Numerical differentiation, as the curriculum teaches it: the central difference
//! `f'(x) ≈ (f(x + h) - f(x - h)) / 2h`, whose error shrinks as h² (the forward difference's as h).

/// `df/dx` at `x` by central difference with step `h`.
pub fn derivative(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
    (f(x + h) - f(x - h)) / (2.0 * h)
}

/// The gradient of `f` at `x`: one central difference per coordinate, each with step `h`.
/// `x` is restored before returning.
pub fn gradient(mut f: impl FnMut(&[f32]) -> f64, x: &mut [f32], h: f32) -> Vec<f32> {
    let mut grad = Vec::with_capacity(x.len());
    for i in 0..x.len() {
        let original = x[i];
        x[i] = original + h;
        let up = f(x);
        x[i] = original - h;
        let down = f(x);
        x[i] = original;
        grad.push(((up - down) / (2.0 * f64::from(h))) as f32);
    }
    grad
}

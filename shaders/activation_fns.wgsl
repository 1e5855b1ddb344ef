// Element-wise activation functions, shared by activation.wgsl and the matmul epilogues (the host
// appends this file). Codes match `Activation::code` in src/activation.rs.
//
//   0 identity  f = x                         f' = 1
//   1 step      f = [x > 0]                   f' = 0
//   2 sigmoid   f = σ(x) = 1 / (1 + e^-x)     f' = σ(1 - σ)
//   3 tanh      f = tanh x                    f' = 1 - tanh² x
//   4 relu      f = max(0, x)                 f' = [x > 0]
//   5 leaky     f = x > 0 ? x : αx            f' = x > 0 ? 1 : α
//   6 elu       f = x > 0 ? x : α(e^x - 1)    f' = x > 0 ? 1 : αe^x
//   7 selu      f = λ·elu_α(x)                f' = λ·elu_α'(x)   (λ, α fixed)
//   8 swish     f = x·σ(x)                    f' = σ + xσ(1 - σ)
//   9 gelu      f = ½x(1 + tanh u) = x·s, u = c(x + kx³), s = σ(2u)   f' = s + 2x·s(1 - s)·c(1 + 3kx²)
//               (the σ form saturates exactly and does not cancel where tanh u ≈ -1)
//  10 softplus  f = max(x, 0) + log1p(e^-|x|) f' = σ(x)
//
// act_derivative_from_output gives f' from y = f(x) where y determines it (Activation::output_derivative):
// sigmoid y(1 - y), tanh 1 - y², relu [y > 0], leaky y > 0 ? 1 : α, elu y > 0 ? 1 : y + α,
// selu y > 0 ? λ : y + λα, softplus 1 - e^-y (α ≥ 0; swish and gelu are never asked for).

const SELU_LAMBDA: f32 = 1.050701;
const SELU_ALPHA: f32 = 1.6732632;
const GELU_C: f32 = 0.7978846; // √(2/π)
const GELU_K: f32 = 0.044715;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// True for a NaN: all exponent bits set and a non-zero mantissa (compilers may fold `v != v`).
fn is_nan_bits(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// tanh saturates to ±1 in f32 beyond |x| = 9; clamping keeps e^{2x} inside the float range. A clamp
// may turn NaN into a bound, so NaN is passed through.
fn tanh_safe(x: f32) -> f32 {
    return select(tanh(clamp(x, -15.0, 15.0)), x, is_nan_bits(x));
}

// e^x - 1 without cancellation near 0 (Kahan's trick: the rounding of u = e^x cancels in (u-1)/log u).
fn expm1(x: f32) -> f32 {
    let u = exp(x);
    if (u == 1.0) {
        return x;
    }
    let um1 = u - 1.0;
    if (um1 == -1.0) {
        return -1.0;
    }
    return um1 * x / log(u);
}

// log(1 + x) without cancellation near 0 (the same trick).
fn log1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if (u == 1.0) {
        return x;
    }
    return log(u) * x / (u - 1.0);
}

fn act_forward(code: u32, alpha: f32, x: f32) -> f32 {
    switch code {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return sigmoid(x); }
        case 3u: { return tanh_safe(x); }
        case 4u: { return max(x, 0.0); }
        case 5u: { return select(alpha * x, x, x > 0.0); }
        case 6u: { return select(alpha * expm1(x), x, x > 0.0); }
        case 7u: { return SELU_LAMBDA * select(SELU_ALPHA * expm1(x), x, x > 0.0); }
        case 8u: { return x * sigmoid(x); }
        case 9u: { return x * sigmoid(2.0 * GELU_C * (x + GELU_K * x * x * x)); }
        case 10u: { return max(x, 0.0) + log1p(exp(-abs(x))); }
        default: { return x; }
    }
}

fn act_derivative(code: u32, alpha: f32, x: f32) -> f32 {
    switch code {
        case 1u: { return 0.0; }
        case 2u: {
            let s = sigmoid(x);
            return s * (1.0 - s);
        }
        case 3u: {
            let t = tanh_safe(x);
            return 1.0 - t * t;
        }
        case 4u: { return select(0.0, 1.0, x > 0.0); }
        case 5u: { return select(alpha, 1.0, x > 0.0); }
        case 6u: { return select(alpha * exp(x), 1.0, x > 0.0); }
        case 7u: { return SELU_LAMBDA * select(SELU_ALPHA * exp(x), 1.0, x > 0.0); }
        case 8u: {
            let s = sigmoid(x);
            return s + x * s * (1.0 - s);
        }
        case 9u: {
            let s = sigmoid(2.0 * GELU_C * (x + GELU_K * x * x * x));
            return s + x * 2.0 * s * (1.0 - s) * GELU_C * (1.0 + 3.0 * GELU_K * x * x);
        }
        case 10u: { return sigmoid(x); }
        default: { return 1.0; }
    }
}

fn act_derivative_from_output(code: u32, alpha: f32, y: f32) -> f32 {
    switch code {
        case 1u: { return 0.0; }
        case 2u: { return y * (1.0 - y); }
        case 3u: { return 1.0 - y * y; }
        case 4u: { return select(0.0, 1.0, y > 0.0); }
        case 5u: { return select(alpha, 1.0, y > 0.0); }
        case 6u: { return select(y + alpha, 1.0, y > 0.0); }
        case 7u: { return select(y + SELU_LAMBDA * SELU_ALPHA, SELU_LAMBDA, y > 0.0); }
        case 10u: { return -expm1(-y); }
        default: { return 1.0; }
    }
}

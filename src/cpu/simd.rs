//! Vector arithmetic on the CPU without a vector library: branch-free `exp`, sigmoid and tanh that the
//! compiler vectorises, and [`widest`], which runs a closure compiled for the widest vectors the
//! processor has (AVX-512, else AVX2), chosen at run time, so that one binary suits every x86-64.
//!
//! Nothing here is contracted into fused multiply-adds, and what callers fuse they write as `mul_add`
//! (one rounding on every path, the baseline's through the C library), so every vector width computes
//! the same bits.

/// Runs `f` compiled for AVX-512F where the processor has it, else AVX2 with FMA, else the baseline: loops inside
/// `f` (and `#[inline(always)]` functions it calls) vectorise 16, 8 or 4 lanes wide.
#[inline(always)]
pub(super) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F, checked just above.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the processor has AVX2 and FMA, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `e^x` in f32, within 2 ulp: `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its Taylor polynomial
/// of degree 7 and `2^k` built in the exponent bits. Inputs are clamped to `[-87, 88]`, where `2^k`
/// stays a normal float (`e^-87` is then the smallest result, `e^88` the largest); NaN stays NaN.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that k·LN2_HI is exact for |k| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // The rounded sum holds k in its low mantissa bits: read it there, with integer arithmetic only
    // (a float-to-integer conversion would not vectorise as well).
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    // For NaN the scale is garbage, but p carries the NaN through.
    p * f32::from_bits(k_int.wrapping_add(127) << 23)
}

/// `σ(x) = 1/(1 + e^-x)`.
#[inline(always)]
pub(super) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = sign(x)·(1 − e^{−2|x|})/(1 + e^{−2|x|})`, and `x − x³/3 + 2x⁵/15` below `|x| = 1/16`
/// where the quotient would cancel (the series' first omitted term is under 1e-9 there).
#[inline(always)]
pub(super) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp(-2.0 * a);
    let quotient = (1.0 - e) / (1.0 + e);
    let a2 = a * a;
    let series = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0)));
    let t = if a < 0.0625 { series } else { quotient };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_match_the_standard_library() {
        let mut worst = [0.0f64; 3];
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.4e-4;
            if x >= -87.0 {
                let e = f64::from(x).exp();
                worst[0] = worst[0].max(((f64::from(exp(x)) - e) / e).abs());
            }
            let s = 1.0 / (1.0 + (-f64::from(x)).exp());
            worst[1] = worst[1].max((f64::from(sigmoid(x)) - s).abs());
            let t = f64::from(x).tanh();
            worst[2] = worst[2].max((f64::from(tanh(x)) - t).abs() / t.abs().max(1e-3));
        }
        assert!(worst[0] < 3e-7, "exp relative error {}", worst[0]);
        assert!(worst[1] < 2e-7, "sigmoid absolute error {}", worst[1]);
        assert!(worst[2] < 5e-7, "tanh relative error {}", worst[2]);
        assert!(exp(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert_eq!((tanh(30.0), tanh(-30.0), sigmoid(200.0)), (1.0, -1.0, 1.0));
        assert!(sigmoid(-200.0) < 1e-37 && exp(-200.0) > 0.0 && exp(200.0).is_finite());
        assert_eq!(tanh(0.0), 0.0);
        assert!(tanh(-0.0).is_sign_negative());
    }
}

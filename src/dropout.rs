//! Inverted dropout's mask, drawn by a counter-based hash so that every backend drops the same elements.
//!
//! Element `i` of a tensor is kept when its 24-bit draw `mix(mix(i ⊕ key_lo) ⊕ key_hi) >> 8` is at least
//! `round(p·2²⁴)`, and kept elements are scaled by `1/(1 - p)` so that the layer's expected output equals
//! its input. The draw needs no state and no stored mask: the backward pass draws the same mask again
//! from the same key. `shaders/dropout.wgsl` computes the same integers.

use crate::error::{Error, Result};

/// A 32-bit integer mixer (two xor-shift-multiply rounds, the "lowbias32" constants): a bijection in
/// which every input bit affects every output bit.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The uniform 24-bit draw of element `i` under `key`.
pub fn draw(key: u64, i: u32) -> u32 {
    mix(mix(i ^ key as u32) ^ (key >> 32) as u32) >> 8
}

/// Draws below this are dropped: `round(p·2²⁴)`.
pub fn threshold(p: f32) -> u32 {
    (f64::from(p) * f64::from(1u32 << 24)).round() as u32
}

/// What kept elements are multiplied by, `1/(1 - p)`.
pub fn scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

/// A Bernoulli sample with probability `p` from the 24-bit draw `draw`: 1 when `draw + 1 ≤ p·2²⁴`, else
/// 0, so the chance is `⌊p·2²⁴⌋/2²⁴` (within 2⁻²⁴ of `p`). Both sides are exact in f32, and any
/// `p < 2⁻²⁴` (subnormals included, which some devices flush) gives 0, so every device computes the same
/// bit; a NaN `p` gives 0. `shaders/dropout.wgsl`'s `bernoulli` computes the same.
pub fn bernoulli(draw: u32, p: f32) -> f32 {
    if (draw + 1) as f32 <= p * (1u32 << 24) as f32 {
        1.0
    } else {
        0.0
    }
}

/// Checks that `p` is a drop probability dropout can use: finite and in `[0, 1)`.
pub fn check(p: f32) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "dropout probability {p} must be at least 0 and below 1"
        )))
    }
}

/// The key of layer `layer`'s mask in training step `step` of a run seeded with `seed`: distinct for every
/// (seed, layer, step), through SplitMix64's finaliser.
pub fn key(seed: u64, layer: usize, step: u64) -> u64 {
    let finalise = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    finalise(seed ^ finalise(step.wrapping_add((layer as u64) << 48)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_p_of_the_draws_fall_below_the_threshold() {
        for p in [0.1f32, 0.5, 0.9] {
            let n = 100_000u32;
            let dropped = (0..n)
                .filter(|&i| draw(key(7, 1, 3), i) < threshold(p))
                .count() as f64;
            let expected = f64::from(p) * f64::from(n);
            // Binomial: 5 standard deviations is a bound a correct draw exceeds about once in 3.5 million.
            let sd = (expected * (1.0 - f64::from(p))).sqrt();
            assert!(
                (dropped - expected).abs() < 5.0 * sd,
                "p {p}: {dropped} dropped"
            );
        }
        assert_eq!(threshold(0.0), 0);
        assert!(check(1.0).is_err() && check(-0.1).is_err() && check(f32::NAN).is_err());
    }

    #[test]
    fn keys_differ_by_seed_layer_and_step() {
        let keys = [key(1, 0, 0), key(2, 0, 0), key(1, 1, 0), key(1, 0, 1)];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}

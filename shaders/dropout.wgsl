// Inverted dropout, forward and backward alike (the backward pass runs it on the gradient, same key):
//
//   y[i] = draw(i) ≥ threshold ? x[i] · scale : 0,   draw(i) = mix(mix(i ⊕ key_lo) ⊕ key_hi) >> 8,
//   threshold = round(p·2²⁴),   scale = 1/(1 - p).
//
// The integers are those of src/dropout.rs, so every backend drops the same elements. Element-wise over
// vec4s (elementwise.wgsl, appended by the host).

struct Params {
    n: u32,
    key_lo: u32,
    key_hi: u32,
    threshold: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

// The "lowbias32" mixer: xor-shift-multiply rounds.
fn mix(v: u32) -> u32 {
    var h = v ^ (v >> 16u);
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    return h ^ (h >> 16u);
}

fn kept(i: u32) -> bool {
    return (mix(mix(i ^ p.key_lo) ^ p.key_hi) >> 8u) >= p.threshold;
}

@compute @workgroup_size(LANES)
fn dropout(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let v = element(at, k);
        if (v >= vec4_count(p.n)) {
            return;
        }
        let i = v * 4u;
        let keep = vec4<bool>(kept(i), kept(i + 1u), kept(i + 2u), kept(i + 3u));
        y[v] = select(vec4<f32>(0.0), x[v] * p.scale, keep);
    }
}

// Bernoulli sampling with the same draws, for a restricted Boltzmann machine's units (same Params;
// threshold and scale unused, x holds the probabilities, y receives the 0/1 sample):
//
//   y[i] = draw(i) + 1 ≤ p[i]·2²⁴ ? 1 : 0.
//
// draw(i) + 1 ≤ 2²⁴ converts to f32 exactly and p·2²⁴ is exact (a p under 2⁻²⁴, subnormal or not, gives
// 0 either way), so the comparison, and the sample, are the CPU's (src/dropout.rs, `bernoulli`). A NaN
// probability compares false: 0.
fn on(i: u32, prob: f32) -> f32 {
    let d = f32((mix(mix(i ^ p.key_lo) ^ p.key_hi) >> 8u) + 1u);
    return select(0.0, 1.0, d <= prob * 16777216.0);
}

@compute @workgroup_size(LANES)
fn bernoulli(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let v = element(at, k);
        if (v >= vec4_count(p.n)) {
            return;
        }
        let i = v * 4u;
        let q = x[v];
        y[v] = vec4<f32>(on(i, q.x), on(i + 1u, q.y), on(i + 2u, q.z), on(i + 3u, q.w));
    }
}

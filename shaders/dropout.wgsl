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

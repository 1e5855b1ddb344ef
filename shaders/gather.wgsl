// Batch gather from a training set stored once on the device as bytes (four to a u32, little-endian):
//
//   s = order[offset + b];   x[b, j] = byte(s·F + j)·scale + shift;   y[b] = label[s]
//
// for b < rows, j < F (features). x is written as vec4s (elementwise.wgsl). An index past
// the set yields zeros and label 0xFFFFFFFF (which the losses report as NaN), never an out-of-bounds read.

struct Params {
    rows: u32,
    features: u32,
    offset: u32,
    samples: u32,
    scale: f32,
    shift: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pixels: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

// One element of x (for feature counts that are not a multiple of 4): its value, and the label
// written by the first element of each row.
fn gather_one(e: u32) -> f32 {
    if (e >= p.rows * p.features) {
        return 0.0; // padding past the batch
    }
    let b = e / p.features;
    let j = e % p.features;
    let s = order[p.offset + b];
    if (s >= p.samples) {
        if (j == 0u) {
            y[b] = 0xFFFFFFFFu;
        }
        return 0.0;
    }
    if (j == 0u) {
        y[b] = labels[s];
    }
    let byte_index = s * p.features + j;
    let byte = (pixels[byte_index / 4u] >> (8u * (byte_index % 4u))) & 0xFFu;
    return f32(byte) * p.scale + p.shift;
}

// Any feature count: each invocation takes strided runs of x's vec4s, element by element.
@compute @workgroup_size(LANES)
fn gather(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.rows * p.features)) {
            return;
        }
        let e = 4u * i;
        x[i] = vec4(gather_one(e), gather_one(e + 1u), gather_one(e + 2u), gather_one(e + 3u));
    }
}

// Feature counts that are a multiple of 4 (MNIST's 784): one workgroup per row, so the row's sample
// index is looked up once and no lane divides; each vec4 of x is one packed word of the set. The grid
// is one workgroup per row (folded as in elementwise.wgsl).
@compute @workgroup_size(LANES)
fn gather_rows(at: Invocation) {
    let b = workgroup_index(at);
    if (b >= p.rows) {
        return;
    }
    let words = p.features / 4u;
    let s = order[p.offset + b];
    let valid = s < p.samples;
    if (at.lane == 0u) {
        y[b] = select(0xFFFFFFFFu, labels[select(0u, s, valid)], valid);
    }
    for (var c = at.lane; c < words; c += LANES) {
        var v = vec4(0.0);
        if (valid) {
            let word = pixels[s * words + c];
            let bytes = vec4(word & 0xFFu, (word >> 8u) & 0xFFu, (word >> 16u) & 0xFFu, word >> 24u);
            v = vec4<f32>(bytes) * p.scale + p.shift;
        }
        x[b * words + c] = v;
    }
}

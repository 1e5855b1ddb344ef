// Batch gather from a training set stored once on the device as bytes (four to a u32, little-endian):
//
//   s = order[offset + b];   x[b, j] = byte(s·F + j)·scale + shift;   y[b] = label[s]
//
// for b < rows, j < F (features). One invocation per element of x; an index past the set yields zeros
// and label 0xFFFFFFFF (which the losses report as NaN), never an out-of-bounds read.

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
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 64u;
    if (i >= p.rows * p.features) {
        return;
    }
    let b = i / p.features;
    let j = i % p.features;
    let s = order[p.offset + b];
    if (s >= p.samples) {
        x[i] = 0.0;
        if (j == 0u) {
            y[b] = 0xFFFFFFFFu;
        }
        return;
    }
    let byte_index = s * p.features + j;
    let byte = (pixels[byte_index / 4u] >> (8u * (byte_index % 4u))) & 0xFFu;
    x[i] = f32(byte) * p.scale + p.shift;
    if (j == 0u) {
        y[b] = labels[s];
    }
}

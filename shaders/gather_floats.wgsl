// Batch gather from a set of float rows stored once on the device (a table's features, or any set's
// float targets):
//
//   s = order[offset + b];   x[b, j] = src[s·C + j];   y[b] = label[s] (when write_labels)
//
// for b < rows, j < C (cols). One invocation per element of x, the grid folded into two dimensions.
// An index past the set yields zeros and label 0xFFFFFFFF, never an out-of-bounds read.

struct Params {
    rows: u32,
    cols: u32,
    offset: u32,
    samples: u32,
    write_labels: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn gather_floats(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let e = gid.x + gid.y * groups.x * 64u;
    if (e >= p.rows * p.cols) {
        return;
    }
    let b = e / p.cols;
    let j = e % p.cols;
    let s = order[p.offset + b];
    let valid = s < p.samples;
    if (j == 0u && p.write_labels != 0u) {
        y[b] = select(0xFFFFFFFFu, labels[select(0u, s, valid)], valid);
    }
    x[e] = select(0.0, src[select(0u, s * p.cols + j, valid)], valid);
}

// Vector updates and the bias gradient:
//
//   axpy         y += α·x
//   scale        x *= α
//   column_sums  db[j] = Σ_i dy[i, j]   (the gradient of a bias added to every row)
//
// axpy and scale run in blocks (see elementwise.wgsl); column_sums one invocation per column, summing its
// rows in order (no atomics, so results repeat bit for bit).

struct Params {
    n: u32,
    rows: u32,
    cols: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> ax_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> ax_y: array<vec4<f32>>;

@compute @workgroup_size(LANES)
fn axpy(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        ax_y[i] += p.alpha * ax_x[i];
    }
}

@group(0) @binding(3) var<storage, read_write> sc_x: array<vec4<f32>>;

@compute @workgroup_size(LANES)
fn scale(at: Invocation) {
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        sc_x[i] *= p.alpha;
    }
}

@group(0) @binding(4) var<storage, read> cs_dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> cs_db: array<f32>;

@compute @workgroup_size(64)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let j = gid.x + gid.y * groups.x * 64u;
    if (j >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var i = 0u; i < p.rows; i++) {
        s += cs_dy[i * p.cols + j];
    }
    cs_db[j] = s;
}

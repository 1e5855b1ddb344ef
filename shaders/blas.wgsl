// Vector updates and the bias gradient:
//
//   axpy         y += α·x
//   scale        x *= α
//   column_sums  db[j] = Σ_i dy[i, j]   (the gradient of a bias added to every row)
//   sum_squares  total[0] += Σ_i x[i]²   (one tensor's share of a squared global norm)
//   clip         x *= min(1, α/√total[0])   (clipping by global norm α; NaN stays NaN)
//
// axpy, scale and clip run in blocks (see elementwise.wgsl); column_sums in a fixed order without atomics, so
// results repeat bit for bit.

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

// A workgroup of COLS×PHASES invocations sums COLS columns: invocation (x, y) adds rows y, y + PHASES,
// y + 2·PHASES, … of column x in order, then a fixed tree over y sums the PHASES partials (PHASES is a
// power of two). On a GPU (16×16) the short chains of dependent loads keep the device busy where one
// invocation per column walking every row leaves it waiting on memory; on a CPU-emulated adapter
// (64×1) workgroup memory and barriers cost more than they save, so each invocation takes a whole column.
override COLS: u32 = 16u;
override PHASES: u32 = 16u;
var<workgroup> cs_partial: array<f32, 256>;

@compute @workgroup_size(COLS, PHASES)
fn column_sums(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let j = (group.x + group.y * groups.x) * COLS + lid.x;
    var s = 0.0;
    if (j < p.cols) {
        for (var i = lid.y; i < p.rows; i += PHASES) {
            s += cs_dy[i * p.cols + j];
        }
    }
    if (PHASES == 1u) {
        if (j < p.cols) {
            cs_db[j] = s;
        }
        return;
    }
    let slot = lid.y * COLS + lid.x;
    cs_partial[slot] = s;
    workgroupBarrier();
    for (var half = PHASES / 2u; half > 0u; half >>= 1u) {
        if (lid.y < half) {
            cs_partial[slot] += cs_partial[slot + half * COLS];
        }
        workgroupBarrier();
    }
    if (lid.y == 0u && j < p.cols) {
        cs_db[j] = cs_partial[lid.x];
    }
}

@group(0) @binding(6) var<storage, read> ss_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> ss_total: array<f32>;
const SS_WG: u32 = 256u;
var<workgroup> ss_partial: array<f32, SS_WG>;

// One workgroup: invocation i adds x[i], x[i + 256], … in order, then a fixed tree adds the partials.
@compute @workgroup_size(SS_WG)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.n; i += SS_WG) {
        s += ss_x[i] * ss_x[i];
    }
    ss_partial[lid] = s;
    workgroupBarrier();
    for (var half = SS_WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            ss_partial[lid] += ss_partial[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        ss_total[0] += ss_partial[0];
    }
}

@group(0) @binding(8) var<storage, read> cl_total: array<f32>;
@group(0) @binding(9) var<storage, read_write> cl_x: array<vec4<f32>>;

@compute @workgroup_size(LANES)
fn clip(at: Invocation) {
    let norm = sqrt(cl_total[0]);
    // `norm > α` is false for NaN: the factor stays 1 and the NaN reaches the loss.
    let factor = select(1.0, p.alpha / norm, norm > p.alpha);
    for (var k = 0u; k < PER_LANE; k++) {
        let i = element(at, k);
        if (i >= vec4_count(p.n)) {
            return;
        }
        cl_x[i] *= factor;
    }
}

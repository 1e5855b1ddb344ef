// Matrix product for CPU-emulated GPUs (lavapipe) with subgroups of exactly 8:
//
//   C[M,N] = epilogue(op(A)[M,K] · op(B)[K,N]),   op(X) = Xᵀ when TRANS_X   (matmul_epilogue.wgsl)
//
// On lavapipe a subgroup is one row of SIMD lanes: arithmetic is cheap, every load whose address differs
// by lane costs about eight scalar loads, and workgroup memory plus barriers cost more than they save.
// So a workgroup is one subgroup of 8 lanes and uses no workgroup memory: it owns a (GROUPS·8)×32 block
// of C, lane l owning columns 4l..4l+3 of it (GROUPS·8 vec4 accumulators). The host sets GROUPS (1..8)
// to fit M, so that a product with few rows (a weight gradient of 16 filters) runs few idle groups. For
// each step of 4 along K, lane l loads the op(A) values of rows l, l+8, … as vec4s and subgroupBroadcast
// hands every row to all lanes, while each lane loads its own 4×4 patch of op(B); the update is
// acc[r] += a.x·b₀ + a.y·b₁ + a.z·b₂ + a.w·b₃.
// Loads skip bounds checks except along K's last partial step: a lane whose row lies past M loads row
// M−1 instead, and one whose columns pass N loads the last four, and neither stores what it computed.

// With IMPLICIT (matmul_implicit.wgsl) op(A) is a convolution's columns, read from the images through
// each row's patch and each step's four taps, and C is stored as images.
//
// Subgroup builtins need the device's SUBGROUP feature; naga does not yet accept `enable subgroups;`.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Row groups of 8 per workgroup.
override GROUPS: u32 = 8u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    // The convolution's window, read only with IMPLICIT (src/window.rs, Window::words).
    batch: u32,
    channels: u32,
    height: u32,
    width: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// A and B again, as vec4s: one load instead of four where a row's length is a multiple of 4.
@group(0) @binding(5) var<storage, read> a_vec: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b_vec: array<vec4<f32>>;
// The forward output a gradient epilogue reads.
@group(0) @binding(7) var<storage, read> aux: array<f32>;

const LANES: u32 = 8u;

// Bounds-checked loads for K's last partial step (and N < 4), branch-free (a branch that differs by
// lane is costly here): the index is clamped into range and the value zeroed when out of range.
fn a_at(row: u32, kk: u32) -> f32 {
    let inside = row < p.m && kk < p.k;
    var i = row * p.k + kk;
    if (TRANS_A) {
        i = kk * p.m + row;
    }
    return select(0.0, a[select(0u, i, inside)], inside);
}

fn b_at(kk: u32, col: u32) -> f32 {
    let inside = kk < p.k && col < p.n;
    var i = kk * p.n + col;
    if (TRANS_B) {
        i = col * p.k + kk;
    }
    return select(0.0, b[select(0u, i, inside)], inside);
}

// op(A)[row, k0..k0+4], checked.
fn a4(row: u32, k0: u32) -> vec4<f32> {
    return vec4<f32>(a_at(row, k0), a_at(row, k0 + 1u), a_at(row, k0 + 2u), a_at(row, k0 + 3u));
}

// op(B)[kk, col0..col0+4], checked.
fn b4(kk: u32, col0: u32) -> vec4<f32> {
    return vec4<f32>(b_at(kk, col0), b_at(kk, col0 + 1u), b_at(kk, col0 + 2u), b_at(kk, col0 + 3u));
}

// The same loads inside the matrices; `aligned` says rows of the stored matrix are whole vec4s (K, or N,
// a multiple of 4).
fn a4_inside(row: u32, k0: u32, aligned: bool) -> vec4<f32> {
    if (TRANS_A) {
        return vec4<f32>(a[k0 * p.m + row], a[(k0 + 1u) * p.m + row], a[(k0 + 2u) * p.m + row],
            a[(k0 + 3u) * p.m + row]);
    }
    let i = row * p.k + k0;
    if (aligned) {
        return a_vec[i / 4u];
    }
    return vec4<f32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]);
}

// Rows k0..k0+3 of op(B) at columns col0..col0+3, as the columns of a 4×4 matrix.
fn b_block_inside(k0: u32, col0: u32, aligned: bool) -> mat4x4<f32> {
    if (TRANS_B) {
        // B is stored N×K: each column of op(B) is a contiguous row of B; load four and transpose.
        if (aligned) {
            let i = (col0 * p.k + k0) / 4u;
            let q = p.k / 4u;
            return transpose(mat4x4<f32>(b_vec[i], b_vec[i + q], b_vec[i + 2u * q], b_vec[i + 3u * q]));
        }
        return mat4x4<f32>(b4(k0, col0), b4(k0 + 1u, col0), b4(k0 + 2u, col0), b4(k0 + 3u, col0));
    }
    let i = k0 * p.n + col0;
    if (aligned) {
        let q = p.n / 4u;
        return mat4x4<f32>(b_vec[i / 4u], b_vec[i / 4u + q], b_vec[i / 4u + 2u * q], b_vec[i / 4u + 3u * q]);
    }
    return mat4x4<f32>(b4(k0, col0), b4(k0 + 1u, col0), b4(k0 + 2u, col0), b4(k0 + 3u, col0));
}

// acc[i] += (row i of the 8 rows the lanes hold in `mine`) · [b0; b1; b2; b3]. The 8 accumulators of a
// row group live in their own array indexed by constants only, so they stay in registers.
fn update_rows(acc: ptr<function, array<vec4<f32>, 8>>, mine: vec4<f32>, b: mat4x4<f32>) {
    (*acc)[0] += b * subgroupBroadcast(mine, 0u);
    (*acc)[1] += b * subgroupBroadcast(mine, 1u);
    (*acc)[2] += b * subgroupBroadcast(mine, 2u);
    (*acc)[3] += b * subgroupBroadcast(mine, 3u);
    (*acc)[4] += b * subgroupBroadcast(mine, 4u);
    (*acc)[5] += b * subgroupBroadcast(mine, 5u);
    (*acc)[6] += b * subgroupBroadcast(mine, 6u);
    (*acc)[7] += b * subgroupBroadcast(mine, 7u);
}

// The four taps of columns k0..k0+3 of an implicit op(A).
struct Taps {
    t0: Tap,
    t1: Tap,
    t2: Tap,
    t3: Tap,
}

// Loads op(A)[row, k0..k0+4] for this lane's row of a row group and applies the group's rows to their
// accumulators; with IMPLICIT, through the row's patch `at` and the step's taps.
fn row_group(acc: ptr<function, array<vec4<f32>, 8>>, row: u32, k0: u32, b: mat4x4<f32>, inside: bool,
             a_aligned: bool, at: Patch, taps: Taps) {
    var mine: vec4<f32>;
    if (IMPLICIT) {
        mine = vec4<f32>(patch_at(at, taps.t0), patch_at(at, taps.t1), patch_at(at, taps.t2),
            patch_at(at, taps.t3));
    } else if (inside) {
        mine = a4_inside(row, k0, a_aligned);
    } else {
        mine = a4(row, k0);
    }
    update_rows(acc, mine, b);
}

// Writes one row group's accumulators to C through the epilogue: rows first_row.., columns col..col+3
// of which this lane owns those from `own` on.
fn store_rows(acc: array<vec4<f32>, 8>, first_row: u32, col: u32, own: u32) {
    for (var r = 0u; r < 8u; r++) {
        let row = first_row + r;
        if (row >= p.m) {
            return;
        }
        let v = acc[r];
        for (var j = 0u; j < 4u; j++) {
            let cj = col + j;
            if (cj >= own && cj < p.n) {
                var i = row * p.n + cj;
                if (IMPLICIT) {
                    i = planes_index(row, cj);
                }
                c[i] = epilogue(i, cj, v[j]);
            }
        }
    }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    let row0 = wg.y * GROUPS * LANES;
    let own = wg.x * (LANES * 4u) + lane * 4u;
    // The four columns this lane computes: its own, or the last four where its own pass N.
    let wide = p.n >= 4u;
    let col = select(own, min(own, p.n - 4u), wide);
    let a_aligned = (p.k & 3u) == 0u;
    let b_aligned = select((p.n & 3u) == 0u, (p.k & 3u) == 0u, TRANS_B);
    // This lane's row in each group, held to the last row for loads.
    var rows: array<u32, 8>;
    // With IMPLICIT, those rows' patches (unused otherwise; rows past M read zeros).
    var patches: array<Patch, 8>;
    for (var g = 0u; g < GROUPS; g++) {
        let row = row0 + g * LANES + lane;
        rows[g] = min(row, p.m - 1u);
        if (IMPLICIT) {
            patches[g] = patch_of(row);
        }
    }
    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    var acc2: array<vec4<f32>, 8>;
    var acc3: array<vec4<f32>, 8>;
    var acc4: array<vec4<f32>, 8>;
    var acc5: array<vec4<f32>, 8>;
    var acc6: array<vec4<f32>, 8>;
    var acc7: array<vec4<f32>, 8>;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let inside = wide && k0 + 4u <= p.k;
        var taps: Taps;
        if (IMPLICIT) {
            taps = Taps(tap_of(k0), tap_of(k0 + 1u), tap_of(k0 + 2u), tap_of(k0 + 3u));
        }
        var b: mat4x4<f32>;
        if (inside) {
            b = b_block_inside(k0, col, b_aligned);
        } else {
            b = mat4x4<f32>(b4(k0, col), b4(k0 + 1u, col), b4(k0 + 2u, col), b4(k0 + 3u, col));
        }
        // GROUPS is a pipeline constant, so the groups past it compile away.
        row_group(&acc0, rows[0], k0, b, inside, a_aligned, patches[0], taps);
        if (GROUPS > 1u) {
            row_group(&acc1, rows[1], k0, b, inside, a_aligned, patches[1], taps);
        }
        if (GROUPS > 2u) {
            row_group(&acc2, rows[2], k0, b, inside, a_aligned, patches[2], taps);
        }
        if (GROUPS > 3u) {
            row_group(&acc3, rows[3], k0, b, inside, a_aligned, patches[3], taps);
        }
        if (GROUPS > 4u) {
            row_group(&acc4, rows[4], k0, b, inside, a_aligned, patches[4], taps);
        }
        if (GROUPS > 5u) {
            row_group(&acc5, rows[5], k0, b, inside, a_aligned, patches[5], taps);
        }
        if (GROUPS > 6u) {
            row_group(&acc6, rows[6], k0, b, inside, a_aligned, patches[6], taps);
        }
        if (GROUPS > 7u) {
            row_group(&acc7, rows[7], k0, b, inside, a_aligned, patches[7], taps);
        }
    }
    store_rows(acc0, row0, col, own);
    if (GROUPS > 1u) {
        store_rows(acc1, row0 + 8u, col, own);
    }
    if (GROUPS > 2u) {
        store_rows(acc2, row0 + 16u, col, own);
    }
    if (GROUPS > 3u) {
        store_rows(acc3, row0 + 24u, col, own);
    }
    if (GROUPS > 4u) {
        store_rows(acc4, row0 + 32u, col, own);
    }
    if (GROUPS > 5u) {
        store_rows(acc5, row0 + 40u, col, own);
    }
    if (GROUPS > 6u) {
        store_rows(acc6, row0 + 48u, col, own);
    }
    if (GROUPS > 7u) {
        store_rows(acc7, row0 + 56u, col, own);
    }
}

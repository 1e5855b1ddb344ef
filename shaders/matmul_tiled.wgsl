// Register-blocked matrix product for GPUs, any shape, any transpose:
//
//   C[M,N] = epilogue(op(A)[M,K] · op(B)[K,N]),   op(X) = Xᵀ when TRANS_X   (matmul_epilogue.wgsl)
//
// A 16×16 workgroup computes a 64×64 tile of C. Invocation (tx, ty) owns rows 4ty..4ty+3 and columns
// 4tx..4tx+3, held in the four named vec4 fields of a `Block` (never a dynamically indexed array, which a
// driver may place in slow local memory). K is walked in slices of 16: the workgroup stages the 64×16
// slice of op(A) and the 16×64 slice of op(B) in workgroup memory, both k-major as vec4s, and each
// invocation then does 16 rank-1 updates, acc_r += op(A)[4ty+r, k] · op(B)[k, 4tx..4tx+3], unrolled.
//
// Staging: every invocation fills one vec4 of each tile, and no vec4 is written by two invocations. A
// slice wholly inside its matrix is fetched without bounds checks (as one vec4 load where the tile's
// vec4 is contiguous in memory and rows are whole vec4s); slices at the edges with four bounds-checked
// loads (zero outside).
//
// With IMPLICIT (matmul_implicit.wgsl, never split) op(A) is a convolution's columns: each invocation
// keeps the patches of the four rows it stages and takes one tap per slice; C is stored as images.
//
// Split-K (SPLIT): workgroup z covers k ∈ [z·k_chunk, (z+1)·k_chunk) and stores its raw partial product
// at c[z·M·N + i] (the host binds a scratch buffer as `c`); `reduce_splits` then sums the partials in the
// order of z (a fixed order, no atomics: results repeat bit for bit) and applies the epilogue.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override SPLIT: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
    k_chunk: u32,
    splits: u32,
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
// A and B again as vec4s, for the aligned loads.
@group(0) @binding(3) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> c: array<f32>;
@group(0) @binding(7) var<storage, read> aux: array<f32>;
@group(0) @binding(8) var<storage, read> parts: array<f32>;

const TILE: u32 = 64u;
const SLICE: u32 = 16u;

// a_tile[k·16 + r/4][r%4] = op(A)[row0 + r, k0 + k]; b_tile[k·16 + c/4][c%4] = op(B)[k0 + k, col0 + c].
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// op(A)[row, kk], zero outside.
fn a_at(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

// op(B)[kk, col], zero outside.
fn b_at(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

// With IMPLICIT, the patches of the four rows of op(A) an invocation stages.
struct Patches {
    p0: Patch,
    p1: Patch,
    p2: Patch,
    p3: Patch,
}

// Stages the slice of op(A) at (row0, k0); every invocation writes one whole vec4 of the tile (one
// writer per vec4: a component store may touch the whole vector, so shared vectors must not be split
// between invocations). When A is K×M (contiguous along m) invocation t fetches stored row t/16 at
// columns 4(t%16)..+3, one vec4; when A is M×K it fetches column k0 + t%16 of rows 4(t/16)..+3, four
// floats that neighbouring invocations read from neighbouring addresses.
fn stage_a(t: u32, row0: u32, k0: u32, inside: bool, patches: Patches) {
    let kk = select(t % 16u, t / 16u, TRANS_A);
    let r = select(t / 16u, t % 16u, TRANS_A) * 4u;
    var v: vec4<f32>;
    if (IMPLICIT) {
        let tap = tap_of(k0 + kk);
        v = vec4<f32>(patch_at(patches.p0, tap), patch_at(patches.p1, tap), patch_at(patches.p2, tap),
            patch_at(patches.p3, tap));
    } else if (inside && TRANS_A && (p.m & 3u) == 0u) {
        v = a4[((k0 + kk) * p.m + row0 + r) / 4u];
    } else if (inside && !TRANS_A) {
        let i = (row0 + r) * p.k + k0 + kk;
        v = vec4<f32>(a[i], a[i + p.k], a[i + 2u * p.k], a[i + 3u * p.k]);
    } else {
        v = vec4<f32>(a_at(row0 + r, k0 + kk), a_at(row0 + r + 1u, k0 + kk),
            a_at(row0 + r + 2u, k0 + kk), a_at(row0 + r + 3u, k0 + kk));
    }
    a_tile[kk * 16u + r / 4u] = v;
}

// Stages the slice of op(B) at (k0, col0), the mirror image of stage_a: when B is K×N invocation t
// fetches stored row t/16 at columns 4(t%16)..+3, one vec4; when B is N×K it fetches column k0 + t%16 of
// stored rows 4(t/16)..+3. One writer per vec4, as there.
fn stage_b(t: u32, k0: u32, col0: u32, inside: bool) {
    let kk = select(t / 16u, t % 16u, TRANS_B);
    let col = select(t % 16u, t / 16u, TRANS_B) * 4u;
    var v: vec4<f32>;
    if (inside && !TRANS_B && (p.n & 3u) == 0u) {
        v = b4[((k0 + kk) * p.n + col0 + col) / 4u];
    } else if (inside && TRANS_B) {
        let i = (col0 + col) * p.k + k0 + kk;
        v = vec4<f32>(b[i], b[i + p.k], b[i + 2u * p.k], b[i + 3u * p.k]);
    } else {
        v = vec4<f32>(b_at(k0 + kk, col0 + col), b_at(k0 + kk, col0 + col + 1u),
            b_at(k0 + kk, col0 + col + 2u), b_at(k0 + kk, col0 + col + 3u));
    }
    b_tile[kk * 16u + col / 4u] = v;
}

// One rank-1 update of the invocation's 4×4 block from row kk of the staged slices.
fn rank1(acc: ptr<function, Block>, kk: u32, tx: u32, ty: u32) {
    let av = a_tile[kk * 16u + ty];
    let bv = b_tile[kk * 16u + tx];
    (*acc).r0 = fma(vec4<f32>(av.x), bv, (*acc).r0);
    (*acc).r1 = fma(vec4<f32>(av.y), bv, (*acc).r1);
    (*acc).r2 = fma(vec4<f32>(av.z), bv, (*acc).r2);
    (*acc).r3 = fma(vec4<f32>(av.w), bv, (*acc).r3);
}

// Stores one row of the block: the raw partial (split) or the epilogue's result.
fn store_row(v: vec4<f32>, row: u32, col: u32, split: u32) {
    if (row >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let cj = col + j;
        if (cj < p.n) {
            let i = row * p.n + cj;
            if (IMPLICIT) {
                let at = planes_index(row, cj);
                c[at] = epilogue(at, cj, v[j]);
            } else if (SPLIT) {
                c[split * p.m * p.n + i] = v[j];
            } else {
                c[i] = epilogue(i, cj, v[j]);
            }
        }
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.y * 16u + lid.x;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    var k_begin = 0u;
    var k_end = p.k;
    if (SPLIT) {
        k_begin = wg.z * p.k_chunk;
        k_end = min(p.k, k_begin + p.k_chunk);
    }
    // Uniform over the workgroup: the tile's rows of op(A) and columns of op(B) lie inside.
    let rows_inside = row0 + TILE <= p.m;
    let cols_inside = col0 + TILE <= p.n;
    var acc: Block;
    var patches: Patches;
    if (IMPLICIT) {
        let first = row0 + (t / 16u) * 4u;
        patches = Patches(patch_of(first), patch_of(first + 1u), patch_of(first + 2u), patch_of(first + 3u));
    }
    for (var k0 = k_begin; k0 < k_end; k0 += SLICE) {
        let k_inside = k0 + SLICE <= p.k;
        stage_a(t, row0, k0, rows_inside && k_inside, patches);
        stage_b(t, k0, col0, cols_inside && k_inside);
        workgroupBarrier();
        rank1(&acc, 0u, lid.x, lid.y);
        rank1(&acc, 1u, lid.x, lid.y);
        rank1(&acc, 2u, lid.x, lid.y);
        rank1(&acc, 3u, lid.x, lid.y);
        rank1(&acc, 4u, lid.x, lid.y);
        rank1(&acc, 5u, lid.x, lid.y);
        rank1(&acc, 6u, lid.x, lid.y);
        rank1(&acc, 7u, lid.x, lid.y);
        rank1(&acc, 8u, lid.x, lid.y);
        rank1(&acc, 9u, lid.x, lid.y);
        rank1(&acc, 10u, lid.x, lid.y);
        rank1(&acc, 11u, lid.x, lid.y);
        rank1(&acc, 12u, lid.x, lid.y);
        rank1(&acc, 13u, lid.x, lid.y);
        rank1(&acc, 14u, lid.x, lid.y);
        rank1(&acc, 15u, lid.x, lid.y);
        workgroupBarrier();
    }
    let row = row0 + lid.y * 4u;
    let col = col0 + lid.x * 4u;
    store_row(acc.r0, row, col, wg.z);
    store_row(acc.r1, row + 1u, col, wg.z);
    store_row(acc.r2, row + 2u, col, wg.z);
    store_row(acc.r3, row + 3u, col, wg.z);
}

// C[i] = epilogue(Σ_z parts[z·M·N + i]), z in order. One invocation per element; the grid may be folded
// into two dimensions (see fold_grid in src/gpu/mod.rs).
@compute @workgroup_size(256)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    let count = p.m * p.n;
    if (i >= count) {
        return;
    }
    var s = 0.0;
    for (var z = 0u; z < p.splits; z++) {
        s += parts[z * count + i];
    }
    c[i] = epilogue(i, i % p.n, s);
}

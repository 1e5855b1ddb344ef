// Matrix product for CPU-emulated GPUs (lavapipe) with subgroups of exactly 8, fused epilogue as in
// matmul_tiled.wgsl:
//
//   C[M,N] = act(op(A)[M,K] · op(B)[K,N] + bias[N]),   op(X) = Xᵀ when TRANS_X.
//
// On lavapipe a subgroup is one row of SIMD lanes: arithmetic is cheap, every load whose address differs
// by lane costs about eight scalar loads, and workgroup memory plus barriers cost more than they save.
// So a workgroup is one subgroup of 8 lanes and uses no workgroup memory: it owns a ROWS×32 block of C,
// lane l owning columns 4l..4l+3 of it (ROWS vec4 accumulators). For each step of 4 along K, lane l loads
// the op(A) values of rows l, l+8, … as vec4s and subgroupBroadcast hands every row to all lanes, while
// each lane loads its own 4×4 patch of op(B); the update is acc[r] += a.x·b₀ + a.y·b₁ + a.z·b₂ + a.w·b₃.
// Loads past the edges read zero. activation_fns.wgsl is appended by the host.

// Subgroup builtins need the device's SUBGROUP feature; naga does not yet accept `enable subgroups;`.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    alpha: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const ROWS: u32 = 64u;
const LANES: u32 = 8u;

fn a_at(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

// op(A)[row, k0..k0+4]
fn a4(row: u32, k0: u32) -> vec4<f32> {
    return vec4<f32>(a_at(row, k0), a_at(row, k0 + 1u), a_at(row, k0 + 2u), a_at(row, k0 + 3u));
}

// op(B)[kk, col0..col0+4]
fn b4(kk: u32, col0: u32) -> vec4<f32> {
    return vec4<f32>(b_at(kk, col0), b_at(kk, col0 + 1u), b_at(kk, col0 + 2u), b_at(kk, col0 + 3u));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
    let row0 = wg.y * ROWS;
    let col0 = wg.x * (LANES * 4u) + lane * 4u;
    var acc: array<vec4<f32>, ROWS>;
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
        let b0 = b4(k0, col0);
        let b1 = b4(k0 + 1u, col0);
        let b2 = b4(k0 + 2u, col0);
        let b3 = b4(k0 + 3u, col0);
        for (var j = 0u; j < ROWS / LANES; j++) {
            let mine = a4(row0 + j * LANES + lane, k0);
            let r = j * LANES;
            var v = subgroupBroadcast(mine, 0u);
            acc[r] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 1u);
            acc[r + 1u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 2u);
            acc[r + 2u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 3u);
            acc[r + 3u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 4u);
            acc[r + 4u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 5u);
            acc[r + 5u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 6u);
            acc[r + 6u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
            v = subgroupBroadcast(mine, 7u);
            acc[r + 7u] += v.x * b0 + v.y * b1 + v.z * b2 + v.w * b3;
        }
    }
    for (var r = 0u; r < ROWS; r++) {
        let row = row0 + r;
        if (row >= p.m) {
            break;
        }
        let v = acc[r];
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + j;
            if (col < p.n) {
                var s = v[j];
                if (HAS_BIAS) {
                    s += bias[col];
                }
                c[row * p.n + col] = act_forward(ACT, p.alpha, s);
            }
        }
    }
}

// Portable matrix product with fused epilogue, for any shape on any device:
//
//   C[M,N] = act(op(A)[M,K] · op(B)[K,N] + bias[N]),   op(X) = Xᵀ when TRANS_X.
//
// A 16×16 workgroup computes a 64×64 tile of C; each invocation keeps a 4×4 block of C in registers.
// K is walked in slices of 16: the workgroup stages a 16×64 slice of op(A) and of op(B) in workgroup
// memory (zero-padded past the edges), then every invocation does 16 rank-1 updates of its 4×4 block.
// activation_fns.wgsl is appended by the host.

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

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [TILE_K][TILE_M]
var<workgroup> b_tile: array<f32, 1024>; // [TILE_K][TILE_N]

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= p.m || kk >= p.k) {
        return 0.0;
    }
    if (TRANS_A) {
        return a[kk * p.m + row];
    }
    return a[row * p.k + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= p.k || col >= p.n) {
        return 0.0;
    }
    if (TRANS_B) {
        return b[col * p.k + kk];
    }
    return b[kk * p.n + col];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let row0 = wg.y * TILE_M;
    let col0 = wg.x * TILE_N;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * 256u;
            // Neighbouring invocations read neighbouring k of A and neighbouring columns of B.
            let ka = idx % TILE_K;
            let ra = idx / TILE_K;
            a_tile[ka * TILE_M + ra] = load_a(row0 + ra, k0 + ka);
            let cb = idx % TILE_N;
            let kb = idx / TILE_N;
            b_tile[kb * TILE_N + cb] = load_b(k0 + kb, col0 + cb);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = a_tile[kk * TILE_M + lid.y * 4u + i];
                bv[i] = b_tile[kk * TILE_N + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (row < p.m && col < p.n) {
                var v = acc[i * 4u + j];
                if (HAS_BIAS) {
                    v += bias[col];
                }
                c[row * p.n + col] = act_forward(ACT, p.alpha, v);
            }
        }
    }
}

// Batch normalisation. A tensor is [N, C·S]: channel c owns columns c·S..(c+1)·S of every row (S = 1
// for dense features, H·W for images), M = N·S values in all.
//
//   train     per channel, in two passes: μ = Σx/M, σ² = Σ(x − μ)²/M, r = 1/√(σ² + ε);
//             y = γ·(x − μ)·r + β; saved = (μ, r); running = (1 − m)·running + m·(μ, σ²·M/(M − 1))
//   eval      y = γ·(x − mean)/√(var + ε) + β with the running (mean, var)
//   backward  x̂ = (x − μ)·r; dβ = Σ dy, dγ = Σ dy·x̂; dx = γ·r·(dy − dβ/M − x̂·dγ/M)
//
// train and backward run one workgroup per channel: each invocation sums a strided share of the
// channel's values in order, then a fixed tree over the workgroup adds the shares. No atomics, so the
// results repeat bit for bit. `affine`, `saved`, `running` and `daffine` are [2, C]: row 0 then row 1.

struct Params {
    rows: u32,
    channels: u32,
    spatial: u32,
    eps: f32,
    momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// Offset of the i-th value (row-major order) of channel c.
fn at(i: u32, c: u32) -> u32 {
    return ((i / p.spatial) * p.channels + c) * p.spatial + i % p.spatial;
}

// The sum of every invocation's `v`, by a fixed tree; the same value in every invocation.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@group(0) @binding(1) var<storage, read> tr_x: array<f32>;
@group(0) @binding(2) var<storage, read> tr_affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> tr_saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> tr_running: array<f32>;
@group(0) @binding(5) var<storage, read_write> tr_y: array<f32>;

@compute @workgroup_size(WG)
fn train(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = group.x + group.y * groups.x;
    if (c >= p.channels) {
        return;
    }
    let m = p.rows * p.spatial;
    var s = 0.0;
    for (var i = lid; i < m; i += WG) {
        s += tr_x[at(i, c)];
    }
    let mean = workgroup_sum(lid, s) / f32(m);
    var q = 0.0;
    for (var i = lid; i < m; i += WG) {
        let d = tr_x[at(i, c)] - mean;
        q += d * d;
    }
    let variance = workgroup_sum(lid, q) / f32(m);
    let r = 1.0 / sqrt(variance + p.eps);
    let gamma = tr_affine[c];
    let beta = tr_affine[p.channels + c];
    for (var i = lid; i < m; i += WG) {
        let k = at(i, c);
        tr_y[k] = gamma * (tr_x[k] - mean) * r + beta;
    }
    if (lid == 0u) {
        tr_saved[c] = mean;
        tr_saved[p.channels + c] = r;
        let keep = 1.0 - p.momentum;
        tr_running[c] = keep * tr_running[c] + p.momentum * mean;
        let unbiased = variance * f32(m) / f32(m - 1u);
        tr_running[p.channels + c] = keep * tr_running[p.channels + c] + p.momentum * unbiased;
    }
}

@group(0) @binding(6) var<storage, read> ev_x: array<f32>;
@group(0) @binding(7) var<storage, read> ev_affine: array<f32>;
@group(0) @binding(8) var<storage, read> ev_running: array<f32>;
@group(0) @binding(9) var<storage, read_write> ev_y: array<f32>;

// One invocation per element, in workgroups of WG folded into two grid dimensions.
@compute @workgroup_size(WG)
fn eval(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let k = (group.x + group.y * groups.x) * WG + lid;
    if (k >= p.rows * p.channels * p.spatial) {
        return;
    }
    let c = (k / p.spatial) % p.channels;
    let r = 1.0 / sqrt(ev_running[p.channels + c] + p.eps);
    ev_y[k] = ev_affine[c] * (ev_x[k] - ev_running[c]) * r + ev_affine[p.channels + c];
}

@group(0) @binding(10) var<storage, read> bw_x: array<f32>;
@group(0) @binding(11) var<storage, read> bw_dy: array<f32>;
@group(0) @binding(12) var<storage, read> bw_affine: array<f32>;
@group(0) @binding(13) var<storage, read> bw_saved: array<f32>;
@group(0) @binding(14) var<storage, read_write> bw_daffine: array<f32>;
@group(0) @binding(15) var<storage, read_write> bw_dx: array<f32>;

@compute @workgroup_size(WG)
fn backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = group.x + group.y * groups.x;
    if (c >= p.channels) {
        return;
    }
    let m = p.rows * p.spatial;
    let mean = bw_saved[c];
    let r = bw_saved[p.channels + c];
    var s = 0.0;
    var t = 0.0;
    for (var i = lid; i < m; i += WG) {
        let k = at(i, c);
        let dy = bw_dy[k];
        s += dy;
        t += dy * (bw_x[k] - mean) * r;
    }
    let dbeta = workgroup_sum(lid, s);
    let dgamma = workgroup_sum(lid, t);
    let scale = bw_affine[c] * r;
    let inv_m = 1.0 / f32(m);
    for (var i = lid; i < m; i += WG) {
        let k = at(i, c);
        let x_hat = (bw_x[k] - mean) * r;
        bw_dx[k] = scale * (bw_dy[k] - dbeta * inv_m - x_hat * dgamma * inv_m);
    }
    if (lid == 0u) {
        bw_daffine[c] = dgamma;
        bw_daffine[p.channels + c] = dbeta;
    }
}

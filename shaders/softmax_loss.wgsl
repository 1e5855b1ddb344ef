// Row-wise softmax and the losses with their gradients (B rows, C columns):
//
//   softmax   y[i,j] = exp(x[i,j] - mᵢ) / Σ_k exp(x[i,k] - mᵢ),  mᵢ = max_k x[i,k]
//   softmax + cross-entropy (labels tᵢ):
//             loss = (1/B) Σ_i (mᵢ + log Σ_k exp(z[i,k] - mᵢ) - z[i,tᵢ]);  dz = (softmax(z) - onehot(t)) / B
//   sigmoid + binary cross-entropy (targets t):
//             loss = (1/B) Σ (max(z,0) - z·t + log(1 + e^-|z|));           dz = (σ(z) - t) / B
//   mean squared error:
//             loss = (1/B) Σ ½(y - t)²;                                    dy = (y - t) / B
//   tally     totals[0] += loss[0];  totals[1] += #{i : argmax_j z[i,j] = tᵢ}  (first maximum on ties)
//             (one column: the class is [z > 0], a binary classifier's)
//
// The reducing kernels run as one workgroup of 256: each invocation walks rows (or elements) i ≡ tid
// (mod 256) in order, then a fixed-shape tree sums the 256 partials. No atomics, so a run repeats bit
// for bit. activation_fns.wgsl is appended by the host (for sigmoid and log1p).

struct Params {
    rows: u32,
    cols: u32,
    // The bits of a quiet NaN (WGSL has no NaN literal): the loss of a row whose label is out of range.
    nan_bits: u32,
    inv_rows: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

// Sum of `v` over the workgroup, in a fixed order.
fn workgroup_sum(tid: u32, v: f32) -> f32 {
    partial[tid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        workgroupBarrier();
    }
    return partial[0];
}

// ---- softmax: one invocation per row -------------------------------------------------------------
@group(0) @binding(1) var<storage, read> sm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_y: array<f32>;

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let row = gid.x + gid.y * groups.x * 64u;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var m = sm_x[base];
    for (var j = 1u; j < p.cols; j++) {
        m = max(m, sm_x[base + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < p.cols; j++) {
        let e = exp(sm_x[base + j] - m);
        sm_y[base + j] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var j = 0u; j < p.cols; j++) {
        sm_y[base + j] *= inv;
    }
}

// ---- softmax + cross-entropy, forward and backward ------------------------------------------------
@group(0) @binding(3) var<storage, read> xe_z: array<f32>;
@group(0) @binding(4) var<storage, read> xe_labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> xe_dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> xe_loss: array<f32>;

@compute @workgroup_size(256)
fn softmax_cross_entropy(@builtin(local_invocation_index) tid: u32) {
    var total = 0.0;
    for (var row = tid; row < p.rows; row += WG) {
        let base = row * p.cols;
        var m = xe_z[base];
        for (var j = 1u; j < p.cols; j++) {
            m = max(m, xe_z[base + j]);
        }
        var sum = 0.0;
        for (var j = 0u; j < p.cols; j++) {
            sum += exp(xe_z[base + j] - m);
        }
        let t = xe_labels[row];
        let inv = 1.0 / sum;
        for (var j = 0u; j < p.cols; j++) {
            let prob = exp(xe_z[base + j] - m) * inv;
            xe_dz[base + j] = (prob - select(0.0, 1.0, j == t)) * p.inv_rows;
        }
        if (t < p.cols) {
            total += m + log(sum) - xe_z[base + t];
        } else {
            total += bitcast<f32>(p.nan_bits);
        }
    }
    let s = workgroup_sum(tid, total);
    if (tid == 0u) {
        xe_loss[0] = s * p.inv_rows;
    }
}

// ---- sigmoid + binary cross-entropy, and mean squared error (element-wise) -----------------------
@group(0) @binding(7) var<storage, read> el_y: array<f32>;
@group(0) @binding(8) var<storage, read> el_t: array<f32>;
@group(0) @binding(9) var<storage, read_write> el_dy: array<f32>;
@group(0) @binding(10) var<storage, read_write> el_loss: array<f32>;

@compute @workgroup_size(256)
fn sigmoid_binary_cross_entropy(@builtin(local_invocation_index) tid: u32) {
    var total = 0.0;
    let n = p.rows * p.cols;
    for (var i = tid; i < n; i += WG) {
        let z = el_y[i];
        let t = el_t[i];
        total += max(z, 0.0) - z * t + log1p(exp(-abs(z)));
        el_dy[i] = (sigmoid(z) - t) * p.inv_rows;
    }
    let s = workgroup_sum(tid, total);
    if (tid == 0u) {
        el_loss[0] = s * p.inv_rows;
    }
}

@compute @workgroup_size(256)
fn mean_squared_error(@builtin(local_invocation_index) tid: u32) {
    var total = 0.0;
    let n = p.rows * p.cols;
    for (var i = tid; i < n; i += WG) {
        let e = el_y[i] - el_t[i];
        total += 0.5 * e * e;
        el_dy[i] = e * p.inv_rows;
    }
    let s = workgroup_sum(tid, total);
    if (tid == 0u) {
        el_loss[0] = s * p.inv_rows;
    }
}

// ---- running totals: the batch's loss and its count of correct predictions --------------------------
@group(0) @binding(11) var<storage, read> tl_z: array<f32>;
@group(0) @binding(12) var<storage, read> tl_labels: array<u32>;
@group(0) @binding(13) var<storage, read_write> tl_totals: array<f32>;
@group(0) @binding(14) var<storage, read> tl_loss: array<f32>;

@compute @workgroup_size(256)
fn tally(@builtin(local_invocation_index) tid: u32) {
    var hits = 0.0;
    for (var row = tid; row < p.rows; row += WG) {
        let base = row * p.cols;
        var best = 0u;
        for (var j = 1u; j < p.cols; j++) {
            if (tl_z[base + j] > tl_z[base + best]) {
                best = j;
            }
        }
        if (p.cols == 1u) {
            // One logit: a binary classifier, class 1 where z > 0 (σ(z) > ½).
            best = select(0u, 1u, tl_z[base] > 0.0);
        }
        hits += select(0.0, 1.0, best == tl_labels[row]);
    }
    let s = workgroup_sum(tid, hits);
    if (tid == 0u) {
        tl_totals[0] += tl_loss[0];
        tl_totals[1] += s;
    }
}

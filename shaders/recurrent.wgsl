// A recurrent layer's fused gate kernels, one invocation per unit (n, j) of one time step t. The host
// runs, per step, the recurrent product r = h_{t−1}·W_hhᵀ + b_hh and then `forward`; backward, from the
// last step to the first, `*_backward` and then the product dh = dr·W_hh. Gate block k of unit j sits
// at offset k·H + j; step t of sample n is row n·T + t of every [N·T, ·] buffer. CELL: 0 RNN, 1 LSTM,
// 2 GRU (PyTorch's gate orders). With xp the input projection (b_ih included):
//
//   RNN   h = tanh(xp + r)
//   LSTM  i, f, o = σ(xp + r) in blocks 0, 1, 3;  g = tanh(xp + r) in block 2
//         c = f·c_{t−1} + i·g,  h = o·tanh(c)
//   GRU   rg, z = σ(xp + r) in blocks 0, 1;  n = tanh(xp_n + rg·r_n);  h = (1 − z)·n + z·h_{t−1}
//
// and back, with dh = dL/dh_t (dy's, plus the next step's dh and carry):
//
//   RNN   d = dh·(1 − h²)                                 → dxp = dr = d
//   LSTM  dc = carry + dh·o·(1 − tanh²c)
//         di = dc·g·i(1 − i), df = dc·c_{t−1}·f(1 − f), dg = dc·i·(1 − g²), do = dh·tanh c·o(1 − o)
//                                                           → dxp = dr;  carry = dc·f
//   GRU   dn = dh·(1 − z)(1 − n²),  dz = dh·(h_{t−1} − n)·z(1 − z),  drg = dn·r_n·rg(1 − rg)
//         dxp = (drg, dz, dn),  dr = (drg, dz, dn·rg);   carry = dh·z
//
// h_{−1} = c_{−1} = 0; at the last step dh and carry hold nothing yet and are read as 0.

struct Params {
    batch: u32,
    hidden: u32,
    steps: u32,
    t: u32,
    // Backward: 1 when dy is [N, T·H] (every step's gradient), 0 when it is [N, H] (the last step's).
    every_step: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override CELL: u32 = 0u;
const WG: u32 = 64u;

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// tanh without overflow in e^{2x} (saturated beyond |x| = 9 in f32), NaN passed through.
fn tanh_safe(x: f32) -> f32 {
    return select(tanh(clamp(x, -15.0, 15.0)), x, (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u);
}

// The unit this invocation owns, as (n, j), or n = batch when it owns none.
fn unit(group: vec3<u32>, groups: vec3<u32>, lid: u32) -> vec2<u32> {
    let i = (group.x + group.y * groups.x) * WG + lid;
    return vec2<u32>(i / p.hidden, i % p.hidden);
}

@group(0) @binding(1) var<storage, read> f_xp: array<f32>;
@group(0) @binding(2) var<storage, read> f_r: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_gates: array<f32>;
@group(0) @binding(4) var<storage, read_write> f_cells: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_hprev: array<f32>;
@group(0) @binding(6) var<storage, read_write> f_h: array<f32>;
@group(0) @binding(7) var<storage, read_write> f_states: array<f32>;

@compute @workgroup_size(WG)
fn forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = unit(group, groups, lid);
    let n = at.x;
    let j = at.y;
    if (n >= p.batch) {
        return;
    }
    let h = p.hidden;
    let row = n * p.steps + p.t;
    var prev = 0.0;
    if (p.t > 0u) {
        prev = f_h[n * h + j];
    }
    var out = 0.0;
    if (CELL == 0u) {
        out = tanh_safe(f_xp[row * h + j] + f_r[n * h + j]);
        f_gates[row * h + j] = out;
    } else if (CELL == 1u) {
        let x = row * 4u * h + j;
        let r = n * 4u * h + j;
        let i = sigmoid(f_xp[x] + f_r[r]);
        let f = sigmoid(f_xp[x + h] + f_r[r + h]);
        let g = tanh_safe(f_xp[x + 2u * h] + f_r[r + 2u * h]);
        let o = sigmoid(f_xp[x + 3u * h] + f_r[r + 3u * h]);
        var c_prev = 0.0;
        if (p.t > 0u) {
            c_prev = f_cells[(row - 1u) * h + j];
        }
        let c = f * c_prev + i * g;
        f_cells[row * h + j] = c;
        f_gates[x] = i;
        f_gates[x + h] = f;
        f_gates[x + 2u * h] = g;
        f_gates[x + 3u * h] = o;
        out = o * tanh_safe(c);
    } else {
        let x = row * 3u * h + j;
        let r = n * 3u * h + j;
        let rg = sigmoid(f_xp[x] + f_r[r]);
        let z = sigmoid(f_xp[x + h] + f_r[r + h]);
        let rn = f_r[r + 2u * h];
        let nn = tanh_safe(f_xp[x + 2u * h] + rg * rn);
        let k = row * 4u * h + j;
        f_gates[k] = rg;
        f_gates[k + h] = z;
        f_gates[k + 2u * h] = nn;
        f_gates[k + 3u * h] = rn;
        out = (1.0 - z) * nn + z * prev;
    }
    f_hprev[row * h + j] = prev;
    f_h[n * h + j] = out;
    f_states[row * h + j] = out;
}

// Where dy holds dL/dh_t of unit (n, j): block t of a [N, T·H] dy, or a [N, H] dy's row.
fn dy_index(n: u32, j: u32, row: u32) -> u32 {
    return select(n, row, p.every_step == 1u) * p.hidden + j;
}

// dL/dh_t from dy's value and the next step's dh: dy counts at every step when it holds every step's
// gradient, else at the last; dh counts except at the last step.
fn state_gradient(dy: f32, dh_next: f32) -> f32 {
    let last = p.t + 1u == p.steps;
    var d = select(dh_next, 0.0, last);
    if (p.every_step == 1u || last) {
        d += dy;
    }
    return d;
}

@group(0) @binding(1) var<storage, read> rb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> rb_dy: array<f32>;
@group(0) @binding(3) var<storage, read> rb_dh: array<f32>;
@group(0) @binding(4) var<storage, read_write> rb_dxp: array<f32>;
@group(0) @binding(5) var<storage, read_write> rb_dr: array<f32>;

@compute @workgroup_size(WG)
fn rnn_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = unit(group, groups, lid);
    let n = at.x;
    let j = at.y;
    if (n >= p.batch) {
        return;
    }
    let h = p.hidden;
    let row = n * p.steps + p.t;
    let dh = state_gradient(rb_dy[dy_index(n, j, row)], rb_dh[n * h + j]);
    let y = rb_gates[row * h + j];
    let d = dh * (1.0 - y * y);
    rb_dxp[row * h + j] = d;
    rb_dr[n * h + j] = d;
}

@group(0) @binding(1) var<storage, read> lb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> lb_cells: array<f32>;
@group(0) @binding(3) var<storage, read> lb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> lb_dh: array<f32>;
@group(0) @binding(5) var<storage, read_write> lb_dxp: array<f32>;
@group(0) @binding(6) var<storage, read_write> lb_dr: array<f32>;
@group(0) @binding(7) var<storage, read_write> lb_carry: array<f32>;

@compute @workgroup_size(WG)
fn lstm_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = unit(group, groups, lid);
    let n = at.x;
    let j = at.y;
    if (n >= p.batch) {
        return;
    }
    let h = p.hidden;
    let row = n * p.steps + p.t;
    let dh = state_gradient(lb_dy[dy_index(n, j, row)], lb_dh[n * h + j]);
    var carried = 0.0;
    if (p.t + 1u < p.steps) {
        carried = lb_carry[n * h + j];
    }
    let x = row * 4u * h + j;
    let i = lb_gates[x];
    let f = lb_gates[x + h];
    let g = lb_gates[x + 2u * h];
    let o = lb_gates[x + 3u * h];
    let c = lb_cells[row * h + j];
    var c_prev = 0.0;
    if (p.t > 0u) {
        c_prev = lb_cells[(row - 1u) * h + j];
    }
    let tc = tanh_safe(c);
    let dc = carried + dh * o * (1.0 - tc * tc);
    let d = array<f32, 4>(
        dc * g * i * (1.0 - i),
        dc * c_prev * f * (1.0 - f),
        dc * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
    );
    let r = n * 4u * h + j;
    for (var k = 0u; k < 4u; k++) {
        lb_dxp[x + k * h] = d[k];
        lb_dr[r + k * h] = d[k];
    }
    lb_carry[n * h + j] = dc * f;
}

@group(0) @binding(1) var<storage, read> gb_gates: array<f32>;
@group(0) @binding(2) var<storage, read> gb_hprev: array<f32>;
@group(0) @binding(3) var<storage, read> gb_dy: array<f32>;
@group(0) @binding(4) var<storage, read> gb_dh: array<f32>;
@group(0) @binding(5) var<storage, read_write> gb_dxp: array<f32>;
@group(0) @binding(6) var<storage, read_write> gb_dr: array<f32>;
@group(0) @binding(7) var<storage, read_write> gb_dr_all: array<f32>;
@group(0) @binding(8) var<storage, read_write> gb_carry: array<f32>;

@compute @workgroup_size(WG)
fn gru_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = unit(group, groups, lid);
    let n = at.x;
    let j = at.y;
    if (n >= p.batch) {
        return;
    }
    let h = p.hidden;
    let row = n * p.steps + p.t;
    var dh = state_gradient(gb_dy[dy_index(n, j, row)], gb_dh[n * h + j]);
    if (p.t + 1u < p.steps) {
        dh += gb_carry[n * h + j];
    }
    let k = row * 4u * h + j;
    let rg = gb_gates[k];
    let z = gb_gates[k + h];
    let nn = gb_gates[k + 2u * h];
    let rn = gb_gates[k + 3u * h];
    let prev = gb_hprev[row * h + j];
    let dn = dh * (1.0 - z) * (1.0 - nn * nn);
    let dz = dh * (prev - nn) * z * (1.0 - z);
    let drg = dn * rn * rg * (1.0 - rg);
    let x = row * 3u * h + j;
    gb_dxp[x] = drg;
    gb_dxp[x + h] = dz;
    gb_dxp[x + 2u * h] = dn;
    gb_dr_all[x] = drg;
    gb_dr_all[x + h] = dz;
    gb_dr_all[x + 2u * h] = dn * rg;
    let r = n * 3u * h + j;
    gb_dr[r] = drg;
    gb_dr[r + h] = dz;
    gb_dr[r + 2u * h] = dn * rg;
    gb_carry[n * h + j] = dh * z;
}

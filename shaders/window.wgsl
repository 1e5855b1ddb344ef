// Convolution's data movement and pooling, over a window sliding on N×C×H×W images (src/window.rs):
// a KH×KW window moving by `stride`, `padding` on every side, OH×OW positions, P = OH·OW. Output
// position (oh, ow) with window offset (i, j) reads row oh·stride + i − padding, column
// ow·stride + j − padding. One invocation per output element (im2col: per row and channel); no atomics,
// so results repeat bit for bit.
//
//   im2col           cols[n·P + oh·OW + ow, (c·KH + i)·KW + j] = x[n, c, row, col], 0 in the padding
//   col2im           dx[n, c, h, w] = f'·Σ dcols[…] over the (oh, ow, i, j) that read (h, w), in (i, j) order
//   flip_filters     t[c, (o·KH + i)·KW + j] = W[o, (c·KH + KH−1−i)·KW + KW−1−j]: the filters of the
//                    convolution that carries an output gradient back to the input (`batch` holds O)
//   planes_to_rows   dst[n·P + p, c] = src[n, c·P + p]
//   max_pool         y = act(max over the window), NaN winning, first maximum on ties; argmax = i·KW + j
//   max_pool_back    dx[n, c, h, w] = f'·Σ dy[n, c, oh, ow] over the windows whose winner (h, w) is
//   max_pool_back_tiles   the same where the windows tile the image exactly (stride = KH = KW, no
//                    padding, OH·KH = H, OW·KW = W): one invocation per window writes its KH·KW inputs,
//                    f'·dy at the winner and 0 elsewhere, so every input is written once, with no search
//   avg_pool         y = act(Σ window / (KH·KW)), the padding counted as zeros
//   avg_pool_back    dx[n, c, h, w] = f'·Σ dy[n, c, oh, ow] / (KH·KW) over the windows covering (h, w)
//
// f' is the derivative of activation ACT from its output (aux), applied when GRAD is set.

override ACT: u32 = 0u;
override GRAD: bool = false;

struct Params {
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
    alpha: f32,
    total: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// This invocation's element, one per invocation, in a grid folded into two dimensions.
fn item(at: Invocation) -> u32 {
    return workgroup_index(at) * LANES + at.lane;
}

// The input row (or column) that output `o` at window offset `k` reads, or -1 in the padding.
fn source(o: u32, k: u32, size: u32) -> i32 {
    let v = i32(o * p.stride + k) - i32(p.padding);
    if (v < 0 || v >= i32(size)) {
        return -1;
    }
    return v;
}

// The output index along one dimension whose window offset `k` reads input position `at`, or -1.
fn covering(at: u32, k: u32, size_out: u32) -> i32 {
    let shifted = i32(at + p.padding) - i32(k);
    if (shifted < 0) {
        return -1;
    }
    var o = u32(shifted);
    // Uniform, and the common case: no division.
    if (p.stride != 1u) {
        if (o % p.stride != 0u) {
            return -1;
        }
        o /= p.stride;
    }
    if (o >= size_out) {
        return -1;
    }
    return i32(o);
}

@group(0) @binding(1) var<storage, read> ic_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> ic_cols: array<f32>;

// One invocation per (row, channel) of cols: it writes that channel's KH·KW columns of the row, so
// the divisions that locate the patch are paid once per KH·KW elements.
@compute @workgroup_size(LANES)
fn im2col(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let positions = p.out_h * p.out_w;
    let r = e / p.channels;
    let c = e % p.channels;
    let n = r / positions;
    let pos = r % positions;
    let top = i32((pos / p.out_w) * p.stride) - i32(p.padding);
    let left = i32((pos % p.out_w) * p.stride) - i32(p.padding);
    let plane = (n * p.channels + c) * p.height * p.width;
    var out = e * p.kernel_h * p.kernel_w;
    for (var i = 0u; i < p.kernel_h; i++) {
        let row = top + i32(i);
        let row_inside = row >= 0 && row < i32(p.height);
        for (var j = 0u; j < p.kernel_w; j++) {
            let col = left + i32(j);
            let inside = row_inside && col >= 0 && col < i32(p.width);
            let at_x = plane + u32(row) * p.width + u32(col);
            ic_cols[out] = select(0.0, ic_x[select(0u, at_x, inside)], inside);
            out++;
        }
    }
}

// The gradient factor f' at element e of the forward output `aux`, 1 without GRAD.
fn factor(y: f32) -> f32 {
    if (GRAD) {
        return act_derivative_from_output(ACT, p.alpha, y);
    }
    return 1.0;
}

@group(0) @binding(3) var<storage, read> ci_dcols: array<f32>;
@group(0) @binding(4) var<storage, read> ci_aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> ci_dx: array<f32>;

@compute @workgroup_size(LANES)
fn col2im(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let w = e % p.width;
    let h = (e / p.width) % p.height;
    let nc = e / (p.width * p.height);
    let c = nc % p.channels;
    let n = nc / p.channels;
    let area = p.kernel_h * p.kernel_w;
    let row_len = p.channels * area;
    let positions = p.out_h * p.out_w;
    var sum = 0.0;
    for (var i = 0u; i < p.kernel_h; i++) {
        let oh = covering(h, i, p.out_h);
        if (oh < 0) {
            continue;
        }
        for (var j = 0u; j < p.kernel_w; j++) {
            let ow = covering(w, j, p.out_w);
            if (ow < 0) {
                continue;
            }
            let r = n * positions + u32(oh) * p.out_w + u32(ow);
            sum += ci_dcols[r * row_len + c * area + i * p.kernel_w + j];
        }
    }
    if (GRAD) {
        sum *= factor(ci_aux[e]);
    }
    ci_dx[e] = sum;
}

@group(0) @binding(6) var<storage, read> fl_w: array<f32>;
@group(0) @binding(7) var<storage, read_write> fl_t: array<f32>;

@compute @workgroup_size(LANES)
fn flip_filters(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let area = p.kernel_h * p.kernel_w;
    let per_channel = p.batch * area;
    let c = e / per_channel;
    let o = (e % per_channel) / area;
    let t = e % area;
    let i = t / p.kernel_w;
    let j = t % p.kernel_w;
    fl_t[e] = fl_w[(o * p.channels + c) * area + (p.kernel_h - 1u - i) * p.kernel_w + p.kernel_w - 1u - j];
}

@group(0) @binding(9) var<storage, read> pr_src: array<f32>;
@group(0) @binding(10) var<storage, read_write> pr_dst: array<f32>;

@compute @workgroup_size(LANES)
fn planes_to_rows(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let positions = p.out_h * p.out_w;
    let c = e % p.channels;
    let r = e / p.channels;
    let pos = r % positions;
    let n = r / positions;
    pr_dst[e] = pr_src[(n * p.channels + c) * positions + pos];
}

@group(0) @binding(11) var<storage, read> mp_x: array<f32>;
@group(0) @binding(12) var<storage, read_write> mp_y: array<f32>;
@group(0) @binding(13) var<storage, read_write> mp_argmax: array<u32>;

// Output element e's (plane n·C + c, row oh, column ow).
struct Out {
    plane: u32,
    oh: u32,
    ow: u32,
}

fn output_at(e: u32) -> Out {
    let positions = p.out_h * p.out_w;
    let pos = e % positions;
    return Out(e / positions, pos / p.out_w, pos % p.out_w);
}

@compute @workgroup_size(LANES)
fn max_pool(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let o = output_at(e);
    let base = o.plane * p.height * p.width;
    var best = -3.4028235e38;
    var seen = false;
    var winner = 0u;
    for (var i = 0u; i < p.kernel_h; i++) {
        let row = source(o.oh, i, p.height);
        if (row < 0) {
            continue;
        }
        for (var j = 0u; j < p.kernel_w; j++) {
            let col = source(o.ow, j, p.width);
            if (col < 0) {
                continue;
            }
            let v = mp_x[base + u32(row) * p.width + u32(col)];
            // NaN compares false, and compilers may fold `v != v`: the bits tell.
            let is_nan = is_nan_bits(v);
            let best_nan = is_nan_bits(best);
            if (!seen || v > best || (is_nan && !best_nan)) {
                best = v;
                winner = i * p.kernel_w + j;
                seen = true;
            }
        }
    }
    mp_y[e] = act_forward(ACT, p.alpha, best);
    mp_argmax[e] = winner;
}

@group(0) @binding(14) var<storage, read> mb_dy: array<f32>;
@group(0) @binding(15) var<storage, read> mb_argmax: array<u32>;
@group(0) @binding(16) var<storage, read> mb_aux: array<f32>;
@group(0) @binding(17) var<storage, read_write> mb_dx: array<f32>;

@compute @workgroup_size(LANES)
fn max_pool_backward(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let w = e % p.width;
    let h = (e / p.width) % p.height;
    let plane = e / (p.width * p.height);
    let base = plane * p.out_h * p.out_w;
    var sum = 0.0;
    for (var i = 0u; i < p.kernel_h; i++) {
        let oh = covering(h, i, p.out_h);
        if (oh < 0) {
            continue;
        }
        for (var j = 0u; j < p.kernel_w; j++) {
            let ow = covering(w, j, p.out_w);
            if (ow < 0) {
                continue;
            }
            let o = base + u32(oh) * p.out_w + u32(ow);
            if (mb_argmax[o] == i * p.kernel_w + j) {
                sum += mb_dy[o];
            }
        }
    }
    if (GRAD) {
        sum *= factor(mb_aux[e]);
    }
    mb_dx[e] = sum;
}

@compute @workgroup_size(LANES)
fn max_pool_backward_tiles(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let o = output_at(e);
    let g = mb_dy[e];
    let winner = mb_argmax[e];
    let corner = (o.plane * p.height + o.oh * p.kernel_h) * p.width + o.ow * p.kernel_w;
    for (var i = 0u; i < p.kernel_h; i++) {
        for (var j = 0u; j < p.kernel_w; j++) {
            let at = corner + i * p.width + j;
            var v = select(0.0, g, i * p.kernel_w + j == winner);
            if (GRAD) {
                v *= factor(mb_aux[at]);
            }
            mb_dx[at] = v;
        }
    }
}

@group(0) @binding(18) var<storage, read> ap_x: array<f32>;
@group(0) @binding(19) var<storage, read_write> ap_y: array<f32>;

@compute @workgroup_size(LANES)
fn avg_pool(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let o = output_at(e);
    let base = o.plane * p.height * p.width;
    var sum = 0.0;
    for (var i = 0u; i < p.kernel_h; i++) {
        let row = source(o.oh, i, p.height);
        if (row < 0) {
            continue;
        }
        for (var j = 0u; j < p.kernel_w; j++) {
            let col = source(o.ow, j, p.width);
            if (col >= 0) {
                sum += ap_x[base + u32(row) * p.width + u32(col)];
            }
        }
    }
    ap_y[e] = act_forward(ACT, p.alpha, sum * (1.0 / f32(p.kernel_h * p.kernel_w)));
}

@group(0) @binding(20) var<storage, read> ab_dy: array<f32>;
@group(0) @binding(21) var<storage, read> ab_aux: array<f32>;
@group(0) @binding(22) var<storage, read_write> ab_dx: array<f32>;

@compute @workgroup_size(LANES)
fn avg_pool_backward(at: Invocation) {
    let e = item(at);
    if (e >= p.total) {
        return;
    }
    let w = e % p.width;
    let h = (e / p.width) % p.height;
    let plane = e / (p.width * p.height);
    let base = plane * p.out_h * p.out_w;
    var sum = 0.0;
    for (var i = 0u; i < p.kernel_h; i++) {
        let oh = covering(h, i, p.out_h);
        if (oh < 0) {
            continue;
        }
        for (var j = 0u; j < p.kernel_w; j++) {
            let ow = covering(w, j, p.out_w);
            if (ow >= 0) {
                sum += ab_dy[base + u32(oh) * p.out_w + u32(ow)];
            }
        }
    }
    sum *= 1.0 / f32(p.kernel_h * p.kernel_w);
    if (GRAD) {
        sum *= factor(ab_aux[e]);
    }
    ab_dx[e] = sum;
}

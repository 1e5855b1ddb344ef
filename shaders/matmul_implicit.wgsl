// The implicit GEMM: a convolution run by a matrix-product kernel (appended to it) without im2col's
// columns in memory. With IMPLICIT set, the kernel computes
//
//   y[n, o, p] = epilogue(Σ_k cols[n·P + p, k] · W[o, k])     M = N·P rows, K = C·KH·KW, N = O columns
//
// reading cols[n·P + p, (c·KH + i)·KW + j] = x[n, c, oh·stride + i − pad, ow·stride + j − pad] (zero in
// the padding, p = oh·OW + ow) straight from the images (binding `a`), W as op(B) = Wᵀ (TRANS_B), and
// storing row n·P + p, column o at y[(n·O + o)·P + p]: the images a convolution outputs, bias and
// activation applied by the epilogue. The window's words follow the kernel's own in `p`.

override IMPLICIT: bool = false;

// The window one row of cols covers: the input index of its (c = 0, i = 0, j = 0) corner, which may lie
// in the padding, and the image row and column of that corner.
struct Patch {
    base: i32,
    top: i32,
    left: i32,
}

// The patch of cols row `row`; rows past M get a patch wholly outside the image (so they read zeros).
fn patch_of(row: u32) -> Patch {
    let positions = p.out_h * p.out_w;
    let n = row / positions;
    let pos = row % positions;
    let top = i32((pos / p.out_w) * p.stride) - i32(p.padding);
    let left = i32((pos % p.out_w) * p.stride) - i32(p.padding);
    if (row >= p.m) {
        return Patch(0, -i32(p.height) - i32(p.kernel_h), 0);
    }
    return Patch(i32(n * p.channels * p.height * p.width) + top * i32(p.width) + left, top, left);
}

// One column of cols: window offset (i, j) of channel c, as its input offset from a patch's corner and
// its (i, j); columns past K get an offset that no patch reads inside the image.
struct Tap {
    offset: i32,
    i: i32,
    j: i32,
}

fn tap_of(kk: u32) -> Tap {
    let area = p.kernel_h * p.kernel_w;
    let c = kk / area;
    let q = kk % area;
    let i = q / p.kernel_w;
    let j = q % p.kernel_w;
    if (kk >= p.k) {
        return Tap(0, -i32(p.height) - i32(p.kernel_h), 0);
    }
    return Tap(i32((c * p.height + i) * p.width + j), i32(i), i32(j));
}

// cols[row, kk] for the row's patch and the column's tap: zero in the padding (branch-free).
fn patch_at(at: Patch, tap: Tap) -> f32 {
    let r = at.top + tap.i;
    let s = at.left + tap.j;
    let inside = r >= 0 && r < i32(p.height) && s >= 0 && s < i32(p.width);
    return select(0.0, a[select(0u, u32(at.base + tap.offset), inside)], inside);
}

// Where row `row` and column `col` of the product go among the output images.
fn planes_index(row: u32, col: u32) -> u32 {
    let positions = p.out_h * p.out_w;
    return ((row / positions) * p.n + col) * positions + row % positions;
}

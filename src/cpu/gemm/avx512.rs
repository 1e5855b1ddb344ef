//! The AVX-512 path of [`super::gemm`]: blocking, packing, the micro-kernel and the split between
//! threads (the module above describes the scheme).

use std::arch::x86_64::*;

use super::{Dims, Finish, Strided};
use crate::cpu::in_parallel;

/// Tile rows and columns of the micro-kernel.
const MR: usize = 8;
const NR: usize = 32;
/// Depth and width of the packed `B` panels.
const KC: usize = 256;
const NC: usize = 1024;
/// How many rows of a `B` strip ahead the micro-kernel asks the cache for.
const PREFETCH: usize = 8;
/// Steps of the shared dimension per pass of the micro-kernel's loop.
const UNROLL: usize = 4;
/// Products with fewer multiply-adds than this run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 22;

/// `op(B)` as a product takes it: to be packed panel by panel as the product goes, or packed already.
#[derive(Clone, Copy)]
pub(super) enum BSource<'a> {
    Strided(Strided<'a>),
    Packed(&'a Panels),
}

/// All of `op(B)` `[k, n]` packed at once, panel after panel in the order [`block`] reads them, for
/// products that share it (a recurrent layer's steps).
pub(crate) struct Panels {
    data: Vec<f32>,
    /// Where each `(column panel, K slice)` starts in `data`, panel-major.
    starts: Vec<usize>,
    slices: usize,
}

impl Panels {
    /// Packs `op(B)` `[k, n]`.
    ///
    /// # Safety
    /// AVX-512F must be present, and `b` must address every element of `op(B)`.
    pub(super) unsafe fn new(k: usize, n: usize, b: Strided<'_>) -> Self {
        let slices = k.div_ceil(KC);
        let (mut data, mut starts) = (Vec::new(), Vec::new());
        for jc in (0..n).step_by(NC) {
            let nc = NC.min(n - jc);
            for s in 0..slices {
                let (pc, kc) = slice(k, slices, s);
                starts.push(data.len());
                let len = nc.div_ceil(NR) * NR * kc;
                data.resize(data.len() + len, 0.0);
                let at = data.len() - len;
                // SAFETY: the caller's promise.
                unsafe { pack_b(b, pc, kc, jc, nc, &mut data[at..]) };
            }
        }
        Panels {
            data,
            starts,
            slices,
        }
    }
}

/// Slice `s` of `slices` equal slices of `0..k`: its start and length.
fn slice(k: usize, slices: usize, s: usize) -> (usize, usize) {
    let (start, end) = (k * s / slices, k * (s + 1) / slices);
    (start, end - start)
}

/// The product on the AVX-512 path, split between up to `threads` threads.
///
/// # Safety
/// AVX-512F must be present; `a` and `b` must address every element of `op(A)` and `op(B)`, and `c`
/// must hold `m·n` floats.
pub(super) unsafe fn run(
    threads: usize,
    Dims { m, k, n }: Dims,
    a: Strided<'_>,
    b: BSource<'_>,
    c: &mut [f32],
    add: bool,
    finish: Finish<'_>,
) {
    let out = Out {
        ptr: c.as_mut_ptr(),
        ld: n,
    };
    in_parallel(bands(m, k, n, threads).into_iter(), |band| {
        // SAFETY: the bands are disjoint rectangles of `c` (`bands`); the rest is the caller's promise.
        unsafe { block(band, k, a, b, out, add, finish) }
    });
}

/// Where `C` lives: a raw pointer so that threads can write disjoint rectangles of it.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ld: usize,
}
// SAFETY: threads given an `Out` write only to the disjoint rectangles `bands` hands them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// A rectangle of `C`: rows `rows.0..rows.1`, columns `cols.0..cols.1`.
#[derive(Clone, Copy, Debug)]
struct Band {
    rows: (usize, usize),
    cols: (usize, usize),
}

/// The rectangles of `C` that `t` threads compute: one per thread, made of whole tiles, split by
/// columns where there are at least as many column tiles as row tiles (or too few row tiles), else by
/// rows; the whole of `C` when the product is small. (Splitting by columns wherever the busiest
/// thread gets no more tiles measured 11% slower at 1000×784×128: both threads then read all of `A`.)
fn bands(m: usize, k: usize, n: usize, t: usize) -> Vec<Band> {
    let whole = Band {
        rows: (0, m),
        cols: (0, n),
    };
    if t <= 1 || m * k * n < PARALLEL_MIN_MACS {
        return vec![whole];
    }
    let (tiles_m, tiles_n) = (m.div_ceil(MR), n.div_ceil(NR));
    let by_cols = tiles_n >= t && (tiles_n >= tiles_m || tiles_m < t);
    let (tiles, tile, len) = if by_cols {
        (tiles_n, NR, n)
    } else {
        (tiles_m, MR, m)
    };
    let parts = t.min(tiles);
    (0..parts)
        .map(|p| {
            let start = (tiles * p / parts * tile).min(len);
            let end = (tiles * (p + 1) / parts * tile).min(len);
            if by_cols {
                Band {
                    cols: (start, end),
                    ..whole
                }
            } else {
                Band {
                    rows: (start, end),
                    ..whole
                }
            }
        })
        .filter(|b| b.rows.0 < b.rows.1 && b.cols.0 < b.cols.1)
        .collect()
}

thread_local! {
    /// Each thread's packing buffers, kept between calls: an edge strip of `A` (`MR·KC` floats) and a
    /// panel of `B` (`KC·NC`).
    static PACKED: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Computes one band of `C` (see the module's notes for the loop order).
///
/// # Safety
/// AVX-512F must be present; `band` must lie inside `C` and no other thread may touch it; `a` and `b`
/// must address every element of `op(A)` `[m, k]` and `op(B)` `[k, n]`.
#[target_feature(enable = "avx512f")]
unsafe fn block(
    band: Band,
    k: usize,
    a: Strided<'_>,
    b: BSource<'_>,
    c: Out,
    add: bool,
    finish: Finish<'_>,
) {
    PACKED.with_borrow_mut(|(pa, pb)| unsafe {
        pa.resize(MR * KC, 0.0);
        pb.resize(KC * NC, 0.0);
        let mut tile = [0.0f32; MR * NR];
        // K in equal slices of at most KC (784 = 4×196, not 3×256 + 16: a thin last slice wastes
        // the tile loads and stores around it).
        let slices = k.div_ceil(KC);
        for (panel, jc) in (band.cols.0..band.cols.1).step_by(NC).enumerate() {
            let nc = NC.min(band.cols.1 - jc);
            for s in 0..slices {
                let (pc, kc) = slice(k, slices, s);
                // The first slice overwrites C, unless the product is to be added to it.
                let (accumulate, last) = (s > 0 || add, s + 1 == slices);
                let b_panel = match b {
                    BSource::Strided(b) => {
                        pack_b(b, pc, kc, jc, nc, pb);
                        pb.as_ptr()
                    }
                    // Packed for the whole of B: this band must start at column 0.
                    BSource::Packed(p) => p.data.as_ptr().add(p.starts[panel * p.slices + s]),
                };
                for ir in (band.rows.0..band.rows.1).step_by(MR) {
                    let mr = MR.min(band.rows.1 - ir);
                    // A whole strip is read where it lies, unless its `kc` runs would crowd a few
                    // cache sets while many B strips reuse it (columns of a transposed A whose rows
                    // are a multiple of 64 floats apart: at 1024, every run falls in one set, which
                    // measured 15% slower); an edge strip is packed, zero-padded.
                    let crowded = a.col.is_multiple_of(64) && nc > 2 * NR;
                    let direct = a.col == 1 || (a.row == 1 && !crowded);
                    let strip = if mr == MR && direct {
                        let start = a.data.as_ptr().add(ir * a.row + pc * a.col);
                        if a.col == 1 {
                            StripA::AlongK(start, a.row)
                        } else {
                            StripA::Across(start, a.col)
                        }
                    } else {
                        pack_a(a, ir, mr, pc, kc, pa);
                        StripA::Across(pa.as_ptr(), MR)
                    };
                    for jr in (0..nc).step_by(NR) {
                        let nr = NR.min(nc - jr);
                        let b_strip = b_panel.add(jr * kc);
                        // Rows ir.. and columns jc+jr.. are inside the band.
                        let dst = c.ptr.add(ir * c.ld + jc + jr);
                        if mr == MR && nr == NR {
                            strip.kernel::<2>(kc, b_strip, dst, c.ld, accumulate);
                        } else {
                            // An edge tile: computed in a scratch tile (its first 16 columns only
                            // where it has no more), of which the part inside C is read and
                            // written back.
                            for i in 0..mr {
                                for j in 0..nr {
                                    tile[i * NR + j] = if accumulate {
                                        *dst.add(i * c.ld + j)
                                    } else {
                                        0.0
                                    };
                                }
                            }
                            // At most 16 columns: the narrow kernel, half the work.
                            let t = tile.as_mut_ptr();
                            if nr <= 16 {
                                strip.kernel::<1>(kc, b_strip, t, NR, accumulate);
                            } else {
                                strip.kernel::<2>(kc, b_strip, t, NR, accumulate);
                            }
                            for i in 0..mr {
                                for j in 0..nr {
                                    *dst.add(i * c.ld + j) = tile[i * NR + j];
                                }
                            }
                        }
                    }
                    if last {
                        for i in ir..ir + mr {
                            // The row segment lies inside this thread's band.
                            let row = std::slice::from_raw_parts_mut(c.ptr.add(i * c.ld + jc), nc);
                            finish(i, jc, row);
                        }
                    }
                }
            }
        }
    });
}

/// An `MR`-row strip of `op(A)` as the micro-kernel reads it: element `(i, p)` at `ptr + i·step + p`
/// (`AlongK`: rows of a row-major `A`) or at `ptr + p·step + i` (`Across`: a packed strip, or columns of
/// a transposed `A`).
#[derive(Clone, Copy)]
enum StripA {
    AlongK(*const f32, usize),
    Across(*const f32, usize),
}

impl StripA {
    /// The micro-kernel on this strip: the whole tile (`HALVES` 2), or its first 16 columns (1).
    ///
    /// # Safety
    /// As for [`kernel`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn kernel<const HALVES: usize>(
        self,
        kc: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        unsafe {
            match self {
                StripA::AlongK(a, step) => {
                    kernel::<true, HALVES>(kc, a, step, b, c, ldc, accumulate)
                }
                StripA::Across(a, step) => {
                    kernel::<false, HALVES>(kc, a, step, b, c, ldc, accumulate)
                }
            }
        }
    }
}

/// Packs rows `i0..i0+rows` (at most `MR`) and columns `p0..p0+kc` of `op(A)` as one strip stored
/// column by column (`kc` runs of `MR` floats), the rows past the end zero.
///
/// # Safety
/// AVX-512F must be present.
#[target_feature(enable = "avx512f")]
unsafe fn pack_a(a: Strided<'_>, i0: usize, rows: usize, p0: usize, kc: usize, out: &mut [f32]) {
    let source = Source {
        base: i0 * a.row + p0 * a.col,
        across: a.row,
        along: a.col,
        valid: rows,
    };
    unsafe { pack_strip::<MR>(a.data, source, kc, out) };
}

/// Packs rows `p0..p0+kc` and columns `j0..j0+nc` of `op(B)` as `NR`-column strips, each stored row by
/// row (`kc` runs of `NR` floats), the columns past the end zero.
///
/// # Safety
/// AVX-512F must be present.
#[target_feature(enable = "avx512f")]
unsafe fn pack_b(b: Strided<'_>, p0: usize, kc: usize, j0: usize, nc: usize, out: &mut [f32]) {
    for (s, strip) in out[..nc.div_ceil(NR) * NR * kc]
        .chunks_exact_mut(NR * kc)
        .enumerate()
    {
        let first = j0 + s * NR;
        let cols = NR.min(nc - s * NR);
        let source = Source {
            base: p0 * b.row + first * b.col,
            across: b.col,
            along: b.row,
            valid: cols,
        };
        unsafe { pack_strip::<NR>(b.data, source, kc, strip) };
    }
}

/// The elements of one strip in its source: element `(x, p)` (`x` across the strip's width, `p` along
/// the shared dimension) lies at `base + x·across + p·along`; `x ≥ valid` are padding.
#[derive(Clone, Copy)]
struct Source {
    base: usize,
    across: usize,
    along: usize,
    valid: usize,
}

/// Writes `out[p·W + x] = data[src(x, p)]` for `p < kc`, zero for `x ≥ valid`: a copy of `W`-float runs
/// where the source is contiguous across the strip, 8×8 transposes in vector registers where it is
/// contiguous along it, single elements otherwise.
///
/// # Safety
/// AVX-512F must be present.
#[target_feature(enable = "avx512f")]
unsafe fn pack_strip<const W: usize>(data: &[f32], src: Source, kc: usize, out: &mut [f32]) {
    let Source {
        base,
        across,
        along,
        valid,
    } = src;
    assert!(out.len() >= kc * W && valid <= W && valid > 0 && kc > 0);
    assert!(
        base + (valid - 1) * across + (kc - 1) * along < data.len(),
        "pack: out of bounds"
    );
    if valid < W {
        out[..kc * W].fill(0.0);
    }
    let (d, o) = (data.as_ptr(), out.as_mut_ptr());
    // SAFETY (all reads and writes below): every source index is at most the one asserted above, and
    // every destination index is below kc·W.
    unsafe {
        if across == 1 && valid == W {
            for p in 0..kc {
                let run = (d.add(base + p * along) as *const [f32; W]).read_unaligned();
                (o.add(p * W) as *mut [f32; W]).write_unaligned(run);
            }
        } else if across == 1 {
            for p in 0..kc {
                std::ptr::copy_nonoverlapping(d.add(base + p * along), o.add(p * W), valid);
            }
        } else if along == 1 {
            let (full_x, full_p) = (valid / 8 * 8, kc / 8 * 8);
            for x0 in (0..full_x).step_by(8) {
                for p0 in (0..full_p).step_by(8) {
                    let rows: [__m256; 8] = std::array::from_fn(|r| {
                        _mm256_loadu_ps(d.add(base + (x0 + r) * across + p0))
                    });
                    for (r, v) in transpose8(rows).into_iter().enumerate() {
                        _mm256_storeu_ps(o.add((p0 + r) * W + x0), v);
                    }
                }
                for x in x0..x0 + 8 {
                    for p in full_p..kc {
                        *o.add(p * W + x) = *d.add(base + x * across + p);
                    }
                }
            }
            for x in full_x..valid {
                for p in 0..kc {
                    *o.add(p * W + x) = *d.add(base + x * across + p);
                }
            }
        } else {
            for p in 0..kc {
                for x in 0..valid {
                    *o.add(p * W + x) = *d.add(base + x * across + p * along);
                }
            }
        }
    }
}

/// The transpose of an 8×8 block held as eight rows.
#[target_feature(enable = "avx512f")]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    // Interleave pairs of rows, then pairs of pairs, then swap 128-bit halves.
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
        _mm256_unpacklo_ps(r[4], r[5]),
        _mm256_unpackhi_ps(r[4], r[5]),
        _mm256_unpacklo_ps(r[6], r[7]),
        _mm256_unpackhi_ps(r[6], r[7]),
    ];
    let u = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    [
        _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
        _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
        _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
        _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
        _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
        _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
        _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
        _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
    ]
}

/// The micro-kernel: `C[i][j] = C₀[i][j] + Σ_p A(i, p)·B[p][j]` over a `MR×NR` tile (`MR×16` when
/// `HALVES` is 1: a narrow edge tile's first 16 columns, at half the multiply-adds), with `C₀` the
/// tile's present contents when `accumulate`, else zero. `A(i, p)` is `a[i·step + p]` when `ALONG_K`,
/// else `a[p·step + i]`; `b` is a packed strip (`kc` runs of `NR`); the tile's rows are `ldc` apart.
/// Each sum is one chain of fused multiply-adds in `p` order, accumulated in `MR·HALVES` registers,
/// so both widths compute the same bits.
///
/// The loop over `p` is unrolled by [`UNROLL`], each row of `A` addressed from its own pointer: the
/// integer work of a step (address arithmetic, the loop's count) competes with the multiply-adds for
/// the ports that run 512-bit vectors (BENCHMARKS.md, "Round 2, the micro-kernel's loop").
///
/// # Safety
/// AVX-512F must be present and the pointers must address the strip's `MR·kc` elements, `kc·NR`
/// floats of `b` and the tile's floats.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel<const ALONG_K: bool, const HALVES: usize>(
    kc: usize,
    a: *const f32,
    step: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); HALVES]; MR];
    // A(i, p) lies at rows[i] + p·along.
    let (across, along) = if ALONG_K { (step, 1) } else { (1, step) };
    let rows: [*const f32; MR] = std::array::from_fn(|i| a.wrapping_add(i * across));
    unsafe {
        // The tile's lines, wanted at the end (and at the start when accumulating).
        for i in 0..MR {
            for h in 0..HALVES {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + 16 * h) as *const i8);
            }
        }
        if accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (h, half) in row.iter_mut().enumerate() {
                    *half = _mm512_loadu_ps(c.add(i * ldc + 16 * h));
                }
            }
        }
        let one_p = |acc: &mut [[__m512; HALVES]; MR], p: usize| {
            let bs: [__m512; HALVES] = std::array::from_fn(|h| {
                _mm_prefetch::<_MM_HINT_T0>(
                    b.wrapping_add((p + PREFETCH) * NR + 16 * h) as *const i8
                );
                _mm512_loadu_ps(b.add(p * NR + 16 * h))
            });
            for (row, &ai) in acc.iter_mut().zip(&rows) {
                let ai = _mm512_set1_ps(*ai.add(p * along));
                for (half, &bh) in row.iter_mut().zip(&bs) {
                    *half = _mm512_fmadd_ps(ai, bh, *half);
                }
            }
        };
        let mut p = 0;
        while p + UNROLL <= kc {
            for u in 0..UNROLL {
                one_p(&mut acc, p + u);
            }
            p += UNROLL;
        }
        while p < kc {
            one_p(&mut acc, p);
            p += 1;
        }
        for (i, row) in acc.iter().enumerate() {
            for (h, half) in row.iter().enumerate() {
                _mm512_storeu_ps(c.add(i * ldc + 16 * h), *half);
            }
        }
    }
}

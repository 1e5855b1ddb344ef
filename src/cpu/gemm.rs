//! The CPU's single-precision matrix product `C = op(A)·op(B)`, blocked and packed as BLIS does it, with
//! an AVX-512 micro-kernel and a finishing pass (bias, activation) run on each block while it is still in
//! cache. Processors without AVX-512F take `matrixmultiply`'s sgemm instead.
//!
//! Blocking: for each slice of at most `KC` of the shared dimension (equal slices), a `KC×NC` panel of
//! `op(B)` is packed into `NR`-wide strips; the micro-kernel then multiplies an `MR`-row strip of
//! `op(A)` by one `B` strip into an `MR×NR` tile of `C` held in registers. The `A` strip (`KC·MR`
//! floats, 8 KiB), whose elements are broadcast, is read where it lies (packed only at the edges, or
//! where its rows would crowd one cache set) and stays in L1 while the kernel runs along the `B` panel
//! (`KC·NC`, 1 MiB, in L2), prefetching each strip's rows ahead of use. Measured here (a 2-core Xeon
//! with AVX-512; BENCHMARKS.md, "The CPU backend against NumPy and PyTorch"): 8×32 tiles beat 12×32
//! and 14×32 on batch-sized products, the prefetch added 7%, and reading `A` in place 8–23%.
//!
//! Threads split `C` into bands of whole tiles (by columns where there are enough, else by rows), so each
//! element is summed by one thread, in `k` order, the same way whatever the thread count: the result does
//! not depend on how the work was split.

#[cfg(target_arch = "x86_64")]
mod avx512;

use super::threads;

/// `op(M)` seen through strides: element `(i, j)` lies at `data[i * row + j * col]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub data: &'a [f32],
    pub row: usize,
    pub col: usize,
}

/// Work for a finished block of `C`: called once per row segment, with the row's index, the segment's
/// first column and the segment, after the segment's last product has been added.
pub(crate) type Finish<'f> = &'f (dyn Fn(usize, usize, &mut [f32]) + Sync);

/// `c = op(A)·op(B)` for `op(A)` `[m, k]`, `op(B)` `[k, n]` and row-major `c` `[m, n]`, then `finish` on
/// every row segment of `c`. With `k == 0` the product is zero.
pub(super) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    finish: Finish<'_>,
) {
    let dims = Dims { m, k, n };
    let route = Route {
        avx512: avx512(),
        threads: threads(),
    };
    product(route, dims, a, b, c, false, finish);
}

/// [`gemm`] on the calling thread alone, for a product inside a job that already has a thread of its
/// own; `c += op(A)·op(B)` when `add`.
pub(super) fn gemm_in_job(
    (m, k, n): (usize, usize, usize),
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    add: bool,
    finish: Finish<'_>,
) {
    let route = Route {
        avx512: avx512(),
        threads: 1,
    };
    product(route, Dims { m, k, n }, a, b, c, add, finish);
}

/// `op(B)` packed once for many products that share it (a recurrent layer's steps multiply every
/// state by the same weights): in the AVX-512 path's panels, or as a row-major copy for the portable one.
pub(super) struct PackedB {
    k: usize,
    n: usize,
    #[cfg(target_arch = "x86_64")]
    panels: Option<avx512::Panels>,
    plain: Vec<f32>,
}

impl PackedB {
    /// Packs `op(B)` `[k, n]`.
    pub(super) fn new(k: usize, n: usize, b: Strided<'_>) -> Self {
        #[cfg(target_arch = "x86_64")]
        if avx512() && k > 0 && n > 0 {
            // SAFETY: AVX-512F is present (checked); the caller's strides address op(B).
            let panels = unsafe { avx512::Panels::new(k, n, b) };
            return PackedB {
                k,
                n,
                panels: Some(panels),
                plain: Vec::new(),
            };
        }
        let plain = (0..k * n)
            .map(|e| b.data[e / n * b.row + e % n * b.col])
            .collect();
        PackedB {
            k,
            n,
            #[cfg(target_arch = "x86_64")]
            panels: None,
            plain,
        }
    }
}

/// [`gemm_in_job`] with `op(B)` packed beforehand: `c = op(A)·B` for `op(A)` `[m, b.k]`.
pub(super) fn gemm_packed_in_job(
    m: usize,
    a: Strided<'_>,
    b: &PackedB,
    c: &mut [f32],
    finish: Finish<'_>,
) {
    let dims = Dims { m, k: b.k, n: b.n };
    #[cfg(target_arch = "x86_64")]
    if let Some(panels) = &b.panels {
        assert!(
            c.len() >= m * b.n,
            "gemm: C holds {} of {m}×{}",
            c.len(),
            b.n
        );
        if m > 0 {
            // SAFETY: the panels exist only where AVX-512F is present; `c` holds m·n floats.
            unsafe {
                avx512::run(
                    1,
                    dims,
                    a,
                    avx512::BSource::Packed(panels),
                    c,
                    false,
                    finish,
                )
            };
        }
        return;
    }
    let plain = Strided {
        data: &b.plain,
        row: b.n,
        col: 1,
    };
    product(
        Route {
            avx512: false,
            threads: 1,
        },
        dims,
        a,
        plain,
        c,
        false,
        finish,
    );
}

/// A product's sizes: `op(A)` `[m, k]`, `op(B)` `[k, n]`.
#[derive(Clone, Copy)]
struct Dims {
    m: usize,
    k: usize,
    n: usize,
}

/// Which path a product takes: the AVX-512 one (which must then be present) split between up to
/// `threads` threads, or the portable one.
#[derive(Clone, Copy)]
struct Route {
    avx512: bool,
    threads: usize,
}

/// [`gemm`] along `route`, adding the product to `c` when `add`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn product(
    Route { avx512, threads }: Route,
    Dims { m, k, n }: Dims,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    add: bool,
    finish: Finish<'_>,
) {
    assert!(c.len() >= m * n, "gemm: C holds {} of {m}×{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || !avx512 {
        if k > 0 {
            fallback(m, k, n, a, b, c, add);
        } else if !add {
            c[..m * n].fill(0.0);
        }
        c[..m * n]
            .chunks_exact_mut(n)
            .enumerate()
            .for_each(|(i, row)| finish(i, 0, row));
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller vouched for AVX-512F and checked the shapes against the strides; `c` holds
    // m·n floats (asserted above).
    unsafe {
        avx512::run(
            threads,
            Dims { m, k, n },
            a,
            avx512::BSource::Strided(b),
            c,
            add,
            finish,
        )
    };
}

/// The product's kernel on this processor, for reports.
pub(super) fn kernel_name() -> &'static str {
    if avx512() {
        "AVX-512 sgemm 8×32"
    } else {
        "matrixmultiply sgemm"
    }
}

/// Whether the AVX-512 path runs here (looked up once).
fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `matrixmultiply`'s sgemm, multi-threaded, for processors without AVX-512F.
fn fallback(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    add: bool,
) {
    // SAFETY: the caller checked that the strides address `op(A)` and `op(B)` inside their slices, and
    // `c` holds `m·n` floats that alias neither.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row as isize,
            a.col as isize,
            b.data.as_ptr(),
            b.row as isize,
            b.col as isize,
            if add { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// `op(M)` of a row-major `rows×cols` matrix, transposed or not.
    fn strided(data: &[f32], cols: usize, transposed: bool) -> Strided<'_> {
        if transposed {
            Strided {
                data,
                row: 1,
                col: cols,
            }
        } else {
            Strided {
                data,
                row: cols,
                col: 1,
            }
        }
    }

    /// Every path (portable; AVX-512 on 1, 2 and 3 threads where present) on `op(A)·op(B)`.
    fn every_path(
        (m, k, n): (usize, usize, usize),
        (ta, tb): (bool, bool),
        a: &[f32],
        b: &[f32],
        finish: Finish<'_>,
    ) -> Vec<(String, Vec<f32>)> {
        let (a, b) = (
            strided(a, if ta { m } else { k }, ta),
            strided(b, if tb { k } else { n }, tb),
        );
        let mut paths = vec![(false, 1)];
        if avx512() {
            paths.extend([(true, 1), (true, 2), (true, 3)]);
        }
        paths
            .into_iter()
            .map(|(avx, t)| {
                let mut c = vec![f32::NAN; m * n];
                let route = Route {
                    avx512: avx,
                    threads: t,
                };
                product(route, Dims { m, k, n }, a, b, &mut c, false, finish);
                (format!("avx512={avx} threads={t}"), c)
            })
            .collect()
    }

    const SHAPES: [(usize, usize, usize); 8] = [
        (1, 1, 1),
        (7, 3, 5),
        (8, 256, 32),
        (9, 257, 33),
        (100, 784, 50),
        (33, 600, 70),
        (17, 1030, 130),
        (300, 513, 200),
    ];

    /// Each element within the bound on a sum of `k` rounded products, `γ_k·Σ|a||b|` with `γ_k ≈ k·u`,
    /// of an f64 reference; every path at every transpose, at shapes that leave edge tiles, split K
    /// into unequal and equal slices and split C by rows and by columns.
    #[test]
    fn products_match_an_f64_reference_within_the_rounding_bound() {
        let mut rng = StdRng::seed_from_u64(7);
        let none: Finish<'_> = &|_, _, _| {};
        for (m, k, n) in SHAPES {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let at =
                    |i: usize, p: usize| f64::from(if ta { a[p * m + i] } else { a[i * k + p] });
                let bt =
                    |p: usize, j: usize| f64::from(if tb { b[j * k + p] } else { b[p * n + j] });
                for (path, c) in every_path((m, k, n), (ta, tb), &a, &b, none) {
                    for i in 0..m {
                        for j in 0..n {
                            let exact: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                            let mag: f64 = (0..k).map(|p| (at(i, p) * bt(p, j)).abs()).sum();
                            let bound = 1.01 * k as f64 * f64::from(f32::EPSILON / 2.0) * mag;
                            let got = f64::from(c[i * n + j]);
                            assert!(
                                (got - exact).abs() <= bound + 1e-30,
                                "{m}×{k}×{n} ta={ta} tb={tb} {path} at ({i}, {j}): {got} vs {exact}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// However the threads split C, each element is the same chain of operations: equal bits.
    #[test]
    fn the_result_does_not_depend_on_the_thread_split() {
        let mut rng = StdRng::seed_from_u64(8);
        let none: Finish<'_> = &|_, _, _| {};
        for (m, k, n) in [(300, 513, 200), (40, 700, 400), (257, 300, 31)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let results: Vec<_> = every_path((m, k, n), (false, false), &a, &b, none)
                .into_iter()
                .filter(|(path, _)| path.starts_with("avx512=true"))
                .collect();
            for (path, c) in &results[1..] {
                assert!(
                    c.iter()
                        .zip(&results[0].1)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}×{k}×{n}: {path} differs from {}",
                    results[0].0
                );
            }
        }
    }

    /// An edge tile of at most 16 columns runs the narrow micro-kernel, the others the wide one: the
    /// same chains of operations, so the columns of a 10-wide product have the bits of the same
    /// columns of a 32-wide one (a full tile) and of a 20-wide one (a wide edge tile).
    #[test]
    fn narrow_edge_tiles_give_the_bits_of_wide_ones() {
        if !avx512() {
            return;
        }
        let mut rng = StdRng::seed_from_u64(9);
        let none: Finish<'_> = &|_, _, _| {};
        let (m, k) = (37, 300);
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b32: Vec<f32> = (0..k * 32).map(|_| rng.random_range(-1.0..1.0)).collect();
        let columns = |n: usize| -> Vec<f32> {
            let b: Vec<f32> = b32
                .chunks_exact(32)
                .flat_map(|row| &row[..n])
                .copied()
                .collect();
            let route = Route {
                avx512: true,
                threads: 1,
            };
            let mut c = vec![f32::NAN; m * n];
            let (a, b) = (strided(&a, k, false), strided(&b, n, false));
            product(route, Dims { m, k, n }, a, b, &mut c, false, none);
            c.chunks_exact(n)
                .flat_map(|row| &row[..10])
                .copied()
                .collect()
        };
        let narrow = columns(10);
        for wide in [columns(32), columns(20)] {
            assert!(
                narrow
                    .iter()
                    .zip(&wide)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
    }

    /// A NaN in row i of A and an infinity in column j of B reach exactly their row and column: the
    /// zero padding of edge tiles and strips mixes nothing in. The finishing pass sees every element
    /// once, after its last product: on integer data the results are exact.
    #[test]
    fn nan_stays_in_its_row_and_the_finish_runs_once_per_element() {
        let (m, k, n) = (29, 530, 70);
        let mut a: Vec<f32> = (0..m * k).map(|x| (x % 7) as f32 - 3.0).collect();
        let mut b: Vec<f32> = (0..k * n).map(|x| (x % 5) as f32 - 2.0).collect();
        let exact: Vec<f32> = (0..m * n)
            .map(|e| (0..k).map(|p| a[e / n * k + p] * b[p * n + e % n]).sum())
            .collect();
        let plus_one: Finish<'_> = &|_, _, row| row.iter_mut().for_each(|v| *v += 1.0);
        for (path, c) in every_path((m, k, n), (false, false), &a, &b, plus_one) {
            let want: Vec<f32> = exact.iter().map(|v| v + 1.0).collect();
            assert_eq!(c, want, "{path}");
        }
        a[13 * k + 400] = f32::NAN;
        b[250 * n + 44] = f32::INFINITY;
        let none: Finish<'_> = &|_, _, _| {};
        for (path, c) in every_path((m, k, n), (false, false), &a, &b, none) {
            for (e, v) in c.iter().enumerate() {
                let (i, j) = (e / n, e % n);
                // Column 44 meets ∞ in every row: ±∞, or NaN where A's factor is 0.
                let poisoned = i == 13 || j == 44;
                assert_eq!(v.is_finite(), !poisoned, "{path} at ({i}, {j}): {v}");
            }
        }
    }

    #[test]
    fn an_empty_inner_dimension_gives_zeros_and_empty_outputs_are_fine() {
        let plus_one: Finish<'_> = &|_, _, row| row.iter_mut().for_each(|v| *v += 1.0);
        let empty = Strided {
            data: &[],
            row: 0,
            col: 1,
        };
        for add in [false, true] {
            let mut c = vec![2.0; 6];
            let dims = Dims { m: 2, k: 0, n: 3 };
            let route = Route {
                avx512: avx512(),
                threads: 2,
            };
            product(route, dims, empty, empty, &mut c, add, plus_one);
            assert_eq!(c, vec![if add { 3.0 } else { 1.0 }; 6], "add={add}");
        }
        let dims = Dims { m: 0, k: 4, n: 3 };
        let route = Route {
            avx512: avx512(),
            threads: 2,
        };
        product(route, dims, empty, empty, &mut [], false, plus_one);
    }

    /// With `add`, every path sums the product onto C's contents, edge tiles included (integer data,
    /// so the sums are exact).
    #[test]
    fn adding_sums_the_product_onto_c() {
        let (m, k, n) = (29, 530, 70);
        let a: Vec<f32> = (0..m * k).map(|x| (x % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|x| (x % 5) as f32 - 2.0).collect();
        let c0: Vec<f32> = (0..m * n).map(|x| (x % 11) as f32).collect();
        let want: Vec<f32> = (0..m * n)
            .map(|e| {
                c0[e]
                    + (0..k)
                        .map(|p| a[e / n * k + p] * b[p * n + e % n])
                        .sum::<f32>()
            })
            .collect();
        let mut paths = vec![(false, 1)];
        if avx512() {
            paths.extend([(true, 1), (true, 2)]);
        }
        for (avx, t) in paths {
            let mut c = c0.clone();
            let (sa, sb) = (strided(&a, k, false), strided(&b, n, false));
            let route = Route {
                avx512: avx,
                threads: t,
            };
            product(route, Dims { m, k, n }, sa, sb, &mut c, true, &|_, _, _| {});
            assert_eq!(c, want, "avx512={avx} threads={t}");
        }
    }
}

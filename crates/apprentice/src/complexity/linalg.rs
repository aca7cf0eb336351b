//! Dense `f64` linear algebra for kernels of up to a few thousand rows: Gram matrices, the
//! Cholesky factorisation, triangular solves and the eigenvalues of a symmetric matrix.
//!
//! Matrices are row-major slices. Hand-written rather than a dependency: the kernels here are
//! small enough that a straightforward `O(N³)` routine runs in seconds, and every routine keeps
//! its inner loops on contiguous rows so that they vectorise.

use super::{ComplexityError, Result};

/// The dot product of two equally long slices, with four running sums so that the compiler can
/// vectorise the loop without reordering a single sum.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut sums = [0.0f64; 4];
    let chunks = len / 4;
    for k in 0..chunks {
        let i = 4 * k;
        sums[0] += a[i] * b[i];
        sums[1] += a[i + 1] * b[i + 1];
        sums[2] += a[i + 2] * b[i + 2];
        sums[3] += a[i + 3] * b[i + 3];
    }
    let mut tail = 0.0;
    for i in 4 * chunks..len {
        tail += a[i] * b[i];
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Adds `weight(r, s) · ⟨x_r, x_s⟩` to the lower triangle (`s ≤ r`) of the `rows × rows` matrix
/// `out`, for the rows of the `rows × cols` matrix `x`. The upper triangle is left alone, so
/// that several contributions can be summed before one [`mirror_lower`].
///
/// This is where the kernels spend their time, so it is a small matrix-multiplication kernel:
/// the columns are taken in slices that stay in cache, each slice is repacked so that four rows
/// sit side by side, and four rows meet four rows at a time (sixteen independent sums that the
/// compiler can keep in vector registers, where one dot product at a time would wait on its
/// single running sum).
pub fn add_weighted_gram<F: Fn(usize, usize) -> f64>(
    out: &mut [f64],
    x: &[f64],
    rows: usize,
    cols: usize,
    weight: F,
) {
    const SLICE: usize = 256;
    let tile = tile_kernel();
    let blocks = rows.div_ceil(4);
    let mut packed = vec![0.0; blocks * 4 * SLICE.min(cols)];
    for start in (0..cols).step_by(SLICE) {
        let width = (start + SLICE).min(cols) - start;
        // Block b holds rows 4b..4b+4 interleaved: value k of its lane i is x[4b + i][start + k].
        // Lanes past the last row stay zero.
        for r in 0..rows {
            let (block, lane) = (r / 4, r % 4);
            let source = &x[r * cols + start..r * cols + start + width];
            let target = &mut packed[block * 4 * width..(block + 1) * 4 * width];
            for (k, &value) in source.iter().enumerate() {
                target[4 * k + lane] = value;
            }
        }
        let block = |b: usize| &packed[b * 4 * width..(b + 1) * 4 * width];
        for rb in 0..blocks {
            for sb in 0..=rb {
                let sums = tile(block(rb), block(sb));
                for (i, line) in sums.iter().enumerate() {
                    let a = 4 * rb + i;
                    if a >= rows {
                        break;
                    }
                    for (j, sum) in line.iter().enumerate() {
                        let b = 4 * sb + j;
                        if b <= a {
                            out[a * rows + b] += weight(a, b) * sum;
                        }
                    }
                }
            }
        }
    }
}

/// The sixteen dot products between two packed blocks of four rows.
type Tile = fn(&[f64], &[f64]) -> [[f64; 4]; 4];

/// The tile kernel for this processor: compiled for AVX2 and FMA when the processor has them
/// (nearly twice as fast), portable otherwise. The two round differently in the last bits.
fn tile_kernel() -> Tile {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return |a, b| {
            // SAFETY: both features were detected on the running processor just above.
            unsafe { tile_avx2(a, b) }
        };
    }
    tile_portable
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tile_avx2(a: &[f64], b: &[f64]) -> [[f64; 4]; 4] {
    tile_portable(a, b)
}

#[inline(always)]
fn tile_portable(a: &[f64], b: &[f64]) -> [[f64; 4]; 4] {
    let mut sums = [[0.0f64; 4]; 4];
    for (av, bv) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for (line, &ai) in sums.iter_mut().zip(av) {
            for (sum, &bj) in line.iter_mut().zip(bv) {
                *sum += ai * bj;
            }
        }
    }
    sums
}

/// Copies the lower triangle of a square matrix onto its upper triangle, which makes the
/// result exactly symmetric.
pub fn mirror_lower(matrix: &mut [f64], n: usize) {
    for r in 0..n {
        for s in 0..r {
            matrix[s * n + r] = matrix[r * n + s];
        }
    }
}

/// `X Xᵀ` for the rows of the `rows × cols` matrix `x`, exactly symmetric.
pub fn gram(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows * rows];
    add_weighted_gram(&mut out, x, rows, cols, |_, _| 1.0);
    mirror_lower(&mut out, rows);
    out
}

/// The lower Cholesky factor `L` of `A + ridge·I` (`A` symmetric, only its lower triangle read),
/// with `L Lᵀ = A + ridge·I`. On a pivot that is not positive (or not finite) returns its index
/// and value.
pub fn cholesky(a: &[f64], n: usize, ridge: f64) -> std::result::Result<Vec<f64>, (usize, f64)> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let (row_i, row_j) = (&l[i * n..i * n + j], &l[j * n..j * n + j]);
            let mut s = a[i * n + j] - dot(row_i, row_j);
            if i == j {
                s += ridge;
                if !(s > 0.0 && s.is_finite()) {
                    return Err((i, s));
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// Solves `L z = b` in place for a lower-triangular `L` with a positive diagonal.
pub fn forward_substitute(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s = b[i] - dot(&l[i * n..i * n + i], &b[..i]);
        b[i] = s / l[i * n + i];
    }
}

/// Solves `Lᵀ x = z` in place for a lower-triangular `L` with a positive diagonal.
pub fn backward_substitute(l: &[f64], n: usize, z: &mut [f64]) {
    for i in (0..n).rev() {
        z[i] /= l[i * n + i];
        let value = z[i];
        // Column `i` of `Lᵀ` is row `i` of `L`: subtract it from the unknowns above.
        for (k, target) in z[..i].iter_mut().enumerate() {
            *target -= l[i * n + k] * value;
        }
    }
}

/// All eigenvalues of a symmetric matrix (only its lower triangle read), in ascending order.
///
/// Householder reduction to a tridiagonal matrix, keeping the whole symmetric block up to date
/// so that every inner loop runs along a row, then the implicit QL iteration with Wilkinson
/// shifts. About `N³` flops for the reduction and `O(N²)` for the iteration.
pub fn symmetric_eigenvalues(matrix: &[f64], n: usize) -> Result<Vec<f64>> {
    if matrix.len() != n * n {
        return Err(ComplexityError::Shape {
            what: "symmetric matrix values",
            expected: n * n,
            found: matrix.len(),
        });
    }
    if matrix.iter().any(|v| !v.is_finite()) {
        return Err(ComplexityError::NonFinite("the matrix"));
    }
    let mut a = matrix.to_vec();
    mirror_lower(&mut a, n);
    let (mut d, mut e) = tridiagonalise(&mut a, n);
    tridiagonal_eigenvalues(&mut d, &mut e)?;
    d.sort_by(f64::total_cmp);
    Ok(d)
}

/// Reduces the symmetric `a` to tridiagonal form; returns its diagonal and its subdiagonal
/// (`e[i]` couples rows `i − 1` and `i`; `e[0] = 0`).
fn tridiagonalise(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut e = vec![0.0; n];
    let mut u = vec![0.0; n];
    let mut p = vec![0.0; n];
    for i in (1..n).rev() {
        let l = i - 1;
        let row = i * n;
        let scale: f64 = a[row..row + l + 1].iter().map(|v| v.abs()).sum();
        if l == 0 || scale == 0.0 {
            e[i] = a[row + l];
            continue;
        }
        // Householder vector for row i, scaled for safety against overflow.
        let mut h = 0.0;
        for k in 0..=l {
            u[k] = a[row + k] / scale;
            h += u[k] * u[k];
        }
        let f = u[l];
        let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
        e[i] = scale * g;
        h -= f * g;
        u[l] = f - g;
        // p = A u / h on the leading (l+1)-block, then q = p − (uᵀp / 2h) u.
        let mut up = 0.0;
        for j in 0..=l {
            p[j] = dot(&a[j * n..j * n + l + 1], &u[..=l]) / h;
            up += u[j] * p[j];
        }
        let half = up / (h + h);
        for j in 0..=l {
            p[j] -= half * u[j];
        }
        // A ← A − q uᵀ − u qᵀ on the whole block, keeping it symmetric.
        for j in 0..=l {
            let (qj, uj) = (p[j], u[j]);
            let target = &mut a[j * n..j * n + l + 1];
            for k in 0..=l {
                target[k] -= qj * u[k] + uj * p[k];
            }
        }
        // Row i is now (0, …, 0, e[i]); the trailing rows are untouched.
        for k in 0..=l {
            a[row + k] = 0.0;
            a[k * n + i] = 0.0;
        }
    }
    let d = (0..n).map(|i| a[i * n + i]).collect();
    (d, e)
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and subdiagonal `e`
/// (`e[i]` between rows `i − 1` and `i`), left in `d` in no particular order.
fn tridiagonal_eigenvalues(d: &mut [f64], e: &mut [f64]) -> Result<()> {
    let n = d.len();
    if n == 0 {
        return Ok(());
    }
    // The QL iteration wants e[i] between rows i and i + 1.
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        let mut iterations = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iterations += 1;
            if iterations > 100 {
                return Err(ComplexityError::NoConvergence);
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // An exact underflow splits the matrix; restart on the smaller block.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_matrix(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..rows * cols)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    #[test]
    fn gram_matches_the_definition() {
        for (rows, cols) in [(7, 5), (13, 600), (8, 256), (3, 1)] {
            let x = random_matrix(rows, cols, 1);
            let g = gram(&x, rows, cols);
            for r in 0..rows {
                for s in 0..rows {
                    let expected: f64 = (0..cols).map(|k| x[r * cols + k] * x[s * cols + k]).sum();
                    assert!((g[r * rows + s] - expected).abs() < 1e-11);
                }
            }
        }
    }

    #[test]
    fn cholesky_solves_a_positive_definite_system() {
        let n = 9;
        let x = random_matrix(n, 12, 2);
        let a = gram(&x, n, 12);
        let l = cholesky(&a, n, 0.1).unwrap();
        let b: Vec<f64> = (0..n).map(|i| i as f64 - 3.0).collect();
        let mut solution = b.clone();
        forward_substitute(&l, n, &mut solution);
        backward_substitute(&l, n, &mut solution);
        for i in 0..n {
            let row: f64 =
                (0..n).map(|j| a[i * n + j] * solution[j]).sum::<f64>() + 0.1 * solution[i];
            assert!((row - b[i]).abs() < 1e-9, "row {i}: {row} vs {}", b[i]);
        }
    }

    #[test]
    fn cholesky_reports_an_indefinite_matrix() {
        let a = [1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky(&a, 2, 0.0).unwrap_err().0, 1);
    }

    #[test]
    fn eigenvalues_of_a_rotated_diagonal_matrix() {
        let n = 12;
        let values: Vec<f64> = (0..n).map(|i| (i as f64 - 4.0) * 1.5).collect();
        // Q D Qᵀ with a Householder reflection Q = I − 2vvᵀ/|v|².
        let v = random_matrix(n, 1, 3);
        let norm: f64 = v.iter().map(|x| x * x).sum();
        let q: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = (k / n, k % n);
                f64::from(u8::from(i == j)) - 2.0 * v[i] * v[j] / norm
            })
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n)
                    .map(|k| q[i * n + k] * values[k] * q[j * n + k])
                    .sum();
            }
        }
        let found = symmetric_eigenvalues(&a, n).unwrap();
        for (f, v) in found.iter().zip(&values) {
            assert!((f - v).abs() < 1e-10, "{found:?}");
        }
    }

    #[test]
    fn eigenvalues_keep_the_trace_and_the_frobenius_norm() {
        for n in [1, 2, 3, 17, 40] {
            let x = random_matrix(n, n, n as u64);
            let mut a = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] = x[i * n + j] + x[j * n + i];
                }
            }
            let values = symmetric_eigenvalues(&a, n).unwrap();
            let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
            let frobenius: f64 = a.iter().map(|v| v * v).sum();
            assert!((values.iter().sum::<f64>() - trace).abs() < 1e-10);
            assert!((values.iter().map(|v| v * v).sum::<f64>() - frobenius).abs() < 1e-9);
            assert!(values.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}

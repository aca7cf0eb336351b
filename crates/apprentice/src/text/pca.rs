//! Principal component analysis of row vectors: the covariance's eigenvectors by the cyclic
//! Jacobi method, in f64, deterministic (each component's sign is fixed so that its largest
//! coordinate is positive).

/// A fitted projection onto the leading principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Mean of each input coordinate.
    pub mean: Vec<f64>,
    /// `components × input_dim`, row-major, strongest component first.
    pub components: Vec<f64>,
    /// The variance along each component.
    pub variances: Vec<f64>,
    /// Width of the inputs.
    pub input_dim: usize,
}

impl Pca {
    /// Fits `components` components (at most `input_dim`) to `rows` (`n × input_dim`).
    pub fn fit(rows: &[f32], input_dim: usize, components: usize) -> Pca {
        let n = rows.len() / input_dim.max(1);
        let mut mean = vec![0.0f64; input_dim];
        for row in rows.chunks_exact(input_dim) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        for m in &mut mean {
            *m /= n.max(1) as f64;
        }
        let mut covariance = vec![0.0f64; input_dim * input_dim];
        let mut centred = vec![0.0f64; input_dim];
        for row in rows.chunks_exact(input_dim) {
            for (c, (&v, m)) in centred.iter_mut().zip(row.iter().zip(&mean)) {
                *c = v as f64 - m;
            }
            for i in 0..input_dim {
                let ci = centred[i];
                let target = &mut covariance[i * input_dim..(i + 1) * input_dim];
                for (t, &cj) in target[i..].iter_mut().zip(&centred[i..]) {
                    *t += ci * cj;
                }
            }
        }
        for i in 0..input_dim {
            for j in i..input_dim {
                let value = covariance[i * input_dim + j] / n.max(1) as f64;
                covariance[i * input_dim + j] = value;
                covariance[j * input_dim + i] = value;
            }
        }
        let (values, vectors) = symmetric_eigen(covariance, input_dim);
        let mut order: Vec<usize> = (0..input_dim).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
        let keep = components.min(input_dim);
        let mut selected = Vec::with_capacity(keep * input_dim);
        let mut variances = Vec::with_capacity(keep);
        for &k in &order[..keep] {
            let mut column: Vec<f64> = (0..input_dim).map(|i| vectors[i * input_dim + k]).collect();
            let largest =
                column.iter().copied().fold(
                    0.0f64,
                    |best, v| if v.abs() > best.abs() { v } else { best },
                );
            if largest < 0.0 {
                column.iter_mut().for_each(|v| *v = -*v);
            }
            selected.extend(column);
            variances.push(values[k]);
        }
        Pca {
            mean,
            components: selected,
            variances,
            input_dim,
        }
    }

    /// Coordinates of `rows` (`n × input_dim`) on the components, `n × components`.
    pub fn project(&self, rows: &[f32]) -> Vec<f32> {
        let dim = self.input_dim;
        let count = self.variances.len();
        let mut output = Vec::with_capacity(rows.len() / dim.max(1) * count);
        for row in rows.chunks_exact(dim) {
            for component in self.components.chunks_exact(dim) {
                let value: f64 = row
                    .iter()
                    .zip(&self.mean)
                    .zip(component)
                    .map(|((&v, m), c)| (v as f64 - m) * c)
                    .sum();
                output.push(value as f32);
            }
        }
        output
    }
}

/// Eigenvalues and eigenvectors (columns of the second result, `n × n` row-major) of a
/// symmetric matrix, by cyclic Jacobi rotations until the off-diagonal mass is negligible.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off <= 1e-22 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| a[i * n + i]).collect();
    (values, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eigenvectors_reconstruct_the_matrix() {
        let n = 5;
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    ((i * 3 + j * 3 + i * j) % 7) as f64 + if i == j { 4.0 } else { 0.0 };
            }
        }
        let (values, v) = symmetric_eigen(a.clone(), n);
        for i in 0..n {
            for j in 0..n {
                let back: f64 = (0..n)
                    .map(|k| v[i * n + k] * values[k] * v[j * n + k])
                    .sum();
                assert!(
                    (back - a[i * n + j]).abs() < 1e-9,
                    "{i},{j}: {back} vs {}",
                    a[i * n + j]
                );
            }
        }
    }

    #[test]
    fn the_first_component_follows_the_widest_spread() {
        // Points along (1, 1) with a little noise along (1, -1).
        let rows: Vec<f32> = (0..50)
            .flat_map(|i| {
                let t = i as f32 - 25.0;
                let e = if i % 2 == 0 { 0.1 } else { -0.1 };
                [t + e, t - e]
            })
            .collect();
        let pca = Pca::fit(&rows, 2, 1);
        let c = &pca.components;
        assert!((c[0] - c[1]).abs() < 1e-3 && c[0] > 0.0, "{c:?}");
        let projected = pca.project(&rows);
        assert_eq!(projected.len(), 50);
        // The last point, centred on the mean (-0.5, -0.5), lies 24.5·√2 along the diagonal.
        assert!((projected[49] as f64 - 24.5 * 2f64.sqrt()).abs() < 0.01);
    }
}

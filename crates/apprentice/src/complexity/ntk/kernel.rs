//! The kernel as a value: [`KernelKind`] (trace or block) and [`Ntk`], a symmetric matrix with
//! the accessors and comparisons the complexity measures and the tests use. Kept apart from the
//! computation of kernels, so that a kernel made by hand or elsewhere is the same type as one
//! computed from a network.

use serde::{Deserialize, Serialize};

use crate::complexity::linalg::symmetric_eigenvalues;
use crate::complexity::{ComplexityError, Result};

/// Which kernel to build from the per-output gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// `n × n`: the average over outputs of each output's kernel, `(1/C) Σ_c K^(c)`. The default:
    /// `C²` times smaller than the block kernel and `C³` times cheaper to factorise.
    #[default]
    Trace,
    /// `nC × nC`: every pair of (example, output), rows ordered example-major (`i·C + c`).
    Block,
}

/// An empirical NTK, symmetric, stored row-major in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ntk {
    kind: KernelKind,
    examples: usize,
    outputs: usize,
    values: Vec<f64>,
}

impl Ntk {
    /// A kernel from its values (`N × N` row-major, `N = examples` for the trace kernel,
    /// `examples · outputs` for the block kernel), for kernels computed elsewhere or by hand.
    pub fn new(
        kind: KernelKind,
        examples: usize,
        outputs: usize,
        values: Vec<f64>,
    ) -> Result<Self> {
        if examples == 0 {
            return Err(ComplexityError::Empty("kernel examples"));
        }
        if outputs == 0 {
            return Err(ComplexityError::Empty("kernel outputs"));
        }
        let dim = match kind {
            KernelKind::Trace => Some(examples),
            KernelKind::Block => examples.checked_mul(outputs),
        };
        let expected = dim
            .and_then(|d| d.checked_mul(d))
            .ok_or(ComplexityError::TooLarge {
                what: "the kernel",
                bytes: u64::MAX,
                limit: crate::complexity::MAX_BUFFER_BYTES,
            })?;
        if values.len() != expected {
            return Err(ComplexityError::Shape {
                what: "kernel values",
                expected,
                found: values.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ComplexityError::NonFinite("the kernel"));
        }
        Ok(Self {
            kind,
            examples,
            outputs,
            values,
        })
    }

    /// Trace or block kernel.
    pub fn kind(&self) -> KernelKind {
        self.kind
    }

    /// Number of examples `n`.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Number of network outputs `C`.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// Side of the matrix: `n` for the trace kernel, `nC` for the block kernel.
    pub fn dim(&self) -> usize {
        match self.kind {
            KernelKind::Trace => self.examples,
            KernelKind::Block => self.examples * self.outputs,
        }
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// One entry.
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.values[row * self.dim() + col]
    }

    /// Sum of the diagonal.
    pub fn trace(&self) -> f64 {
        let dim = self.dim();
        (0..dim).map(|i| self.values[i * dim + i]).sum()
    }

    /// Frobenius norm.
    pub fn frobenius_norm(&self) -> f64 {
        self.values.iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    /// `‖self − other‖_F / ‖other‖_F`, for comparing two computations of the same kernel.
    pub fn relative_difference(&self, other: &Ntk) -> Result<f64> {
        if self.values.len() != other.values.len() {
            return Err(ComplexityError::Shape {
                what: "kernel to compare with",
                expected: self.values.len(),
                found: other.values.len(),
            });
        }
        let difference: f64 = self
            .values
            .iter()
            .zip(&other.values)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        Ok(difference.sqrt() / other.frobenius_norm())
    }

    /// The kernel multiplied by `factor` (for checking scale invariance).
    pub fn scaled(&self, factor: f64) -> Ntk {
        Ntk {
            values: self.values.iter().map(|v| v * factor).collect(),
            ..self.clone()
        }
    }

    /// The trace kernel of a block kernel (the average of its diagonal blocks); a trace kernel
    /// is returned unchanged.
    pub fn to_trace(&self) -> Ntk {
        if self.kind == KernelKind::Trace {
            return self.clone();
        }
        let (n, c) = (self.examples, self.outputs);
        let dim = n * c;
        let mut values = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let sum: f64 = (0..c)
                    .map(|o| self.values[(i * c + o) * dim + j * c + o])
                    .sum();
                values[i * n + j] = sum / c as f64;
            }
        }
        Ntk {
            kind: KernelKind::Trace,
            examples: n,
            outputs: c,
            values,
        }
    }

    /// All eigenvalues, ascending (about `N³` flops).
    pub fn eigenvalues(&self) -> Result<Vec<f64>> {
        symmetric_eigenvalues(&self.values, self.dim())
    }
}

//! Supervision complexity and its adjusted form, from a factorised kernel, for targets built
//! from labels, random labels, a teacher's logits or anything else. Definitions and choices are
//! in the documentation of [`crate::complexity`].

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, forward_substitute};
use super::ntk::{KernelKind, Ntk};
use super::{ComplexityError, Result};

/// An `n × C` matrix of targets, row-major: one row per example, one column per output.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    examples: usize,
    outputs: usize,
    values: Vec<f64>,
}

impl Targets {
    /// Targets from their values (`examples × outputs`, row-major), e.g. a distillation method's
    /// target distribution.
    pub fn new(values: Vec<f64>, examples: usize, outputs: usize) -> Result<Self> {
        if examples == 0 {
            return Err(ComplexityError::Empty("target examples"));
        }
        if outputs == 0 {
            return Err(ComplexityError::Empty("target outputs"));
        }
        let expected = examples
            .checked_mul(outputs)
            .ok_or_else(|| ComplexityError::Invalid("too many targets".to_owned()))?;
        if values.len() != expected {
            return Err(ComplexityError::Shape {
                what: "target values",
                expected,
                found: values.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(ComplexityError::NonFinite("the targets"));
        }
        Ok(Self {
            examples,
            outputs,
            values,
        })
    }

    /// One-hot rows for class indices below `classes`.
    pub fn one_hot(labels: &[u32], classes: usize) -> Result<Self> {
        if classes == 0 {
            return Err(ComplexityError::Empty("classes"));
        }
        let mut values = vec![0.0; labels.len().saturating_mul(classes)];
        for (row, &label) in labels.iter().enumerate() {
            let label = label as usize;
            if label >= classes {
                return Err(ComplexityError::Invalid(format!(
                    "label {label} of example {row} is not below the {classes} classes"
                )));
            }
            values[row * classes + label] = 1.0;
        }
        Self::new(values, labels.len(), classes)
    }

    /// One-hot rows of labels drawn uniformly from `classes`, the same for the same `seed`: the
    /// targets a network can only memorise.
    pub fn random_labels(examples: usize, classes: usize, seed: u64) -> Result<Self> {
        if classes == 0 {
            return Err(ComplexityError::Empty("classes"));
        }
        let bound = u32::try_from(classes)
            .map_err(|_| ComplexityError::Invalid(format!("{classes} classes are too many")))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<u32> = (0..examples).map(|_| rng.random_range(0..bound)).collect();
        Self::one_hot(&labels, classes)
    }

    /// The softened predictions `softmax(z / T)` of row-major `logits` (`n × classes`), e.g. a
    /// teacher's at distillation temperature `T`, or a teacher checkpoint's along its training.
    pub fn softened(logits: &[f32], classes: usize, temperature: f64) -> Result<Self> {
        if classes == 0 {
            return Err(ComplexityError::Empty("classes"));
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(ComplexityError::Invalid(format!(
                "the temperature must be a positive number, not {temperature}"
            )));
        }
        if !logits.len().is_multiple_of(classes) {
            return Err(ComplexityError::Invalid(format!(
                "{} logits do not split into rows of {classes}",
                logits.len()
            )));
        }
        if logits.iter().any(|v| !v.is_finite()) {
            return Err(ComplexityError::NonFinite("the logits"));
        }
        let mut values = Vec::with_capacity(logits.len());
        for row in logits.chunks(classes) {
            // Subtracting the largest logit keeps every exponent at or below zero.
            let max = row
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
            let start = values.len();
            values.extend(
                row.iter()
                    .map(|&v| ((f64::from(v) - max) / temperature).exp()),
            );
            let total: f64 = values[start..].iter().sum();
            values[start..].iter_mut().for_each(|v| *v /= total);
        }
        Self::new(values, logits.len() / classes, classes)
    }

    /// Number of examples `n`.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// Number of columns `C`.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// How the solver regularises and how it reports the condition number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SolverOptions {
    /// `ρ` in the ridge `λ = ρ · tr(K)/N`: relative to the mean diagonal, so that the measures
    /// stay invariant to the kernel's scale.
    pub relative_ridge: f64,
    /// Largest kernel side for which the condition number comes from all eigenvalues; larger
    /// kernels get the cheaper Cholesky bound.
    pub exact_condition_limit: usize,
}

impl Default for SolverOptions {
    /// `ρ = 1e-6`: small enough to leave well-conditioned kernels untouched, large enough that
    /// the `f64` factorisation of a numerically singular kernel succeeds. Exact condition
    /// numbers up to 1000 rows, where the eigenvalues cost about a second.
    fn default() -> Self {
        Self {
            relative_ridge: 1e-6,
            exact_condition_limit: 1000,
        }
    }
}

/// How a reported condition number was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionMethod {
    /// `(λ_max + λ)/(λ_min + λ)` from all eigenvalues of the kernel: exact.
    Eigenvalues,
    /// `(max L_ii / min L_ii)²` from the Cholesky factor: a lower bound.
    CholeskyBound,
}

/// A kernel factorised once (`K + λI = L Lᵀ`), ready to measure any number of targets.
#[derive(Debug, Clone)]
pub struct FactoredKernel {
    kind: KernelKind,
    examples: usize,
    outputs: usize,
    dim: usize,
    factor: Vec<f64>,
    trace: f64,
    ridge: f64,
    relative_ridge: f64,
    condition_number: f64,
    condition_method: ConditionMethod,
    eigenvalue_range: Option<(f64, f64)>,
}

/// The measures of one set of targets against one kernel, with what is needed to judge them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Complexity {
    /// The kernel used.
    pub kind: KernelKind,
    /// Number of examples `n`.
    pub examples: usize,
    /// Number of target columns.
    pub outputs: usize,
    /// `Yᵀ(K + λI)⁻¹Y`, summed over the target columns.
    pub complexity: f64,
    /// `(1/n) · sqrt(complexity · tr K)`, invariant to the kernel's scale.
    pub adjusted: f64,
    /// `tr K`, without the ridge.
    pub kernel_trace: f64,
    /// The ridge `λ` added to the diagonal.
    pub ridge: f64,
    /// `λ` relative to the mean diagonal of `K`.
    pub relative_ridge: f64,
    /// Condition number of `K + λI`.
    pub condition_number: f64,
    /// Whether [`Complexity::condition_number`] is exact or a lower bound.
    pub condition_method: ConditionMethod,
}

impl FactoredKernel {
    /// Adds the ridge and factorises; fails on a kernel without a positive trace or one that
    /// is not positive definite even with the ridge.
    pub fn new(kernel: &Ntk, options: &SolverOptions) -> Result<Self> {
        let rho = options.relative_ridge;
        if !(rho.is_finite() && rho >= 0.0) {
            return Err(ComplexityError::Invalid(format!(
                "the relative ridge must be a number at or above zero, not {rho}"
            )));
        }
        let dim = kernel.dim();
        let trace = kernel.trace();
        if trace.is_nan() || trace <= 0.0 {
            return Err(ComplexityError::Invalid(format!(
                "the kernel's trace is {trace}: the network's outputs do not depend on its parameters"
            )));
        }
        let ridge = rho * trace / dim as f64;
        let factor = cholesky(kernel.values(), dim, ridge).map_err(|(pivot, value)| {
            ComplexityError::NotPositiveDefinite {
                pivot,
                value,
                ridge,
                relative_ridge: rho,
            }
        })?;
        let (condition_number, condition_method, eigenvalue_range) =
            if dim <= options.exact_condition_limit {
                let eigenvalues = kernel.eigenvalues()?;
                let (low, high) = (eigenvalues[0], eigenvalues[dim - 1]);
                let condition = (high + ridge) / (low + ridge);
                // Rounding can leave the smallest eigenvalue a hair below −λ although the
                // factorisation succeeded; such a kernel is singular to working precision.
                let condition = if condition > 0.0 {
                    condition
                } else {
                    f64::INFINITY
                };
                (condition, ConditionMethod::Eigenvalues, Some((low, high)))
            } else {
                let diagonal = (0..dim).map(|i| factor[i * dim + i]);
                let (low, high) = diagonal.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
                ((high / low).powi(2), ConditionMethod::CholeskyBound, None)
            };
        Ok(Self {
            kind: kernel.kind(),
            examples: kernel.examples(),
            outputs: kernel.outputs(),
            dim,
            factor,
            trace,
            ridge,
            relative_ridge: rho,
            condition_number,
            condition_method,
            eigenvalue_range,
        })
    }

    /// The ridge `λ` added to the diagonal.
    pub fn ridge(&self) -> f64 {
        self.ridge
    }

    /// Condition number of `K + λI` and how it was obtained.
    pub fn condition_number(&self) -> (f64, ConditionMethod) {
        (self.condition_number, self.condition_method)
    }

    /// Smallest and largest eigenvalue of `K` (without the ridge), when the condition number
    /// was computed exactly.
    pub fn eigenvalue_range(&self) -> Option<(f64, f64)> {
        self.eigenvalue_range
    }

    /// `tr K`, without the ridge.
    pub fn kernel_trace(&self) -> f64 {
        self.trace
    }

    /// The supervision complexity of `targets`. With the trace kernel the targets may have any
    /// number of columns (each is measured against the same kernel); with the block kernel they
    /// need one column per network output.
    pub fn measure(&self, targets: &Targets) -> Result<Complexity> {
        let n = self.examples;
        if targets.examples() != n {
            return Err(ComplexityError::Shape {
                what: "target examples",
                expected: n,
                found: targets.examples(),
            });
        }
        let columns = targets.outputs();
        let complexity = match self.kind {
            KernelKind::Trace => {
                let mut total = 0.0;
                let mut column = vec![0.0; n];
                for c in 0..columns {
                    for (i, value) in column.iter_mut().enumerate() {
                        *value = targets.values()[i * columns + c];
                    }
                    forward_substitute(&self.factor, n, &mut column);
                    total += column.iter().map(|v| v * v).sum::<f64>();
                }
                total
            }
            KernelKind::Block => {
                if columns != self.outputs {
                    return Err(ComplexityError::Shape {
                        what: "target columns for the block kernel",
                        expected: self.outputs,
                        found: columns,
                    });
                }
                // Example-major targets are already vec(Y) in the kernel's order.
                let mut vector = targets.values().to_vec();
                forward_substitute(&self.factor, self.dim, &mut vector);
                vector.iter().map(|v| v * v).sum()
            }
        };
        Ok(Complexity {
            kind: self.kind,
            examples: n,
            outputs: columns,
            complexity,
            adjusted: (complexity * self.trace).sqrt() / n as f64,
            kernel_trace: self.trace,
            ridge: self.ridge,
            relative_ridge: self.relative_ridge,
            condition_number: self.condition_number,
            condition_method: self.condition_method,
        })
    }
}

/// Factorises `kernel` and measures `targets` in one call; use [`FactoredKernel`] to measure
/// several sets of targets against the same kernel.
pub fn supervision_complexity(
    kernel: &Ntk,
    targets: &Targets,
    options: &SolverOptions,
) -> Result<Complexity> {
    FactoredKernel::new(kernel, options)?.measure(targets)
}

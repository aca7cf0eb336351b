//! Supervision complexity: how hard a set of targets is for the student to learn, measured with
//! the student's empirical neural tangent kernel (Harutyunyan et al., "Supervision Complexity and
//! its Role in Knowledge Distillation", ICLR 2023).
//!
//! # Definitions
//!
//! Let `f(·; θ)` be the student with `C` outputs (its logits) and `x_1..x_n` the inputs.
//!
//! - **Empirical NTK.** `K_ij = ⟨∇θ f(x_i), ∇θ f(x_j)⟩`. With `C` outputs this is the
//!   `(nC × nC)` **block kernel** `K[(i,c),(j,d)] = ⟨∇θ f_c(x_i), ∇θ f_d(x_j)⟩`, rows and columns
//!   ordered example-major (`i·C + c`). The **trace kernel** is the `n × n` average of its
//!   diagonal blocks, `(1/C) Σ_c K^(c)` with `K^(c)_ij = ⟨∇θ f_c(x_i), ∇θ f_c(x_j)⟩`.
//! - **Supervision complexity** of targets `Y` (`n × C`): `Σ_c y_cᵀ K⁻¹ y_c` with the trace
//!   kernel, `vec(Y)ᵀ K⁻¹ vec(Y)` with the block kernel (`vec` example-major, like the kernel):
//!   the squared RKHS norm of the minimum-norm interpolant of the targets.
//! - **Adjusted supervision complexity**: `(1/n) · sqrt(Yᵀ K⁻¹ Y · tr K)`, with `n` the number of
//!   examples in both cases. Multiplying the kernel by `s > 0` multiplies `Yᵀ K⁻¹ Y` by `1/s` and
//!   `tr K` by `s`, so the adjusted value can be compared across training, while the network's
//!   kernel grows or shrinks.
//!
//! # Choices
//!
//! - **The network measured.** The kernel is that of the logits, with the network in evaluation
//!   mode: dropout off, and batch normalisation using its running statistics, which makes it the
//!   per-channel affine map `γ·(z − μ)/sqrt(σ² + ε) + β`. Every trainable value counts as a
//!   parameter: dense and convolution weights and biases and the batch-norm `γ` and `β`; running
//!   statistics are not parameters.
//! - **The trace kernel is the default.** The nearest kernel of the form `K' ⊗ I_C` to the block
//!   kernel (in Frobenius norm) is exactly the trace kernel, and for a kernel of that form both
//!   definitions of the complexity agree, so little is lost; what is gained is cost. The block
//!   kernel holds `C²` times as many values and its factorisation costs `C³` times as much: for
//!   `n = 1000` and `C = 10`, 8 MB and 0.3 GFLOP against 800 MB and 330 GFLOP. The block kernel
//!   stays available for small `n` and for checking that approximation. When the block kernel
//!   is `K' ⊗ I_C`, its complexity equals the trace kernel's but its trace is `C` times larger, so
//!   its adjusted complexity is `sqrt(C)` times the trace kernel's.
//! - **Ridge.** Empirical kernels are often numerically singular (more examples than the
//!   student's parameters, duplicated inputs), so the solve uses `K + λI` with a ridge relative
//!   to the kernel's scale, `λ = ρ · tr(K)/N` (`N` the kernel's size). Because `λ` scales with
//!   the kernel, every measure keeps the invariance claimed above exactly. The ridge, its relative
//!   value and the condition number of `K + λI` are reported with every measure; `tr K` in the
//!   adjusted complexity is that of the kernel without the ridge.
//! - **Solver.** A Cholesky factorisation of `K + λI` in `f64`; `Yᵀ(K + λI)⁻¹Y` is the squared
//!   norm of `L⁻¹Y`, so one triangular solve per output suffices. A kernel that is not positive
//!   definite after the ridge is an error, not a silent pseudo-inverse.
//! - **Condition number.** Exact, from all eigenvalues (Householder tridiagonalisation and the
//!   implicit QL iteration, about `N³` flops, several times the Cholesky factorisation), up to a
//!   configurable size (1000 by default); above it, the ratio of the largest to the smallest
//!   squared diagonal of the Cholesky factor, which costs nothing more and is a lower bound on
//!   the condition number.
//!
//! # Computing the kernel
//!
//! [`ntk::empirical_ntk`] is exact and fast. It copies the network's weights to the host in
//! `f64`, then for every example runs the forward pass and backpropagates all `C` outputs at
//! once, keeping per layer what the kernel needs:
//!
//! - a dense layer `z = aW + b` has per-example, per-output gradient `a_i ⊗ δ_i^c` for `W` and
//!   `δ_i^c` for `b`, so its block of the kernel is `(A Aᵀ + 1) ⊙ (Δ Δᵀ)` with `A` the layer's
//!   inputs and `Δ` the backpropagated signals; nothing of the size of the weights is formed;
//! - the convolution blocks (weights, biases, batch-norm `γ` and `β`) get their per-example,
//!   per-output gradients written out explicitly, as an `(nC × P_conv)` matrix `G`, and
//!   contribute `G Gᵀ`. The weight gradient is `Σ_p δ_p ⊗ u_p` over output positions `p`, with
//!   `u_p` the input patch under the kernel, kept from the forward pass as an im2col matrix. This
//!   costs `8·n·C·P_conv` bytes (100 MB for `n = 1000`, `C = 10`, `P_conv = 1250`) and
//!   `n²·C·P_conv/2` multiply-adds for the trace kernel, `(nC)²·P_conv/2` for the block kernel.
//!   The alternative, a sum over pairs of positions `Σ_{p,q} (δ_ip·δ_jq)(u_ip·u_jq)`, needs no
//!   such matrix but costs about `P²·(C·out + in·k²)` per pair of examples (`P` positions)
//!   against `C·P_conv`, which is more for every network we build (8 × 8 digits: 64 positions
//!   in the first block);
//! - ReLU, leaky ReLU, tanh and GELU (exact `erf` form) backpropagate through their
//!   derivatives, max-pooling through the position of each window's maximum (ties go to the
//!   first in reading order).
//!
//! For the 64-32-10 digits student (2410 parameters), the fast trace kernel of 1000 inputs
//! takes a few hundredths of a second where the brute force takes seconds; for CNNs the Gram
//! matrix of the convolution gradients dominates and the gain is smaller (about five times).
//!
//! [`ntk::empirical_ntk_brute_force`] is the reference: burn's autodiff, one backward pass per
//! example and output through [`crate::models::Network::forward`] itself, every parameter's
//! gradient flattened, then the Gram matrix of those gradients. The tests hold the fast path
//! against it.
//!
//! # Targets
//!
//! [`supervision::Targets`] builds one-hot labels, seeded random labels, the teacher's softened
//! predictions `softmax(z/T)` from its logits (one call per temperature, or per checkpoint along
//! the teacher's training), or any other `n × C` matrix, such as a distillation method's targets.
//!
//! # The study
//!
//! [`study::measure_targets`] measures a list of named targets against one kernel computed and
//! factorised once (cheap enough to call between training epochs), [`study`] builds the
//! standard list and the fixed stratified subset of inputs, and `apprentice complexity` runs
//! the whole study: table, `complexity.json` and `complexity.png`.

pub mod linalg;
pub mod ntk;
pub mod study;
pub mod supervision;

pub use ntk::{HostNetwork, KernelKind, Ntk, empirical_ntk, empirical_ntk_brute_force};
pub use supervision::{
    Complexity, ConditionMethod, FactoredKernel, SolverOptions, Targets, supervision_complexity,
};

/// Why a kernel or a complexity could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComplexityError {
    /// No examples, no outputs or no classes.
    #[error("{0}: nothing to measure")]
    Empty(&'static str),
    /// Sizes that do not fit together.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What was being checked.
        what: &'static str,
        /// The size it should have had.
        expected: usize,
        /// The size it had.
        found: usize,
    },
    /// A NaN or an infinity in the inputs, the weights, the targets or the kernel.
    #[error("{0} contains a value that is not finite")]
    NonFinite(&'static str),
    /// A setting outside its range.
    #[error("{0}")]
    Invalid(String),
    /// The Cholesky factorisation met a pivot that was not positive.
    #[error(
        "the kernel is not positive definite even with the ridge {ridge:e} (relative {relative_ridge:e}): \
         pivot {pivot} is {value:e}; raise the relative ridge"
    )]
    NotPositiveDefinite {
        /// Index of the failing pivot.
        pivot: usize,
        /// Its value before the square root.
        value: f64,
        /// The absolute ridge added to the diagonal.
        ridge: f64,
        /// The ridge relative to the mean diagonal.
        relative_ridge: f64,
    },
    /// The eigenvalue iteration did not converge (only on corrupted input).
    #[error("the eigenvalue iteration did not converge")]
    NoConvergence,
    /// A kernel file that could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The result would not fit in memory.
    #[error("{what} would need {bytes} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was being allocated.
        what: &'static str,
        /// The bytes it would take (saturated at `u64::MAX`).
        bytes: u64,
        /// The largest allocation this module makes.
        limit: u64,
    },
}

/// Shorthand for results with [`ComplexityError`].
pub type Result<T, E = ComplexityError> = std::result::Result<T, E>;

/// The largest single buffer this module allocates, so that a request for the block kernel of
/// many examples fails with a message rather than aborting the process.
pub const MAX_BUFFER_BYTES: u64 = 16 << 30;

/// Checks that `count` `f64` values fit under [`MAX_BUFFER_BYTES`].
pub(crate) fn check_buffer(what: &'static str, count: Option<usize>) -> Result<usize> {
    let bytes = count.and_then(|c| (c as u64).checked_mul(8));
    match (count, bytes) {
        (Some(count), Some(bytes)) if bytes <= MAX_BUFFER_BYTES => Ok(count),
        _ => Err(ComplexityError::TooLarge {
            what,
            bytes: bytes.unwrap_or(u64::MAX),
            limit: MAX_BUFFER_BYTES,
        }),
    }
}

//! The empirical neural tangent kernel of a [`Network`](crate::models::Network): an exact fast
//! path on host `f64` copies of the weights, and a brute-force path through burn's autodiff that
//! the fast path is tested against. The module documentation of [`crate::complexity`] gives the
//! definitions, the route taken for each kind of layer and its cost.
//!
//! One concept per file: `kernel` holds the kernel as a value ([`Ntk`], [`KernelKind`]); `host`
//! the fast route ([`HostNetwork`], [`empirical_ntk`]), helped by `conv` (a convolution block's
//! forward and backward passes) and `activation` (the activations and their derivatives);
//! `brute_force` the autodiff reference ([`empirical_ntk_brute_force`]).

mod activation;
mod brute_force;
mod conv;
mod host;
mod kernel;

pub use brute_force::empirical_ntk_brute_force;
pub use host::{HostNetwork, empirical_ntk};
pub use kernel::{KernelKind, Ntk};

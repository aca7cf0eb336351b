//! Models: architecture specs, the layers, and networks built from them.
//!
//! A [`Network`] is an MLP or a CNN described by a [`ModelSpec`]. Its forward pass returns the
//! logits together with named intermediate features, so that feature-based distillation methods
//! can reach inside without changing the models.

pub mod kernels;
pub mod layers;
pub mod network;
pub mod spec;

pub use network::{Feature, FeatureTensor, ForwardOutput, Network};
pub use spec::{Activation, CnnSpec, MlpSpec, ModelSpec};

//! The standard distillation methods beyond Hinton's KD, as pure loss functions on tensors.
//!
//! Each method has a settings struct (serde, unknown keys rejected, defaults from its paper or
//! from the reference implementation the paper's numbers come from), a [`MethodInfo`] that
//! lists its hyper-parameters for display, and a loss function that returns the *weighted*
//! distillation term, ready to be added to the student's cross-entropy:
//!
//! | method | inputs | loss |
//! |---|---|---|
//! | [`dkd`] | logits, labels | α·TCKD + β·NCKD |
//! | [`dist`] | logits | T²·(β·inter + γ·intra) |
//! | [`fitnet`] | one feature pair and a learned regressor | weight·MSE |
//! | [`attention`] | feature maps, one pair per stage | weight·Σ stages |
//! | [`rkd`] | embeddings `[batch, dim]` | w_d·distance + w_a·angle |
//! | [`pkt`] | embeddings `[batch, dim]` | weight·mean KL |
//! | [`sp`] | features flattened to `[batch, dim]`, one pair per stage | weight·Σ stages |
//!
//! Teacher inputs are detached inside every function, so only the student (and a FitNets
//! regressor) receives gradients. Schedules (DKD's warm-up over epochs) and the cross-entropy
//! belong to the caller.
//!
//! Methods that compare samples with each other (DIST's intra-class term, RKD, PKT, SP) need
//! at least two samples; they return [`MethodError::BatchTooSmall`] otherwise, a variant of
//! its own so that a training loop can skip the term on a final batch of one.

pub mod attention;
pub mod dist;
pub mod dkd;
pub mod fitnet;
pub mod pkt;
pub mod rkd;
pub mod sp;

mod ops;

use burn::tensor::Tensor;

use crate::models::network::FeatureTensor;

pub use attention::{AttentionSettings, at_loss, at_loss_against, attention_map};
pub use dist::{DistParts, DistSettings, dist_loss, dist_parts};
pub use dkd::{DkdParts, DkdSettings, dkd_loss, dkd_parts, dkd_warmup_factor};
pub use fitnet::{FitNetRegressor, FitNetSettings, fitnet_loss};
pub use pkt::{PktSettings, pkt_loss};
pub use rkd::{RkdParts, RkdSettings, rkd_loss, rkd_parts};
pub use sp::{SpSettings, sp_loss};

/// Why a method cannot compute its loss on the given inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MethodError {
    /// The batch has fewer samples than the method compares; a training loop may skip the
    /// distillation term for such a batch (e.g. a final partial batch of one).
    #[error("{method}: needs a batch of at least {needed} samples, got {got}: {why}")]
    BatchTooSmall {
        /// The method's short name.
        method: &'static str,
        /// The smallest batch it accepts.
        needed: usize,
        /// The batch it was given.
        got: usize,
        /// What the method compares across samples.
        why: &'static str,
    },
    /// Inputs whose shapes do not fit together.
    #[error("{method}: {detail}")]
    Shape {
        /// The method's short name.
        method: &'static str,
        /// The shapes involved and what was expected.
        detail: String,
    },
    /// A hyper-parameter outside its valid range.
    #[error("{method}: {detail}")]
    Setting {
        /// The method's short name.
        method: &'static str,
        /// The key, its value and the valid range.
        detail: String,
    },
}

/// One hyper-parameter of a method: its key in a settings file, its default and its meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HyperParameter {
    /// The serde key of the settings struct field.
    pub key: &'static str,
    /// The default value (integers are shown as whole numbers).
    pub default: f64,
    /// What it controls, and where the default comes from.
    pub meaning: &'static str,
}

/// A method's description for listings: name, paper, expected inputs and hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MethodInfo {
    /// Short name, as used in settings files.
    pub name: &'static str,
    /// Full name.
    pub title: &'static str,
    /// The paper that introduced it.
    pub paper: &'static str,
    /// What the loss function takes.
    pub inputs: &'static str,
    /// Conventions chosen where the paper and the reference implementations differ.
    pub conventions: &'static str,
    /// Every field of the settings struct, in declaration order.
    pub hyper_parameters: &'static [HyperParameter],
}

/// Every method of this module, in the order a listing should show them.
pub const METHODS: [&MethodInfo; 7] = [
    &dkd::DkdSettings::INFO,
    &dist::DistSettings::INFO,
    &fitnet::FitNetSettings::INFO,
    &attention::AttentionSettings::INFO,
    &rkd::RkdSettings::INFO,
    &pkt::PktSettings::INFO,
    &sp::SpSettings::INFO,
];

/// A feature as a `[batch, values]` matrix: flat features unchanged, maps flattened per sample
/// in channel, row, column order (the input the relation-based methods take).
pub fn flatten_feature(feature: FeatureTensor) -> Tensor<2> {
    match feature {
        FeatureTensor::Flat(values) => values,
        FeatureTensor::Map(map) => {
            let [batch, channels, height, width] = map.dims();
            map.reshape([batch, channels * height * width])
        }
    }
}

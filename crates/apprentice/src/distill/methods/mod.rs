//! Every distillation method, one module each: its settings (serde, unknown keys rejected,
//! defaults from its paper or from the reference implementation the paper's numbers come
//! from), their validation, its [`MethodInfo`] for `apprentice methods`, its loss, and its
//! [`crate::distill::method::MethodSettings`] implementation that makes it a method; each is
//! registered by one line in [`crate::distill::registry`].
//!
//! | method | inputs | what it adds to the student's cross-entropy |
//! |---|---|---|
//! | [`kd`] | logits, labels | Hinton's T²·KL (weights α, 1 − α) |
//! | [`dkd`] | logits, labels | α·TCKD + β·NCKD |
//! | [`dist`] | logits | T²·(β·inter + γ·intra) |
//! | [`logit_std`] | logits, labels | w_kd·T²·KL of z-scored logits (CE weighted w_ce) |
//! | [`fitnet`] | one feature pair and a learned regressor | weight·MSE |
//! | [`attention`] | feature maps, one pair per stage | weight·Σ stages |
//! | [`rkd`] | embeddings `[batch, dim]` | w_d·distance + w_a·angle |
//! | [`pkt`] | embeddings `[batch, dim]` | weight·mean KL |
//! | [`sp`] | features flattened to `[batch, dim]`, one pair per stage | weight·Σ stages |
//!
//! and the schemes, which orchestrate several trainings: [`born_again`], [`dml`],
//! [`multi_teacher`], [`ta`] and [`online`].
//!
//! Teacher inputs are detached inside every loss, so only the student (and a FitNets
//! regressor) receives gradients. Methods that compare samples with each other (DIST's
//! intra-class term, RKD, PKT, SP) need at least two samples; they return
//! [`MethodError::BatchTooSmall`] otherwise, a variant of its own so that a training loop can
//! skip the term on a final batch of one.

pub mod attention;
pub mod born_again;
pub mod dist;
pub mod dkd;
pub mod dml;
pub mod fitnet;
pub mod kd;
pub mod logit_std;
pub mod multi_teacher;
pub mod online;
pub mod pkt;
pub mod regressor;
pub mod rkd;
pub mod sp;
pub mod ta;

mod ops;

pub use attention::{AttentionSettings, at_loss, at_loss_against, attention_map};
pub use dist::{DistParts, DistSettings, dist_loss, dist_parts};
pub use dkd::{DkdParts, DkdSettings, dkd_loss, dkd_parts, dkd_warmup_factor};
pub use fitnet::{FitNetSettings, fitnet_loss};
pub use pkt::{PktSettings, pkt_loss};
pub use regressor::FitNetRegressor;
pub use rkd::{RkdParts, RkdSettings, rkd_loss, rkd_parts};
pub use sp::{SpSettings, sp_loss};

pub use crate::distill::method::{HyperParameter, MethodInfo};
pub use crate::distill::method_error::MethodError;

pub use crate::distill::objective::flatten_feature;

//! Measures of a trained classifier, computed from its raw logits.
//!
//! Everything here works on plain row-major `&[f32]` logits (`n * num_classes` values, one
//! row per sample) rather than on tensors, so that the numbers reported for a model do not
//! depend on the deep-learning backend that produced them, and so that they can be checked
//! against an independent implementation (`tests/fixtures/make_reference.py`).

pub mod efficiency;
pub mod metrics;
pub mod split;

pub use metrics::{
    ECE_BINS, Metrics, accuracy, agreement, argmax_rows, confusion_matrix, evaluate,
    expected_calibration_error, log_softmax_row, mean_kl, negative_log_likelihood, softmax_row,
};

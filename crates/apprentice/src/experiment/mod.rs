//! Experiments: the teacher / scratch / distilled comparison over seeds and label fractions,
//! and continual learning.
//!
//! - [`run`]: the loop over seeds, label fractions and methods, and `results.json`;
//! - `job`: training one model of one seed, with its checkpoint, record and resume;
//! - `teacher`, `teacher_logits`: each seed's teacher and its logits (or the teacher cache);
//! - `frozen_teacher`, `onnx_teacher`: a teacher from another framework (ONNX), whose outputs
//!   are computed once per seed;
//! - `students`: the runner's side of [`crate::distill::method::Students`], through which
//!   every method trains;
//! - `probe`: supervision complexity tracked during training;
//! - [`seeds`]: every seed and model name of a run;
//! - [`tune`]: the temperature `"auto"` chooses;
//! - [`continual`]: data in stages, with and without forgetting;
//! - [`cache_teacher`]: a teacher's logits written once to a (sharded) teacher cache;
//! - [`complexity_study`]: `apprentice complexity`'s measurements;
//! - [`step_bench`]: `apprentice bench-step`'s workloads.

pub mod cache_teacher;
pub mod complexity_study;
pub mod continual;
mod frozen_teacher;
mod job;
#[cfg(feature = "onnx")]
mod onnx_teacher;
mod options;
mod probe;
pub mod run;
pub mod seeds;
pub mod step_bench;
mod students;
mod teacher;
mod teacher_logits;
pub mod tune;
pub mod tune_verify;

pub use frozen_teacher::onnx_teacher_digest;
#[cfg(feature = "onnx")]
pub use onnx_teacher::{load_onnx_teacher, onnx_teacher_logits};
pub use run::{RunOptions, TEACHER_CACHE_KEY, TEMPERATURE_CHOICE_KEY, run_experiment};
pub use seeds::{
    fraction_suffix, label_subset_seed, student_init_seed, student_order_seed, teacher_init_seed,
    teacher_order_seed,
};
pub use teacher::{seed_teacher, seed_teacher_with_snapshots};
pub use teacher_logits::TeacherCacheUse;

//! Experiments: the data pipeline of a run and the teacher / scratch / distilled comparison.

pub mod continual;
pub mod run;
pub mod tune;

pub use run::{
    RunOptions, fraction_suffix, label_subset_seed, run_experiment, student_init_seed,
    student_order_seed, teacher_init_seed, teacher_order_seed,
};

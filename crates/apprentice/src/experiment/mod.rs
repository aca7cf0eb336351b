//! Experiments: the data pipeline of a run and the teacher / scratch / distilled comparison.

pub mod data;
pub mod run;

pub use run::{RunOptions, fraction_suffix, run_experiment};

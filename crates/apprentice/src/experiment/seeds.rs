//! The seeds and names of one experiment: every random choice of a run is a pure function of
//! the experiment's seed, so that scratch and distilled students share their initial weights
//! and data order, and a resumed run recomputes exactly what it lost.

use crate::data::batch::mix_seed;
use crate::distill::record::Transfer;

/// The display suffix of a label fraction: empty for all labels, `@5%` otherwise.
pub fn fraction_suffix(fraction: f64) -> String {
    if fraction >= 1.0 {
        String::new()
    } else {
        let percent = fraction * 100.0;
        if (percent - percent.round()).abs() < 1e-9 {
            format!("@{}%", percent.round())
        } else {
            format!("@{percent}%")
        }
    }
}

/// The seed of a student's initial weights in the experiment of `seed`: every student of a seed
/// (scratch and distilled alike) starts from these weights.
pub fn student_init_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x57d0_0001)
}

/// The seed of a student's data order and dropout masks in the experiment of `seed`.
pub fn student_order_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x57d0_0002)
}

/// The seed of the teacher's initial weights in the experiment of `seed`.
pub fn teacher_init_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x7eac_0001)
}

/// The seed of the teacher's data order and dropout masks in the experiment of `seed`.
pub fn teacher_order_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x7eac_0002)
}

/// The seed of the labelled subset drawn for label fractions below 1 in the experiment of `seed`.
pub fn label_subset_seed(seed: u64) -> u64 {
    mix_seed(seed, 0x1abe_0001)
}

/// The model name of a method's student: `kd`, `kd-all@5%`, `born-again-2-labelled@5%`.
pub fn student_name(method: &str, transfer: Transfer, fraction: f64) -> String {
    if fraction < 1.0 {
        format!(
            "{method}-{}{}",
            transfer.as_str(),
            fraction_suffix(fraction)
        )
    } else {
        method.to_string()
    }
}

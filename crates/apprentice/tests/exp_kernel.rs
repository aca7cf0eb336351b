//! `exp` many floats at a time (`models::kernels::exp_in_place`, sixteen lanes where the CPU has
//! AVX-512, and `exp_in_place_eight_lanes`) against `f32::exp`: the same bits for every one of
//! the 2³² floats (NaNs, infinities, subnormals, both zeros, overflow and underflow included),
//! at every position of a block, and in slices whose length is not a multiple of the width.

mod common;

use apprentice::models::kernels::{exp_in_place, exp_in_place_eight_lanes};
use common::exhaustive::{Kernel, Reference, assert_every_float};

/// The function the kernels must reproduce.
const REFERENCE: Reference = (f32::exp, "f32::exp");

#[test]
fn every_float_gives_f32_exps_bits() {
    assert_every_float(exp_in_place, "exp", REFERENCE);
}

#[test]
fn every_float_gives_f32_exps_bits_eight_lanes_at_a_time() {
    assert_every_float(exp_in_place_eight_lanes, "exp", REFERENCE);
}

#[test]
fn short_and_ragged_slices_give_f32_exps_bits() {
    for (exp, len) in [exp_in_place as Kernel, exp_in_place_eight_lanes]
        .into_iter()
        .flat_map(|exp| (0..56).map(move |len| (exp, len)))
    {
        let mut values: Vec<f32> = (0..len).map(|i| (i as f32 - 30.0) * 3.1).collect();
        let expected: Vec<u32> = values.iter().map(|&x| x.exp().to_bits()).collect();
        exp(&mut values);
        let got: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, expected, "a slice of {len} floats");
    }
}

//! `erf` many floats at a time (`models::kernels::erf_in_place`, sixteen lanes where the CPU has
//! AVX-512, and `erf_in_place_eight_lanes`) against `libm::erff`: the same bits for every one of
//! the 2³² floats (NaNs, infinities, subnormals and both zeros included), at every position of
//! a block, in slices whose length is not a multiple of the width, and in blocks that mix
//! every branch of libm's formula (which the sixteen-lane kernel sorts apart and puts back).

mod common;

use apprentice::models::kernels::{erf_in_place, erf_in_place_eight_lanes};
use common::exhaustive::{Kernel, Reference, assert_every_float};

/// The function the kernels must reproduce.
const REFERENCE: Reference = (libm::erff, "libm::erff");

#[test]
fn every_float_gives_libms_bits() {
    assert_every_float(erf_in_place, "erf", REFERENCE);
}

#[test]
fn every_float_gives_libms_bits_eight_lanes_at_a_time() {
    assert_every_float(erf_in_place_eight_lanes, "erf", REFERENCE);
}

#[test]
fn short_and_ragged_slices_give_libms_bits() {
    for (erf, len) in [erf_in_place as Kernel, erf_in_place_eight_lanes]
        .into_iter()
        .flat_map(|erf| (0..56).map(move |len| (erf, len)))
    {
        let mut values: Vec<f32> = (0..len).map(|i| (i as f32 - 20.0) * 0.31).collect();
        let expected: Vec<u32> = values.iter().map(|&x| libm::erff(x).to_bits()).collect();
        erf(&mut values);
        let got: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, expected, "a slice of {len} floats");
    }
}

#[test]
fn blocks_mixing_every_branch_give_libms_bits() {
    // Neighbouring floats from every branch (|x| below 0.84375, 1.25, 1/0.35, 6 and above),
    // as GELU's arguments come, over many passes of the sixteen-lane kernel, with a NaN and
    // infinities in some blocks; and slices of every length up to a few passes.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut values: Vec<f32> = (0..40_000)
        .map(|_| {
            let r = next();
            let magnitude = (r >> 11) as f32 / (1u64 << 53) as f32 * 7.0;
            if r & 1 == 0 { magnitude } else { -magnitude }
        })
        .collect();
    for at in [17, 300, 301, 5_000, 12_345] {
        values[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][at % 3];
    }
    for len in (0..700).chain([values.len()]) {
        for erf in [erf_in_place as Kernel, erf_in_place_eight_lanes] {
            let mut got = values[..len].to_vec();
            erf(&mut got);
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            let want: Vec<u32> = values[..len]
                .iter()
                .map(|&x| libm::erff(x).to_bits())
                .collect();
            assert_eq!(got, want, "a slice of {len} mixed floats");
        }
    }
}

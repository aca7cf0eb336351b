//! `exp` many floats at a time (`models::kernels::exp_in_place`, sixteen lanes where the CPU has
//! AVX-512, and `exp_in_place_eight_lanes`) against `f32::exp`: the same bits for every one of
//! the 2³² floats (NaNs, infinities, subnormals, both zeros, overflow and underflow included),
//! at every position of a block, and in slices whose length is not a multiple of the width.

use apprentice::models::kernels::{exp_in_place, exp_in_place_eight_lanes};
use rayon::prelude::*;

/// A kernel under test.
type Kernel = fn(&mut [f32]);

/// Checks `exp` over every float whose bits start with `high` (2¹⁶ of them), shifted by
/// `offset` inside the slice so that each lands at a different lane from one `high` to the
/// next.
fn check_block(exp: Kernel, high: u32) -> Result<(), String> {
    let offset = (high % 16) as usize;
    let mut values: Vec<f32> = (0..offset)
        .map(|i| i as f32 * -0.37)
        .chain((0..1u32 << 16).map(|low| f32::from_bits(high << 16 | low)))
        .collect();
    let expected: Vec<u32> = values.iter().map(|&x| x.exp().to_bits()).collect();
    let inputs = values.clone();
    exp(&mut values);
    for ((x, got), want) in inputs.iter().zip(&values).zip(&expected) {
        if got.to_bits() != *want {
            return Err(format!(
                "exp({x:e}) (bits {:#010x}): {got:e} ({:#010x}), f32::exp gives {:e} ({want:#010x})",
                x.to_bits(),
                got.to_bits(),
                f32::from_bits(*want),
            ));
        }
    }
    Ok(())
}

/// Fails unless `exp` gives `f32::exp`'s bits for every float.
fn check_every_float(exp: Kernel) {
    let failures: Vec<String> = (0..1u32 << 16)
        .into_par_iter()
        .filter_map(|high| check_block(exp, high).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} blocks of 2^16 floats differ from f32::exp, for example {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn every_float_gives_f32_exps_bits() {
    check_every_float(exp_in_place);
}

#[test]
fn every_float_gives_f32_exps_bits_eight_lanes_at_a_time() {
    check_every_float(exp_in_place_eight_lanes);
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

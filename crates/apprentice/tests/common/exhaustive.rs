//! A kernel that works on a slice in place, run over every one of the 2³² floats and compared
//! bit for bit with the scalar function it must reproduce.

use rayon::prelude::*;

/// A kernel under test: replaces every value of the slice.
pub type Kernel = fn(&mut [f32]);

/// The function a kernel must reproduce, and its name for messages (`libm::erff`).
pub type Reference = (fn(f32) -> f32, &'static str);

/// Checks `kernel` over every float whose bits start with `high` (2¹⁶ of them), shifted by
/// `offset` inside the slice so that each lands at a different lane from one `high` to the
/// next. `name` is the function's name in messages.
fn check_block(kernel: Kernel, name: &str, reference: Reference, high: u32) -> Result<(), String> {
    let (function, reference_name) = reference;
    let offset = (high % 16) as usize;
    let mut values: Vec<f32> = (0..offset)
        .map(|i| i as f32 * 0.37)
        .chain((0..1u32 << 16).map(|low| f32::from_bits(high << 16 | low)))
        .collect();
    let expected: Vec<u32> = values.iter().map(|&x| function(x).to_bits()).collect();
    let inputs = values.clone();
    kernel(&mut values);
    for ((x, got), want) in inputs.iter().zip(&values).zip(&expected) {
        if got.to_bits() != *want {
            return Err(format!(
                "{name}({x:e}) (bits {:#010x}): {got:e} ({:#010x}), {reference_name} gives {:e} \
                 ({want:#010x})",
                x.to_bits(),
                got.to_bits(),
                f32::from_bits(*want),
            ));
        }
    }
    Ok(())
}

/// Fails unless `kernel` gives the reference's bits for every float (NaNs, infinities,
/// subnormals and both zeros included).
pub fn assert_every_float(kernel: Kernel, name: &str, reference: Reference) {
    let failures: Vec<String> = (0..1u32 << 16)
        .into_par_iter()
        .filter_map(|high| check_block(kernel, name, reference, high).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} blocks of 2^16 floats differ from {}, for example {}",
        failures.len(),
        reference.1,
        failures[0]
    );
}

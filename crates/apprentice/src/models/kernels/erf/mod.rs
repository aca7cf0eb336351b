//! `erf` of many floats at once, giving `libm::erff`'s float for every input.
//!
//! `libm::erff` evaluates one float at a time, choosing one of four rational approximations by
//! the argument's size and calling `expf` twice for arguments above 1.25; in BERT's GELU it was
//! a large share of inference and of fine-tuning (`docs/results/bert-speed.md`). Here eight lanes
//! evaluate, with AVX2, the formula of every branch that one of them takes, and each lane keeps
//! the one libm would have chosen for it.
//! Each formula is libm's, operation for operation and in libm's order, with no fused
//! multiply-add (IEEE single precision rounds every `+ − × ÷` the same way in a vector lane as
//! in a scalar register), so every lane's float is libm's. `tests/erf_kernel.rs` checks that over
//! every one of the 2³² floats, for both widths. Where the CPU has AVX-512 the same formulas run
//! on sixteen lanes (`avx512.rs`), and each pass of 256 floats is first sorted by branch, so
//! that each formula runs only on the floats that take it (GELU's arguments fill most blocks of
//! sixteen from every branch); a slice's last floats go through the eight-lane kernel
//! (`avx2.rs`). Blocks holding a NaN or an infinity, the last few floats of a slice, and
//! machines without AVX2 use `libm::erff` itself.

/// Replaces every value `x` by `erf(x)`, exactly as `libm::erff(x)` computes it: sixteen
/// floats at a time where the CPU has AVX-512, eight where it has AVX2.
pub fn erf_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (and so AVX2), checked just above.
        unsafe { avx512::erf_in_place(values) };
        return;
    }
    erf_in_place_eight_lanes(values);
}

/// [`erf_in_place`] eight floats at a time whatever the CPU has beyond AVX2 (`libm::erff` one at
/// a time without it), so that this kernel can be checked on CPUs that would take the
/// sixteen-lane one.
pub fn erf_in_place_eight_lanes(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { avx2::erf_in_place(values) };
        return;
    }
    for v in values {
        *v = libm::erff(*v);
    }
}

#[cfg(target_arch = "x86_64")]
// The constants are written as libm writes them, ten digits that each round to one float.
#[allow(clippy::excessive_precision)]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

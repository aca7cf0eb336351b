//! `exp` of many floats at once, giving `f32::exp`'s float for every input.
//!
//! `f32::exp` calls the C library's `expf` one float at a time. In attention's softmax and in
//! GELU's backward step that call was a visible share of BERT's inference and fine-tuning
//! (`docs/results/bert-speed.md`), and burn's CPU backend calls it too, so replacing it by any
//! other approximation would move every float of the committed runs. glibc's `expf` (since
//! 2.28; the variant it picks on CPUs with FMA and AVX2) is a short branch-free formula in
//! double precision:
//!
//! - `k + r = x · 32/ln 2` with `k` an integer (rounded by adding `1.5 · 2⁵²`) and `|r| ≤ 1/2`;
//! - `2^(k/32)` from a 32-entry table of `2^(i/32)` with `k/32`'s integer part added to the
//!   exponent bits;
//! - `2^(r/32)` by a cubic, evaluated with three fused multiply-adds;
//! - the product rounded once to single precision.
//!
//! Here every lane runs that formula, operation for operation, on doubles (fused where glibc
//! fuses; a fused multiply-add rounds the same in a vector lane as in a scalar register), so
//! every lane's float is glibc's. Lanes whose magnitude is 88 or more, NaNs and infinities
//! (glibc's overflow, underflow and special cases) and a slice's last floats go through
//! `f32::exp` itself, as does everything on other C libraries and on CPUs without FMA.
//! `tests/exp_kernel.rs` checks the bits over every one of the 2³² floats, for both widths.

/// Replaces every value `x` by `x.exp()`, with the same bits: sixteen floats at a time where
/// the CPU has AVX-512, eight where it has AVX2 and FMA (on glibc; one at a time elsewhere).
pub fn exp_in_place(values: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU has AVX-512F and FMA, checked just above.
        unsafe { avx512::exp_in_place(values) };
        return;
    }
    exp_in_place_eight_lanes(values);
}

/// [`exp_in_place`] eight floats at a time whatever the CPU has beyond AVX2 and FMA (one at a
/// time without them), so that this kernel can be checked on CPUs that would take the
/// sixteen-lane one.
pub fn exp_in_place_eight_lanes(values: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        unsafe { avx2::exp_in_place(values) };
        return;
    }
    for v in values {
        *v = v.exp();
    }
}

/// The formula's constants, as bits of doubles: glibc's (its `__exp2f_data`, from Arm's
/// optimized-routines `expf`), which every lane must use to give glibc's floats.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod formula {
    /// `32 / ln 2`.
    pub(super) const INV_LN2_N: u64 = 0x4047_1547_652b_82fe;
    /// `1.5 · 2⁵²`: adding it rounds a double below 2⁵¹ in magnitude to an integer, which then
    /// sits in the low bits.
    pub(super) const SHIFT: u64 = 0x4338_0000_0000_0000;
    /// The cubic `1 + C2·r + C1·r² + C0·r³ ≈ 2^(r/32)`.
    pub(super) const C0: u64 = 0x3ebc_6af8_4b91_2394;
    pub(super) const C1: u64 = 0x3f2e_bfce_50fa_c4f3;
    pub(super) const C2: u64 = 0x3f96_2e42_ff0c_52d6;
    /// Entry `i` is the bits of `2^(i/32)` rounded to a double, less `i << 47`, so that adding
    /// `k << 47` for any `k ≡ i (mod 32)` gives the bits of `2^(k/32)`'s table value
    /// (`bench/reference/exp_table.py` derives these from exact arithmetic).
    pub(super) const TABLE: [u64; 32] = [
        0x3ff0000000000000,
        0x3fefd9b0d3158574,
        0x3fefb5586cf9890f,
        0x3fef9301d0125b51,
        0x3fef72b83c7d517b,
        0x3fef54873168b9aa,
        0x3fef387a6e756238,
        0x3fef1e9df51fdee1,
        0x3fef06fe0a31b715,
        0x3feef1a7373aa9cb,
        0x3feedea64c123422,
        0x3feece086061892d,
        0x3feebfdad5362a27,
        0x3feeb42b569d4f82,
        0x3feeab07dd485429,
        0x3feea47eb03a5585,
        0x3feea09e667f3bcd,
        0x3fee9f75e8ec5f74,
        0x3feea11473eb0187,
        0x3feea589994cce13,
        0x3feeace5422aa0db,
        0x3feeb737b0cdc5e5,
        0x3feec49182a3f090,
        0x3feed503b23e255d,
        0x3feee89f995ad3ad,
        0x3feeff76f2fb5e47,
        0x3fef199bdd85529c,
        0x3fef3720dcef9069,
        0x3fef5818dcfba487,
        0x3fef7c97337b9b5f,
        0x3fefa4afa2a490da,
        0x3fefd0765b6e4540,
    ];
    /// Bits 20 to 30 of a float at or above which glibc leaves the formula (`|x| ≥ 88`, NaN,
    /// infinity).
    pub(super) const SPECIAL_TOP: i32 = 0x42b;
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod avx2 {
    use super::formula::*;
    use std::arch::x86_64::*;

    /// `exp` of every value: eight at a time where no lane is special, `f32::exp` elsewhere.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_in_place(values: &mut [f32]) {
        let mut blocks = values.chunks_exact_mut(8);
        for block in &mut blocks {
            // SAFETY: `block` is exactly eight floats; unaligned loads and stores are allowed.
            let x = unsafe { _mm256_loadu_ps(block.as_ptr()) };
            let top = _mm256_and_si256(
                _mm256_srli_epi32::<20>(_mm256_castps_si256(x)),
                _mm256_set1_epi32(0x7ff),
            );
            let special = _mm256_cmpgt_epi32(top, _mm256_set1_epi32(SPECIAL_TOP - 1));
            if _mm256_movemask_epi8(special) != 0 {
                for v in block.iter_mut() {
                    *v = v.exp();
                }
                continue;
            }
            let low = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
            let high = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)));
            let y = _mm256_set_m128(_mm256_cvtpd_ps(high), _mm256_cvtpd_ps(low));
            // SAFETY: as for the load.
            unsafe { _mm256_storeu_ps(block.as_mut_ptr(), y) };
        }
        for v in blocks.into_remainder() {
            *v = v.exp();
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn splat(bits: u64) -> __m256d {
        _mm256_castsi256_pd(_mm256_set1_epi64x(bits as i64))
    }

    /// glibc's formula on four doubles that came from floats of magnitude below 88.
    #[target_feature(enable = "avx2,fma")]
    fn exp4(x: __m256d) -> __m256d {
        let inv_ln2_n = splat(INV_LN2_N);
        let shift = splat(SHIFT);
        let kd = _mm256_fmadd_pd(inv_ln2_n, x, shift);
        let ki = _mm256_castpd_si256(kd);
        let kd = _mm256_sub_pd(kd, shift);
        let r = _mm256_fmsub_pd(inv_ln2_n, x, kd);
        let index = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
        // SAFETY: every index is below 32, the table's length.
        let entry = unsafe { _mm256_i64gather_epi64::<8>(TABLE.as_ptr().cast::<i64>(), index) };
        let s = _mm256_castsi256_pd(_mm256_add_epi64(entry, _mm256_slli_epi64::<47>(ki)));
        let z = _mm256_fmadd_pd(splat(C0), r, splat(C1));
        let r2 = _mm256_mul_pd(r, r);
        let y = _mm256_fmadd_pd(r, splat(C2), _mm256_set1_pd(1.0));
        let y = _mm256_fmadd_pd(z, r2, y);
        _mm256_mul_pd(y, s)
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
mod avx512 {
    use super::formula::*;
    use std::arch::x86_64::*;

    /// `exp` of every value: sixteen at a time where no lane is special, the eight-lane kernel
    /// for a slice's last floats.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn exp_in_place(values: &mut [f32]) {
        let mut blocks = values.chunks_exact_mut(16);
        for block in &mut blocks {
            // SAFETY: `block` is exactly sixteen floats; unaligned loads and stores are allowed.
            let x = unsafe { _mm512_loadu_ps(block.as_ptr()) };
            let top = _mm512_and_si512(
                _mm512_srli_epi32::<20>(_mm512_castps_si512(x)),
                _mm512_set1_epi32(0x7ff),
            );
            if _mm512_cmpge_epi32_mask(top, _mm512_set1_epi32(SPECIAL_TOP)) != 0 {
                for v in block.iter_mut() {
                    *v = v.exp();
                }
                continue;
            }
            let halves = _mm512_castps_pd(x);
            let low = _mm256_castpd_ps(_mm512_castpd512_pd256(halves));
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(halves));
            let low = _mm512_cvtpd_ps(exp8(_mm512_cvtps_pd(low)));
            let high = _mm512_cvtpd_ps(exp8(_mm512_cvtps_pd(high)));
            let y = _mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(_mm256_castps_pd(low)),
                _mm256_castps_pd(high),
            );
            // SAFETY: as for the load.
            unsafe { _mm512_storeu_ps(block.as_mut_ptr(), _mm512_castpd_ps(y)) };
        }
        // SAFETY: the CPU has AVX2 and FMA along with AVX-512F.
        unsafe { super::avx2::exp_in_place(blocks.into_remainder()) };
    }

    #[target_feature(enable = "avx512f,fma")]
    fn splat(bits: u64) -> __m512d {
        _mm512_castsi512_pd(_mm512_set1_epi64(bits as i64))
    }

    /// glibc's formula on eight doubles that came from floats of magnitude below 88.
    #[target_feature(enable = "avx512f,fma")]
    fn exp8(x: __m512d) -> __m512d {
        let inv_ln2_n = splat(INV_LN2_N);
        let shift = splat(SHIFT);
        let kd = _mm512_fmadd_pd(inv_ln2_n, x, shift);
        let ki = _mm512_castpd_si512(kd);
        let kd = _mm512_sub_pd(kd, shift);
        let r = _mm512_fmsub_pd(inv_ln2_n, x, kd);
        // The table is four registers of eight entries: bits 0 to 3 of the index pick within a
        // pair of registers, bit 4 picks the pair.
        // SAFETY: `TABLE` holds 32 entries, four unaligned loads of eight.
        let [t0, t1, t2, t3] =
            [0, 8, 16, 24].map(|at| unsafe { _mm512_loadu_si512(TABLE[at..].as_ptr().cast()) });
        let low_half = _mm512_permutex2var_epi64(t0, ki, t1);
        let high_half = _mm512_permutex2var_epi64(t2, ki, t3);
        let upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
        let entry = _mm512_mask_blend_epi64(upper, low_half, high_half);
        let s = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64::<47>(ki)));
        let z = _mm512_fmadd_pd(splat(C0), r, splat(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(r, splat(C2), _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        _mm512_mul_pd(y, s)
    }
}

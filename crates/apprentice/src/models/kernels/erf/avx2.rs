//! The eight-lane kernel (AVX2): libm's formulas on `__m256`, float masks for the branches.

use std::arch::x86_64::*;

// libm 0.2.16's constants (`erff.rs`, `expf.rs`), from FreeBSD's s_erff.c and e_expf.c.
pub(super) const ERX: f32 = 8.4506291151e-01;
pub(super) const EFX8: f32 = 1.0270333290e+00;
pub(super) const PP: [f32; 5] = [
    1.2837916613e-01,
    -3.2504209876e-01,
    -2.8481749818e-02,
    -5.7702702470e-03,
    -2.3763017452e-05,
];
pub(super) const QQ: [f32; 6] = [
    1.0,
    3.9791721106e-01,
    6.5022252500e-02,
    5.0813062117e-03,
    1.3249473704e-04,
    -3.9602282413e-06,
];
pub(super) const PA: [f32; 7] = [
    -2.3621185683e-03,
    4.1485610604e-01,
    -3.7220788002e-01,
    3.1834661961e-01,
    -1.1089469492e-01,
    3.5478305072e-02,
    -2.1663755178e-03,
];
pub(super) const QA: [f32; 7] = [
    1.0,
    1.0642088205e-01,
    5.4039794207e-01,
    7.1828655899e-02,
    1.2617121637e-01,
    1.3637083583e-02,
    1.1984500103e-02,
];
pub(super) const RA: [f32; 8] = [
    -9.8649440333e-03,
    -6.9385856390e-01,
    -1.0558626175e+01,
    -6.2375331879e+01,
    -1.6239666748e+02,
    -1.8460508728e+02,
    -8.1287437439e+01,
    -9.8143291473e+00,
];
pub(super) const SA: [f32; 9] = [
    1.0,
    1.9651271820e+01,
    1.3765776062e+02,
    4.3456588745e+02,
    6.4538726807e+02,
    4.2900814819e+02,
    1.0863500214e+02,
    6.5702495575e+00,
    -6.0424413532e-02,
];
pub(super) const RB: [f32; 7] = [
    -9.8649431020e-03,
    -7.9928326607e-01,
    -1.7757955551e+01,
    -1.6063638306e+02,
    -6.3756646729e+02,
    -1.0250950928e+03,
    -4.8351919556e+02,
];
pub(super) const SB: [f32; 8] = [
    1.0,
    3.0338060379e+01,
    3.2579251099e+02,
    1.5367296143e+03,
    3.1998581543e+03,
    2.5530502930e+03,
    4.7452853394e+02,
    -2.2440952301e+01,
];
pub(super) const LN2_HI: f32 = 6.9314575195e-01;
pub(super) const LN2_LO: f32 = 1.4286067653e-06;
pub(super) const INV_LN2: f32 = 1.4426950216e+00;
pub(super) const P1: f32 = 1.6666625440e-1;
pub(super) const P2: f32 = -2.7667332906e-3;

/// `erf` of every value: eight at a time where a block is finite, libm's elsewhere.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn erf_in_place(values: &mut [f32]) {
    let mut blocks = values.chunks_exact_mut(8);
    for block in &mut blocks {
        // SAFETY: `block` is exactly eight floats; unaligned loads and stores are allowed.
        let x = unsafe { _mm256_loadu_ps(block.as_ptr()) };
        let magnitude = _mm256_and_si256(_mm256_castps_si256(x), int(0x7fff_ffff));
        // A NaN or an infinity anywhere: libm's special cases, one lane at a time.
        let special = _mm256_cmpgt_epi32(magnitude, int(0x7f7f_ffff));
        if _mm256_movemask_epi8(special) != 0 {
            for v in block.iter_mut() {
                *v = libm::erff(*v);
            }
            continue;
        }
        // SAFETY: as for the load.
        unsafe { _mm256_storeu_ps(block.as_mut_ptr(), erf8(x, magnitude)) };
    }
    for v in blocks.into_remainder() {
        *v = libm::erff(*v);
    }
}

#[target_feature(enable = "avx2")]
fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

#[target_feature(enable = "avx2")]
fn int(v: i32) -> __m256i {
    _mm256_set1_epi32(v)
}

/// One-word names for the four roundings, so that the formulas below read as libm's.
macro_rules! arithmetic {
    ($($name:ident => $intrinsic:ident),* $(,)?) => {$(
        #[target_feature(enable = "avx2")]
        fn $name(a: __m256, b: __m256) -> __m256 {
            $intrinsic(a, b)
        }
    )*};
}
arithmetic!(
    add => _mm256_add_ps,
    sub => _mm256_sub_ps,
    mul => _mm256_mul_ps,
    div => _mm256_div_ps,
);

/// Lanes where the (non-negative) integer `a` is below `bound`, as a float mask.
#[target_feature(enable = "avx2")]
fn below(a: __m256i, bound: i32) -> __m256 {
    _mm256_castsi256_ps(_mm256_cmpgt_epi32(int(bound), a))
}

/// `where_true` in the lanes of `mask`, `otherwise` elsewhere.
#[target_feature(enable = "avx2")]
fn select(mask: __m256, where_true: __m256, otherwise: __m256) -> __m256 {
    _mm256_blendv_ps(otherwise, where_true, mask)
}

/// `c[0] + s·(c[1] + s·(c[2] + … + s·c[n]))`, evaluated innermost first as libm writes it.
#[target_feature(enable = "avx2")]
fn horner(s: __m256, c: &[f32]) -> __m256 {
    let (last, rest) = c.split_last().expect("a polynomial has coefficients");
    let mut t = splat(*last);
    for &coefficient in rest.iter().rev() {
        t = add(splat(coefficient), mul(s, t));
    }
    t
}

/// libm's `erff` on eight finite floats; `magnitude` is their bits without the sign.
#[target_feature(enable = "avx2")]
fn erf8(x: __m256, magnitude: __m256i) -> __m256 {
    let sign = _mm256_castsi256_ps(_mm256_andnot_si256(
        int(0x7fff_ffff),
        _mm256_castps_si256(x),
    ));
    let ax = _mm256_castsi256_ps(magnitude);

    let is_small = below(magnitude, 0x3f58_0000);
    let below_far = below(magnitude, 0x3fa0_0000);
    let below_six = below(magnitude, 0x40c0_0000);
    let is_near = _mm256_andnot_ps(is_small, below_far);
    let is_far = _mm256_andnot_ps(below_far, below_six);
    // Only the branches some lane takes are evaluated: GELU's inputs often fill a block
    // from one or two of them.
    let taken = |mask: __m256| _mm256_movemask_ps(mask) != 0;
    let zero = _mm256_setzero_ps();
    let small = if taken(is_small) {
        small_erf(x, magnitude)
    } else {
        zero
    };
    let erfc_near = if taken(is_near) { near_erfc(ax) } else { zero };
    let erfc_far = if taken(is_far) {
        far_erfc(ax, magnitude)
    } else {
        zero
    };
    let erfc = select(below_far, erfc_near, erfc_far);
    let one_minus = sub(splat(1.0), erfc);
    // |x| ≥ 6: 1 − 2⁻¹²⁰.
    let one_minus = select(
        below_six,
        one_minus,
        sub(splat(1.0), splat(f32::from_bits(0x0380_0000))),
    );
    // These branches compute a magnitude; libm negates it for negative x.
    let large = _mm256_or_ps(one_minus, sign);
    select(is_small, small, large)
}

/// erf for |x| < 0.84375: `0.125 · (8x + efx8 · x)` below 2⁻²⁸, `x + x · r/s` with
/// `z = x²` above.
#[target_feature(enable = "avx2")]
fn small_erf(x: __m256, magnitude: __m256i) -> __m256 {
    let tiny = mul(splat(0.125), add(mul(splat(8.0), x), mul(splat(EFX8), x)));
    let z = mul(x, x);
    let small = add(x, mul(x, div(horner(z, &PP), horner(z, &QQ))));
    select(below(magnitude, 0x3180_0000), tiny, small)
}

/// erfc for 0.84375 ≤ |x| < 1.25: `1 − erx − p/q` with `s = |x| − 1`.
#[target_feature(enable = "avx2")]
fn near_erfc(ax: __m256) -> __m256 {
    let s = sub(ax, splat(1.0));
    sub(
        sub(splat(1.0), splat(ERX)),
        div(horner(s, &PA), horner(s, &QA)),
    )
}

/// erfc for 1.25 ≤ |x| < 6: `exp(−z² − 0.5625) · exp((z − |x|)(z + |x|) + R/S) / |x|`, `z`
/// being |x| with its last 13 bits cleared.
#[target_feature(enable = "avx2")]
fn far_erfc(ax: __m256, magnitude: __m256i) -> __m256 {
    let s = div(splat(1.0), mul(ax, ax));
    let below_inverse_035 = below(magnitude, 0x4036_db6d);
    let r = select(below_inverse_035, horner(s, &RA), horner(s, &RB));
    let big_s = select(below_inverse_035, horner(s, &SA), horner(s, &SB));
    let z = _mm256_castsi256_ps(_mm256_and_si256(magnitude, int(0xffff_e000_u32 as i32)));
    let first = expf8(sub(mul(_mm256_xor_ps(z, splat(-0.0)), z), splat(0.5625)));
    let second = expf8(add(mul(sub(z, ax), add(z, ax)), div(r, big_s)));
    div(mul(first, second), ax)
}

/// libm's `expf` on eight floats of magnitude below 87.3 (no overflow or underflow case).
#[target_feature(enable = "avx2")]
fn expf8(x: __m256) -> __m256 {
    let bits = _mm256_castps_si256(x);
    let magnitude = _mm256_and_si256(bits, int(0x7fff_ffff));
    let negative = _mm256_castsi256_ps(_mm256_srai_epi32(bits, 31));
    // k = round(x / ln 2) above 1.5 ln 2, ±1 above 0.5 ln 2, 0 below.
    let half = select(negative, splat(-0.5), splat(0.5));
    let k_far = _mm256_cvttps_epi32(add(mul(splat(INV_LN2), x), half));
    let k_near = _mm256_sub_epi32(
        int(1),
        _mm256_and_si256(_mm256_srai_epi32(bits, 31), int(2)),
    );
    let k = _mm256_blendv_epi8(
        _mm256_blendv_epi8(
            int(0),
            k_near,
            _mm256_cmpgt_epi32(magnitude, int(0x3eb1_7218)),
        ),
        k_far,
        _mm256_cmpgt_epi32(magnitude, int(0x3f85_1592)),
    );
    // With k = 0 these give hi = x, lo = 0 and x unchanged, as libm's k = 0 branch has it.
    let kf = _mm256_cvtepi32_ps(k);
    let hi = sub(x, mul(kf, splat(LN2_HI)));
    let lo = mul(kf, splat(LN2_LO));
    let r = sub(hi, lo);
    let rr = mul(r, r);
    let c = sub(r, mul(rr, add(splat(P1), mul(rr, splat(P2)))));
    let y = add(
        splat(1.0),
        add(sub(div(mul(r, c), sub(splat(2.0), c)), lo), hi),
    );
    // scalbnf(y, k) for these k is one exact product by 2^k.
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, int(127)), 23));
    let scaled = mul(y, scale);
    // |x| ≤ 2⁻¹⁴: 1 + x.
    select(below(magnitude, 0x3900_0001), add(splat(1.0), x), scaled)
}

//! The eight-lane kernel's formulas on sixteen lanes: the same operations in the same
//! order, lane masks where it has float masks, and each branch run only on its own floats.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::avx2::{EFX8, ERX, INV_LN2, LN2_HI, LN2_LO, P1, P2, PA, PP, QA, QQ, RA, RB, SA, SB};

/// Floats sorted per pass: the branch buffers then stay in the first-level cache.
const PASS: usize = 256;

/// libm's branches by `|x|`, each a run of its own floats: below 0.84375, below 1.25, below
/// 1/0.35 and below 6 (the last two are `far_erfc` with its two pairs of polynomials).
const BRANCHES: usize = 4;

/// Each branch's floats, with room for one block's worth of overhang.
type Sorted = [[f32; PASS + 16]; BRANCHES];

thread_local! {
    /// Each thread's branch buffers, zeroed once rather than per call: what a pass leaves
    /// beyond its counts is only ever read into lanes whose results are dropped.
    static SORTED: RefCell<Sorted> = const { RefCell::new([[0.0; PASS + 16]; BRANCHES]) };
}

/// `erf` of every value: sixteen at a time where a block is finite, libm's elsewhere, the
/// remainder through the eight-lane kernel.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn erf_in_place(values: &mut [f32]) {
    let whole = values.len() / 16 * 16;
    let (blocks, remainder) = values.split_at_mut(whole);
    SORTED.with_borrow_mut(|sorted| {
        for pass in blocks.chunks_mut(PASS) {
            erf_pass(pass, sorted);
        }
    });
    // SAFETY: AVX-512F implies AVX2.
    unsafe { super::avx2::erf_in_place(remainder) };
}

/// `erf` of up to [`PASS`] floats, a multiple of sixteen.
///
/// GELU's arguments fill most blocks of sixteen from every branch, and a block that runs each
/// branch's formula on all its lanes pays for all four. So the floats are first sorted by
/// branch, in order (`compress`); each branch's formula then runs only on its own floats, and
/// the results are put back in place (`expand`). Every float still goes through exactly the
/// operations of its branch, so the result is the same bits as lane by lane.
#[target_feature(enable = "avx512f")]
fn erf_pass(values: &mut [f32], sorted: &mut Sorted) {
    debug_assert!(values.len() <= PASS && values.len().is_multiple_of(16));
    let mut counts = [0usize; BRANCHES];
    // Per block, the lanes of each branch, and whether libm took the whole block.
    let mut masks = [[0 as __mmask16; BRANCHES]; PASS / 16];
    let mut by_libm = [false; PASS / 16];
    let blocks = values.chunks_exact_mut(16).zip(masks.iter_mut());
    for ((block, masks), by_libm) in blocks.zip(by_libm.iter_mut()) {
        // SAFETY: `block` is exactly sixteen floats; unaligned loads are allowed.
        let x = unsafe { _mm512_loadu_ps(block.as_ptr()) };
        let magnitude = _mm512_and_si512(bits(x), int(0x7fff_ffff));
        // A NaN or an infinity anywhere: libm's special cases, one lane at a time.
        if _mm512_cmpgt_epi32_mask(magnitude, int(0x7f7f_ffff)) != 0 {
            for v in block.iter_mut() {
                *v = libm::erff(*v);
            }
            *by_libm = true;
            continue;
        }
        let is_small = below(magnitude, 0x3f58_0000);
        let below_far = below(magnitude, 0x3fa0_0000);
        let below_inverse_035 = below(magnitude, 0x4036_db6d);
        let below_six = below(magnitude, 0x40c0_0000);
        *masks = [
            is_small,
            !is_small & below_far,
            !below_far & below_inverse_035,
            !below_inverse_035 & below_six,
        ];
        for ((run, count), &mask) in sorted.iter_mut().zip(counts.iter_mut()).zip(masks.iter()) {
            // SAFETY: `count` ≤ PASS − 16 before this block's floats, so sixteen fit.
            unsafe {
                _mm512_storeu_ps(
                    run[*count..].as_mut_ptr(),
                    _mm512_maskz_compress_ps(mask, x),
                )
            };
            *count += mask.count_ones() as usize;
        }
    }
    let formulas: [fn(__m512) -> __m512; BRANCHES] = [
        small_erf,
        |x| large_erf(x, near_erfc(absolute(x))),
        |x| large_erf(x, far_erfc(absolute(x), &RA, &SA)),
        |x| large_erf(x, far_erfc(absolute(x), &RB, &SB)),
    ];
    for ((run, &count), formula) in sorted.iter_mut().zip(&counts).zip(formulas) {
        for chunk in run[..count.next_multiple_of(16)].chunks_exact_mut(16) {
            // SAFETY: sixteen floats, unaligned loads and stores allowed. Lanes past `count`
            // hold leftovers whose results are never read.
            unsafe {
                let y = formula(_mm512_loadu_ps(chunk.as_ptr()));
                _mm512_storeu_ps(chunk.as_mut_ptr(), y);
            }
        }
    }
    let mut taken = [0usize; BRANCHES];
    let blocks = values.chunks_exact_mut(16).zip(&masks);
    for ((block, masks), by_libm) in blocks.zip(by_libm) {
        if by_libm {
            continue;
        }
        // SAFETY: as above.
        let x = unsafe { _mm512_loadu_ps(block.as_ptr()) };
        // |x| ≥ 6: ±(1 − 2⁻¹²⁰), in the lanes no branch takes.
        let mut y = large_erf(x, splat(f32::from_bits(0x0380_0000)));
        for ((run, taken), &mask) in sorted.iter().zip(taken.iter_mut()).zip(masks) {
            // SAFETY: `taken` + 16 stays inside the run's PASS + 16 floats.
            let results = unsafe { _mm512_loadu_ps(run[*taken..].as_ptr()) };
            y = _mm512_mask_expand_ps(y, mask, results);
            *taken += mask.count_ones() as usize;
        }
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(block.as_mut_ptr(), y) };
    }
}

/// `|x|`.
#[target_feature(enable = "avx512f")]
fn absolute(x: __m512) -> __m512 {
    float(_mm512_and_si512(bits(x), int(0x7fff_ffff)))
}

/// erf for `|x| ≥ 0.84375` from `erfc(|x|)`: libm's `1 − erfc`, negated for negative `x`.
#[target_feature(enable = "avx512f")]
fn large_erf(x: __m512, erfc: __m512) -> __m512 {
    let sign = _mm512_andnot_si512(int(0x7fff_ffff), bits(x));
    float(_mm512_or_si512(bits(sub(splat(1.0), erfc)), sign))
}

#[target_feature(enable = "avx512f")]
fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

#[target_feature(enable = "avx512f")]
fn int(v: i32) -> __m512i {
    _mm512_set1_epi32(v)
}

/// Reinterprets floats as bits, for the sign operations AVX-512F has only on integers.
#[target_feature(enable = "avx512f")]
fn bits(v: __m512) -> __m512i {
    _mm512_castps_si512(v)
}

/// Reinterprets bits as floats.
#[target_feature(enable = "avx512f")]
fn float(v: __m512i) -> __m512 {
    _mm512_castsi512_ps(v)
}

/// One-word names for the four roundings, so that the formulas below read as libm's.
macro_rules! arithmetic {
    ($($name:ident => $intrinsic:ident),* $(,)?) => {$(
        #[target_feature(enable = "avx512f")]
        fn $name(a: __m512, b: __m512) -> __m512 {
            $intrinsic(a, b)
        }
    )*};
}
arithmetic!(
    add => _mm512_add_ps,
    sub => _mm512_sub_ps,
    mul => _mm512_mul_ps,
    div => _mm512_div_ps,
);

/// Lanes where the (non-negative) integer `a` is below `bound`.
#[target_feature(enable = "avx512f")]
fn below(a: __m512i, bound: i32) -> __mmask16 {
    _mm512_cmplt_epi32_mask(a, int(bound))
}

/// `where_true` in the lanes of `mask`, `otherwise` elsewhere.
#[target_feature(enable = "avx512f")]
fn select(mask: __mmask16, where_true: __m512, otherwise: __m512) -> __m512 {
    _mm512_mask_blend_ps(mask, otherwise, where_true)
}

/// `c[0] + s·(c[1] + s·(c[2] + … + s·c[n]))`, evaluated innermost first as libm writes it.
#[target_feature(enable = "avx512f")]
fn horner(s: __m512, c: &[f32]) -> __m512 {
    let (last, rest) = c.split_last().expect("a polynomial has coefficients");
    let mut t = splat(*last);
    for &coefficient in rest.iter().rev() {
        t = add(splat(coefficient), mul(s, t));
    }
    t
}

/// erf for |x| < 0.84375 (see the eight-lane `small_erf`).
#[target_feature(enable = "avx512f")]
fn small_erf(x: __m512) -> __m512 {
    let magnitude = _mm512_and_si512(bits(x), int(0x7fff_ffff));
    let tiny = mul(splat(0.125), add(mul(splat(8.0), x), mul(splat(EFX8), x)));
    let z = mul(x, x);
    let small = add(x, mul(x, div(horner(z, &PP), horner(z, &QQ))));
    select(below(magnitude, 0x3180_0000), tiny, small)
}

/// erfc for 0.84375 ≤ |x| < 1.25 (see the eight-lane `near_erfc`).
#[target_feature(enable = "avx512f")]
fn near_erfc(ax: __m512) -> __m512 {
    let s = sub(ax, splat(1.0));
    sub(
        sub(splat(1.0), splat(ERX)),
        div(horner(s, &PA), horner(s, &QA)),
    )
}

/// erfc for 1.25 ≤ |x| < 6 (see the eight-lane `far_erfc`), with the polynomials `r` and `big_s`
/// of the range the floats lie in (`RA`, `SA` below 1/0.35, `RB`, `SB` above).
#[target_feature(enable = "avx512f")]
fn far_erfc(ax: __m512, r: &[f32], big_s: &[f32]) -> __m512 {
    let s = div(splat(1.0), mul(ax, ax));
    let r = horner(s, r);
    let big_s = horner(s, big_s);
    let z = float(_mm512_and_si512(bits(ax), int(0xffff_e000_u32 as i32)));
    let minus_z = float(_mm512_xor_si512(bits(z), int(0x8000_0000_u32 as i32)));
    let first = expf16(sub(mul(minus_z, z), splat(0.5625)));
    let second = expf16(add(mul(sub(z, ax), add(z, ax)), div(r, big_s)));
    div(mul(first, second), ax)
}

/// libm's `expf` on sixteen floats of magnitude below 87.3 (see the eight-lane `expf8`).
#[target_feature(enable = "avx512f")]
fn expf16(x: __m512) -> __m512 {
    let bits = bits(x);
    let magnitude = _mm512_and_si512(bits, int(0x7fff_ffff));
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    // k = round(x / ln 2) above 1.5 ln 2, ±1 above 0.5 ln 2, 0 below.
    let half = select(negative, splat(-0.5), splat(0.5));
    let k_far = _mm512_cvttps_epi32(add(mul(splat(INV_LN2), x), half));
    let k_near = _mm512_sub_epi32(
        int(1),
        _mm512_and_si512(_mm512_srai_epi32(bits, 31), int(2)),
    );
    let k = _mm512_mask_blend_epi32(
        _mm512_cmpgt_epi32_mask(magnitude, int(0x3f85_1592)),
        _mm512_mask_blend_epi32(
            _mm512_cmpgt_epi32_mask(magnitude, int(0x3eb1_7218)),
            int(0),
            k_near,
        ),
        k_far,
    );
    // With k = 0 these give hi = x, lo = 0 and x unchanged, as libm's k = 0 branch has it.
    let kf = _mm512_cvtepi32_ps(k);
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
    let scale = float(_mm512_slli_epi32(_mm512_add_epi32(k, int(127)), 23));
    let scaled = mul(y, scale);
    // |x| ≤ 2⁻¹⁴: 1 + x.
    select(below(magnitude, 0x3900_0001), add(splat(1.0), x), scaled)
}

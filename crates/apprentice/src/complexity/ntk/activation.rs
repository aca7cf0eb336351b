//! The activations of the fast path and their derivatives, on `f64`, with the error function
//! GELU needs. Kept apart because they are scalar functions with their own reference tests,
//! shared by the convolution blocks and the dense layers.

use crate::models::Activation;

/// The activation and its derivative at `z`.
pub(super) fn activate(kind: Activation, z: f64) -> (f64, f64) {
    match kind {
        Activation::Relu => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.0, 0.0)
            }
        }
        Activation::LeakyRelu => {
            if z > 0.0 {
                (z, 1.0)
            } else {
                (0.01 * z, 0.01)
            }
        }
        Activation::Tanh => {
            let t = z.tanh();
            (t, 1.0 - t * t)
        }
        Activation::Gelu => {
            let cdf = 0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2));
            let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (z * cdf, cdf + z * density)
        }
    }
}

/// The error function to about 1e-15: a series of positive terms (no cancellation) below 3,
/// Laplace's continued fraction for `erfc` above.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let value = if a < 3.0 {
        // erf(a) = 2/√π · e^{−a²} · Σ 2ⁿ a^{2n+1} / (1·3·…·(2n+1)).
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while term > 1e-17 * sum {
            n += 1.0;
            term *= 2.0 * a * a / (2.0 * n + 1.0);
            sum += term;
        }
        std::f64::consts::FRAC_2_SQRT_PI * (-a * a).exp() * sum
    } else {
        let mut t = a;
        for k in (1..=60).rev() {
            t = a + (k as f64 / 2.0) / t;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * t)
    };
    value.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.9, 0.999_958_902_121_900_5),
            (3.0, 0.999_977_909_503_001_4),
            (4.5, 0.999_999_999_803_383_9),
            (-1.0, -0.842_700_792_949_714_9),
        ];
        for (x, expected) in cases {
            assert!((erf(x) - expected).abs() < 1e-14, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn activation_slopes_match_finite_differences() {
        for kind in [
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            for z in [-2.3, -0.4, 0.3, 1.7] {
                let h = 1e-6;
                let numeric = (activate(kind, z + h).0 - activate(kind, z - h).0) / (2.0 * h);
                assert!(
                    (numeric - activate(kind, z).1).abs() < 1e-7,
                    "{kind:?} at {z}"
                );
            }
        }
    }
}

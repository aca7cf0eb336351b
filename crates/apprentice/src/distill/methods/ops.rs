//! Numerical building blocks shared by the methods, written so that their gradients stay finite
//! at the points where the textbook formulas have none (zero vectors, saturated softmax).

use burn::tensor::Tensor;

use super::MethodError;

/// Smallest norm a vector is divided by, as in PyTorch's `F.normalize`.
pub(crate) const NORM_FLOOR: f64 = 1e-12;

/// The L2 norm along `dim` (kept as a size-1 axis), never below `floor`.
///
/// The floor is applied to the squared norm before the square root: `max(√s, f) = √max(s, f²)`
/// gives the same values, but the clamp stops the gradient before the square root, whose
/// derivative at zero is infinite (an all-zero feature would otherwise turn into NaN).
pub(crate) fn l2_norm<const D: usize>(x: Tensor<D>, dim: usize, floor: f64) -> Tensor<D> {
    x.square().sum_dim(dim).clamp_min(floor * floor).sqrt()
}

/// PyTorch's `smooth_l1_loss` with β = 1, element-wise: x²/2 where |x| < 1, |x| − 1/2 elsewhere.
pub(crate) fn smooth_l1<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let magnitude = x.abs();
    magnitude.clone().clamp_max(1.0).square() * 0.5 + (magnitude - 1.0).clamp_min(0.0)
}

/// Sums one-element losses; `None` for an empty list.
pub(crate) fn sum_all(terms: Vec<Tensor<1>>) -> Option<Tensor<1>> {
    terms.into_iter().reduce(|total, term| total + term)
}

/// Errors unless `value` is finite and > 0.
pub(crate) fn positive(method: &'static str, key: &str, value: f64) -> Result<(), MethodError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(MethodError::Setting {
            method,
            detail: format!("{key} must be a finite number > 0, got {value}"),
        })
    }
}

/// Errors unless `value` is finite and ≥ 0.
pub(crate) fn non_negative(method: &'static str, key: &str, value: f64) -> Result<(), MethodError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(MethodError::Setting {
            method,
            detail: format!("{key} must be a finite number ≥ 0, got {value}"),
        })
    }
}

/// Errors unless the batch has at least `needed` samples.
pub(crate) fn enough_samples(
    method: &'static str,
    got: usize,
    needed: usize,
    why: &'static str,
) -> Result<(), MethodError> {
    if got >= needed {
        Ok(())
    } else {
        Err(MethodError::BatchTooSmall {
            method,
            needed,
            got,
            why,
        })
    }
}

/// Errors unless the student and teacher shapes are equal.
pub(crate) fn same_shape<const D: usize>(
    method: &'static str,
    what: &str,
    student: [usize; D],
    teacher: [usize; D],
) -> Result<(), MethodError> {
    if student == teacher {
        Ok(())
    } else {
        Err(MethodError::Shape {
            method,
            detail: format!(
                "student {what} have shape {student:?} but teacher {what} have shape {teacher:?}"
            ),
        })
    }
}

/// Errors unless both tensors hold the same number of samples.
pub(crate) fn same_batch(
    method: &'static str,
    student: usize,
    teacher: usize,
) -> Result<(), MethodError> {
    if student == teacher {
        Ok(())
    } else {
        Err(MethodError::Shape {
            method,
            detail: format!(
                "the student has {student} samples but the teacher has {teacher}; both must see the same batch"
            ),
        })
    }
}

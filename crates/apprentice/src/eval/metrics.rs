//! Classification metrics on row-major logits.
//!
//! Conventions shared by every function here:
//!
//! * `logits` holds `n * num_classes` values, one row of `num_classes` per sample. A trailing
//!   partial row is ignored, and `num_classes == 0` means there are no rows.
//! * Functions that take a second per-sample input (labels, teacher logits) walk both in
//!   step and stop at the shorter one; callers pass matching lengths, which debug builds
//!   assert.
//! * All arithmetic is `f64`, softmax goes through a max-shifted log-sum-exp, so logits of
//!   magnitude 1e4 and beyond give finite results, and every sum runs in sample order, so
//!   results are bit-for-bit deterministic.
//! * With no samples a metric is `0.0` rather than the `NaN` of a 0/0 mean, so empty splits
//!   cannot poison a results file.
//! * A label must be below `num_classes` (data loaders enforce this). An out-of-range label
//!   is never a correct prediction, and has probability zero, so its NLL is `+∞`.

use serde::{Deserialize, Serialize};

/// Number of equal-width confidence bins used for the reported expected calibration error.
///
/// Fifteen is the value of Guo et al. (2017), "On Calibration of Modern Neural Networks",
/// which most later work copies, so reported numbers stay comparable.
pub const ECE_BINS: usize = 15;

/// Splits `logits` into rows of `num_classes` values.
fn rows(logits: &[f32], num_classes: usize) -> std::slice::ChunksExact<'_, f32> {
    // `chunks_exact` rejects a zero width; with no classes there is nothing to split.
    let data = if num_classes == 0 { &[][..] } else { logits };
    data.chunks_exact(num_classes.max(1))
}

/// Index of the largest value of `row`, the lowest such index on ties (0 for an empty row).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate().skip(1) {
        // Strictly greater keeps the first of equal values, matching numpy's argmax.
        if value > row[best] {
            best = index;
        }
    }
    best
}

/// True when `temperature` can divide logits meaningfully.
fn valid_temperature(temperature: f64) -> bool {
    temperature.is_finite() && temperature > 0.0
}

/// Natural-log softmax of one row of logits divided by `temperature`.
///
/// Computed as `z - max(z) - ln Σ exp(z - max(z))` with `z = row / temperature` in `f64`,
/// which stays finite for logits of magnitude 1e4 and beyond. An empty row gives an empty
/// vector. The temperature must be finite and positive; any other value gives a row of `NaN`
/// (there is no distribution to return, and a silent fallback would hide a configuration
/// error).
pub fn log_softmax_row(row: &[f32], temperature: f64) -> Vec<f64> {
    if !valid_temperature(temperature) {
        return vec![f64::NAN; row.len()];
    }
    let scaled: Vec<f64> = row.iter().map(|&x| f64::from(x) / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = scaled.iter().map(|&z| (z - max).exp()).sum::<f64>().ln();
    scaled.iter().map(|&z| (z - max) - log_sum).collect()
}

/// Softmax of one row of logits divided by `temperature`: probabilities that sum to one.
///
/// The exponential of [`log_softmax_row`], so it shares its stability and its handling of
/// empty rows and invalid temperatures.
pub fn softmax_row(row: &[f32], temperature: f64) -> Vec<f64> {
    log_softmax_row(row, temperature)
        .into_iter()
        .map(f64::exp)
        .collect()
}

/// `total / count`, or 0 when there is nothing to average.
fn mean_of(total: f64, count: usize) -> f64 {
    if count == 0 {
        0.0
    } else {
        total / count as f64
    }
}

/// Fraction of samples whose argmax class equals their label, in `[0, 1]`.
///
/// Ties go to the lowest class index. Returns 0 when there are no samples.
pub fn accuracy(logits: &[f32], num_classes: usize, labels: &[u32]) -> f64 {
    debug_assert_eq!(
        logits.len(),
        labels.len() * num_classes,
        "logits and labels differ"
    );
    let mut count = 0;
    let mut correct = 0usize;
    for (row, &label) in rows(logits, num_classes).zip(labels) {
        count += 1;
        correct += usize::from(argmax(row) == label as usize);
    }
    mean_of(correct as f64, count)
}

/// Mean over samples of `-ln softmax(logits)[label]`, in nats.
///
/// Returns 0 when there are no samples.
pub fn negative_log_likelihood(logits: &[f32], num_classes: usize, labels: &[u32]) -> f64 {
    debug_assert_eq!(
        logits.len(),
        labels.len() * num_classes,
        "logits and labels differ"
    );
    let mut count = 0;
    let mut total = 0.0;
    for (row, &label) in rows(logits, num_classes).zip(labels) {
        count += 1;
        total -= log_softmax_row(row, 1.0)
            .get(label as usize)
            .copied()
            .unwrap_or(f64::NEG_INFINITY);
    }
    mean_of(total, count)
}

/// Largest softmax probability of a row (at temperature 1).
fn confidence(row: &[f32]) -> f64 {
    log_softmax_row(row, 1.0)
        .into_iter()
        .fold(f64::NEG_INFINITY, f64::max)
        .exp()
}

/// Expected calibration error with `bins` equal-width confidence bins over `[0, 1]`.
///
/// A sample's confidence is its largest softmax probability and it is correct when its
/// argmax (ties to the lowest index) equals its label. Bin `b` holds confidences in
/// `[b / bins, (b + 1) / bins)`, except that a confidence of exactly 1.0 goes in the last
/// bin. Then `ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|`, in `[0, 1]`.
///
/// Returns 0 when there are no samples; `bins == 0` is treated as a single bin.
pub fn expected_calibration_error(
    logits: &[f32],
    num_classes: usize,
    labels: &[u32],
    bins: usize,
) -> f64 {
    debug_assert_eq!(
        logits.len(),
        labels.len() * num_classes,
        "logits and labels differ"
    );
    let bins = bins.max(1);
    let mut counts = vec![0usize; bins];
    let mut correct = vec![0usize; bins];
    let mut confidence_sums = vec![0.0f64; bins];
    let mut total = 0usize;
    for (row, &label) in rows(logits, num_classes).zip(labels) {
        let confidence = confidence(row);
        // `as` floors a non-negative value (and maps NaN to 0); the clamp puts exactly 1.0
        // in the last bin.
        let bin = ((confidence * bins as f64) as usize).min(bins - 1);
        counts[bin] += 1;
        correct[bin] += usize::from(argmax(row) == label as usize);
        confidence_sums[bin] += confidence;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .iter()
        .zip(&correct)
        .zip(&confidence_sums)
        .filter(|&((&count, _), _)| count > 0)
        .map(|((&count, &right), &confidence_sum)| {
            let gap = (right as f64 / count as f64 - confidence_sum / count as f64).abs();
            count as f64 / total as f64 * gap
        })
        .sum()
}

/// Fraction of samples on which student and teacher predict the same class, in `[0, 1]`.
///
/// Both argmaxes break ties towards the lowest index. Returns 0 when there are no samples.
pub fn agreement(student_logits: &[f32], teacher_logits: &[f32], num_classes: usize) -> f64 {
    debug_assert_eq!(
        student_logits.len(),
        teacher_logits.len(),
        "logit shapes differ"
    );
    let mut count = 0;
    let mut same = 0usize;
    for (student, teacher) in
        rows(student_logits, num_classes).zip(rows(teacher_logits, num_classes))
    {
        count += 1;
        same += usize::from(argmax(student) == argmax(teacher));
    }
    mean_of(same as f64, count)
}

/// KL(p ‖ q) of one pair of rows given as log-probabilities.
fn kl_row(log_p: &[f64], log_q: &[f64]) -> f64 {
    let kl: f64 = log_p
        .iter()
        .zip(log_q)
        .map(|(&lp, &lq)| {
            let p = lp.exp();
            // 0 · ln 0 = 0: a class the teacher rules out costs nothing, whatever q says.
            if p > 0.0 { p * (lp - lq) } else { 0.0 }
        })
        .sum();
    // KL is non-negative; rounding can leave a few ulps below zero for near-equal rows.
    kl.max(0.0)
}

/// Mean over samples of KL(softmax(teacher / T) ‖ softmax(student / T)), in nats.
///
/// Each sample contributes `Σ_c p_t (ln p_t − ln p_s)`, where classes with `p_t = 0`
/// contribute 0. This is the divergence Hinton distillation minimises, without its `T²`
/// factor. Returns 0 when there are no samples; an invalid temperature (see
/// [`log_softmax_row`]) gives `NaN`.
pub fn mean_kl(
    teacher_logits: &[f32],
    student_logits: &[f32],
    num_classes: usize,
    temperature: f64,
) -> f64 {
    debug_assert_eq!(
        student_logits.len(),
        teacher_logits.len(),
        "logit shapes differ"
    );
    if !valid_temperature(temperature) {
        return f64::NAN;
    }
    let mut count = 0;
    let mut total = 0.0;
    for (teacher, student) in
        rows(teacher_logits, num_classes).zip(rows(student_logits, num_classes))
    {
        count += 1;
        total += kl_row(
            &log_softmax_row(teacher, temperature),
            &log_softmax_row(student, temperature),
        );
    }
    mean_of(total, count)
}

/// The test-set measures of one model, as stored per seed before aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of correctly classified samples, in `[0, 1]` (see [`accuracy`]).
    pub accuracy: f64,
    /// Mean negative log-likelihood of the labels, in nats (see [`negative_log_likelihood`]).
    pub nll: f64,
    /// Expected calibration error with [`ECE_BINS`] bins, in `[0, 1]`.
    pub ece: f64,
    /// Fraction of samples with the teacher's prediction; `None` without a teacher.
    pub agreement: Option<f64>,
    /// Mean KL(teacher ‖ model) at temperature 1, in nats; `None` without a teacher.
    pub kl_from_teacher: Option<f64>,
}

/// All metrics of a model's logits, and its agreement and KL with a teacher when given.
///
/// The KL is taken at temperature 1, the distributions the models actually predict with,
/// whatever temperature distillation used. Empty inputs give all-zero metrics.
pub fn evaluate(
    logits: &[f32],
    num_classes: usize,
    labels: &[u32],
    teacher_logits: Option<&[f32]>,
) -> Metrics {
    Metrics {
        accuracy: accuracy(logits, num_classes, labels),
        nll: negative_log_likelihood(logits, num_classes, labels),
        ece: expected_calibration_error(logits, num_classes, labels, ECE_BINS),
        agreement: teacher_logits.map(|teacher| agreement(logits, teacher, num_classes)),
        kl_from_teacher: teacher_logits.map(|teacher| mean_kl(teacher, logits, num_classes, 1.0)),
    }
}

/// Predicted class of every row: its argmax, ties to the lowest index.
pub fn argmax_rows(logits: &[f32], num_classes: usize) -> Vec<u32> {
    rows(logits, num_classes)
        // A class index fits in u32 because labels are u32.
        .map(|row| argmax(row) as u32)
        .collect()
}

/// Counts of (actual, predicted) pairs: `matrix[actual][predicted]`, `num_classes` square.
///
/// Rows are the true classes, so a row sums to that class's support. Pairs with a class at
/// or above `num_classes` are skipped rather than counted somewhere wrong.
pub fn confusion_matrix(predicted: &[u32], actual: &[u32], num_classes: usize) -> Vec<Vec<u64>> {
    debug_assert_eq!(
        predicted.len(),
        actual.len(),
        "predictions and labels differ"
    );
    let mut matrix = vec![vec![0u64; num_classes]; num_classes];
    for (&guess, &truth) in predicted.iter().zip(actual) {
        if let Some(cell) = matrix
            .get_mut(truth as usize)
            .and_then(|row| row.get_mut(guess as usize))
        {
            *cell += 1;
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One case of `tests/fixtures/metrics_reference.json`, written by `make_reference.py`.
    #[derive(Deserialize)]
    struct ReferenceCase {
        name: String,
        n: usize,
        classes: usize,
        logits: Vec<f32>,
        labels: Vec<u32>,
        teacher: Vec<f32>,
        accuracy: f64,
        nll: f64,
        ece: f64,
        agreement: f64,
        mean_kl_t1: f64,
        mean_kl_t4: f64,
    }

    #[derive(Deserialize)]
    struct Reference {
        ece_bins: usize,
        cases: Vec<ReferenceCase>,
    }

    fn reference() -> Reference {
        serde_json::from_str(include_str!("../../tests/fixtures/metrics_reference.json"))
            .expect("fixture parses")
    }

    fn assert_close(actual: f64, expected: f64, what: &str) {
        let tolerance = 1e-10 * expected.abs().max(1.0);
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual}, expected {expected}"
        );
    }

    #[test]
    fn matches_numpy_reference() {
        let reference = reference();
        assert_eq!(reference.ece_bins, ECE_BINS);
        assert!(reference.cases.len() >= 10);
        for case in &reference.cases {
            let (c, name) = (case.classes, case.name.as_str());
            assert_eq!(case.logits.len(), case.n * c, "{name}");
            let got = evaluate(&case.logits, c, &case.labels, Some(&case.teacher));
            assert_close(got.accuracy, case.accuracy, &format!("{name} accuracy"));
            assert_close(got.nll, case.nll, &format!("{name} nll"));
            assert_close(got.ece, case.ece, &format!("{name} ece"));
            assert_close(
                got.agreement.unwrap(),
                case.agreement,
                &format!("{name} agreement"),
            );
            assert_close(
                got.kl_from_teacher.unwrap(),
                case.mean_kl_t1,
                &format!("{name} kl"),
            );
            let kl4 = mean_kl(&case.teacher, &case.logits, c, 4.0);
            assert_close(kl4, case.mean_kl_t4, &format!("{name} kl T=4"));
        }
    }

    #[test]
    fn softmax_by_hand() {
        // ln 2 apart: probabilities 2/3 and 1/3.
        let row = [2.0f32.ln(), 0.0];
        let p = softmax_row(&row, 1.0);
        assert!((p[0] - 2.0 / 3.0).abs() < 1e-7 && (p[1] - 1.0 / 3.0).abs() < 1e-7);
        // Temperature 2 halves the gap: weights sqrt 2 and 1.
        let p = softmax_row(&[2.0, 0.0], 2.0);
        let e = std::f64::consts::E;
        assert!((p[0] - e / (e + 1.0)).abs() < 1e-15);
        let lp = log_softmax_row(&[1.0, 1.0, 1.0, 1.0], 1.0);
        assert!(lp.iter().all(|&v| (v + 4.0f64.ln()).abs() < 1e-15));
        assert!(log_softmax_row(&[], 1.0).is_empty());
    }

    #[test]
    fn invalid_temperature_is_nan_not_a_panic() {
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(log_softmax_row(&[1.0, 2.0], t).iter().all(|v| v.is_nan()));
            assert!(mean_kl(&[1.0, 2.0], &[1.0, 2.0], 2, t).is_nan());
        }
    }

    #[test]
    fn huge_logits_stay_finite() {
        let logits = [1e4f32, -1e4, 0.0, -1e4, 1e4, 9_999.0];
        let teacher = [-1e4f32, 1e4, 0.0, 1e4, -1e4, 0.0];
        for t in [1.0, 4.0, 0.5] {
            let lp = log_softmax_row(&logits[..3], t);
            assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
            let p = softmax_row(&logits[3..], t);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(mean_kl(&teacher, &logits, 3, t).is_finite());
        }
        let m = evaluate(&logits, 3, &[0, 2], Some(&teacher));
        assert!(m.nll.is_finite() && m.ece.is_finite());
        // Sample 2 puts 1 - e^-1 on class 1 and the label is class 2: NLL ≈ 1 + ln(1 + e^-1).
        let expected_nll = (0.0 + 1.0 + (1.0 + (-1.0f64).exp()).ln()) / 2.0;
        assert!((m.nll - expected_nll).abs() < 1e-12, "{}", m.nll);
        assert!(m.kl_from_teacher.unwrap() > 1e4);
    }

    #[test]
    fn small_cases_by_hand() {
        // Row 0 predicts 1, row 1 ties between 0 and 2 (takes 0), row 2 predicts 2.
        let logits = [0.0f32, 3.0, 1.0, 5.0, 1.0, 5.0, -1.0, -2.0, 0.5];
        assert_eq!(argmax_rows(&logits, 3), vec![1, 0, 2]);
        assert_eq!(accuracy(&logits, 3, &[1, 2, 2]), 2.0 / 3.0);
        assert_eq!(accuracy(&logits, 3, &[1, 0, 2]), 1.0);
        let matrix = confusion_matrix(&[1, 0, 2, 7], &[1, 2, 2, 0], 3);
        assert_eq!(matrix, vec![vec![0, 0, 0], vec![0, 1, 0], vec![1, 0, 1]]);
        // NLL of uniform predictions is ln C.
        let uniform = [0.5f32; 8];
        assert!((negative_log_likelihood(&uniform, 4, &[0, 3]) - 4.0f64.ln()).abs() < 1e-15);
        // Agreement: predictions 1, 0, 2 against teacher 1, 2, 2.
        let teacher = [0.0f32, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        assert_eq!(agreement(&logits, &teacher, 3), 2.0 / 3.0);
    }

    #[test]
    fn ece_by_hand() {
        // Two classes, confidences 0.5 (bin 7 of 15) and e/(1+e) ≈ 0.731 (bin 10).
        let logits = [0.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
        let labels = [0, 0, 1];
        let high = std::f64::consts::E / (1.0 + std::f64::consts::E);
        // Bin 7: 1 sample, right, gap 0.5. Bin 10: 2 samples, one right, gap |0.5 - high|.
        let expected = 1.0 / 3.0 * 0.5 + 2.0 / 3.0 * (0.5 - high).abs();
        let got = expected_calibration_error(&logits, 2, &labels, ECE_BINS);
        assert!((got - expected).abs() < 1e-15, "{got} vs {expected}");
        // One bin: |accuracy - mean confidence|.
        let one = expected_calibration_error(&logits, 2, &labels, 1);
        assert!((one - (2.0 / 3.0 - (0.5 + 2.0 * high) / 3.0).abs()).abs() < 1e-15);
        assert_eq!(expected_calibration_error(&logits, 2, &labels, 0), one);
        // Certain and right: confidence exactly 1.0 in the last bin, no gap.
        assert_eq!(expected_calibration_error(&[1e4, 0.0], 2, &[0], 10), 0.0);
        // Certain and wrong: ECE 1.
        assert_eq!(expected_calibration_error(&[1e4, 0.0], 2, &[1], 10), 1.0);
    }

    #[test]
    fn empty_inputs_are_zero() {
        let m = evaluate(&[], 10, &[], Some(&[]));
        assert_eq!(
            m,
            Metrics {
                accuracy: 0.0,
                nll: 0.0,
                ece: 0.0,
                agreement: Some(0.0),
                kl_from_teacher: Some(0.0)
            }
        );
        assert_eq!(evaluate(&[], 10, &[], None).agreement, None);
        assert!(argmax_rows(&[], 3).is_empty());
        assert!(argmax_rows(&[1.0, 2.0], 0).is_empty());
        assert_eq!(accuracy(&[], 0, &[]), 0.0);
        assert!(confusion_matrix(&[], &[], 0).is_empty());
    }

    #[test]
    fn out_of_range_label_is_wrong_not_a_panic() {
        assert_eq!(accuracy(&[1.0, 0.0], 2, &[5]), 0.0);
        assert_eq!(negative_log_likelihood(&[1.0, 0.0], 2, &[5]), f64::INFINITY);
        assert_eq!(expected_calibration_error(&[1e4, 0.0], 2, &[5], 15), 1.0);
    }

    #[test]
    fn kl_of_identical_logits_is_zero() {
        let logits = [3.0f32, -1.0, 0.25, 1e4, -1e4, 7.0];
        for t in [1.0, 2.0, 4.0, 8.0] {
            assert_eq!(mean_kl(&logits, &logits, 3, t), 0.0);
        }
    }

    #[test]
    fn kl_by_hand() {
        // p = (1/2, 1/2) from equal logits, q = (2/3, 1/3) from logits ln 2 apart.
        let teacher = [0.0f32, 0.0];
        let student = [2.0f32.ln(), 0.0];
        let q0 = f64::from(2.0f32.ln()).exp() / (f64::from(2.0f32.ln()).exp() + 1.0);
        let expected = 0.5 * (0.5 / q0).ln() + 0.5 * (0.5 / (1.0 - q0)).ln();
        assert!((mean_kl(&teacher, &student, 2, 1.0) - expected).abs() < 1e-15);
        // A teacher probability that underflows to zero contributes nothing.
        let kl = mean_kl(&[1e4, -1e4], &[0.0, 0.0], 2, 1.0);
        assert!((kl - 2.0f64.ln()).abs() < 1e-12, "{kl}");
    }

    /// `n` rows of `classes` logits (scale up to 1e4) with labels.
    fn batch() -> impl Strategy<Value = (usize, Vec<f32>, Vec<f32>, Vec<u32>)> {
        (
            1usize..8,
            0usize..24,
            prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)],
        )
            .prop_flat_map(|(classes, n, scale)| {
                let values = proptest::collection::vec(-scale..=scale, n * classes);
                let labels = proptest::collection::vec(0..classes as u32, n);
                (Just(classes), values.clone(), values, labels)
            })
    }

    proptest! {
        #[test]
        fn metrics_stay_in_range(
            (classes, student, teacher, labels) in batch(),
            temperature in 0.1f64..16.0,
        ) {
            let kl = mean_kl(&teacher, &student, classes, temperature);
            prop_assert!(kl >= 0.0 && kl.is_finite(), "kl {}", kl);
            let ece = expected_calibration_error(&student, classes, &labels, ECE_BINS);
            prop_assert!((0.0..=1.0).contains(&ece), "ece {}", ece);
            let acc = accuracy(&student, classes, &labels);
            prop_assert!((0.0..=1.0).contains(&acc), "accuracy {}", acc);
            let agree = agreement(&student, &teacher, classes);
            prop_assert!((0.0..=1.0).contains(&agree));
            let nll = negative_log_likelihood(&student, classes, &labels);
            prop_assert!(nll >= 0.0 && nll.is_finite());
            for row in student.chunks_exact(classes) {
                let p = softmax_row(row, temperature);
                prop_assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }

        #[test]
        fn kl_of_a_row_with_itself_is_zero(
            (classes, logits, _, _) in batch(),
            temperature in 0.1f64..16.0,
        ) {
            prop_assert_eq!(mean_kl(&logits, &logits, classes, temperature), 0.0);
        }
    }
}

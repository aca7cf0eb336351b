//! What the report shows, worked out once from the results so that the charts, the HTML page
//! and the summary agree on every number: groups of models, colours, learning speed and the
//! share of the teacher's lead each student recovers.

use std::cmp::Ordering;

use super::extensions::{Extensions, ModelEfficiency};
use super::results::{DataSummary, ModelResult, Results, Role, Summary};

/// An RGB colour.
pub(crate) type Rgb = (u8, u8, u8);

/// The teacher's colour: a neutral dark grey, the reference everything is compared with.
pub(crate) const TEACHER: Rgb = (68, 68, 68);
/// Scratch students: orange (Okabe–Ito), apart from every distilled colour.
pub(crate) const SCRATCH: Rgb = (230, 159, 0);
/// Distilled students, one colour per method and transfer set, in order of appearance
/// (Okabe–Ito colours, which stay distinct for colour-blind readers).
const DISTILLED: [Rgb; 6] = [
    (0, 114, 178),
    (204, 121, 167),
    (0, 158, 115),
    (86, 180, 233),
    (213, 94, 0),
    (150, 130, 0),
];

/// One model as the report shows it.
#[derive(Debug, Clone)]
pub(crate) struct ModelView<'a> {
    /// The model's results.
    pub result: &'a ModelResult,
    /// Its colour in every chart.
    pub color: Rgb,
    /// Its measured efficiency, when the run has one.
    pub efficiency: Option<&'a ModelEfficiency>,
}

/// Models trained on the same label fraction, compared with each other.
#[derive(Debug, Clone)]
pub(crate) struct Group<'a> {
    /// Fraction of the training labels, in `(0, 1]`.
    pub fraction: f64,
    /// E.g. `all labels` or `5% of labels (54 images)`.
    pub title: String,
    /// Scratch and distilled models, in the order of the results.
    pub models: Vec<ModelView<'a>>,
}

impl Group<'_> {
    /// The scratch model of the group, if any.
    pub fn scratch(&self) -> Option<&ModelView<'_>> {
        self.models.iter().find(|m| m.result.role == Role::Scratch)
    }

    /// The scratch baseline of `model`: the group's scratch model of the same architecture
    /// (a run may train several student architectures, as text runs do), else the first one.
    pub fn scratch_for(&self, model: &super::results::ModelResult) -> Option<&ModelView<'_>> {
        self.models
            .iter()
            .find(|m| m.result.role == Role::Scratch && m.result.architecture == model.architecture)
            .or_else(|| self.scratch())
    }

    /// The distilled models of the group.
    pub fn distilled(&self) -> impl Iterator<Item = &ModelView<'_>> {
        self.models
            .iter()
            .filter(|m| m.result.role == Role::Distilled)
    }
}

/// How fast one model's validation accuracy rose.
#[derive(Debug, Clone)]
pub(crate) struct LearningCurve {
    /// Mean over seeds of the validation accuracy after each epoch (seeds whose run stopped
    /// earlier drop out of later epochs); NaN where no seed has a value.
    pub mean: Vec<f64>,
    /// Lowest and highest seed at each epoch.
    pub low: Vec<f64>,
    /// See `low`.
    pub high: Vec<f64>,
    /// First epoch (1-based) at which the mean curve reaches the threshold.
    pub reached_at: Option<usize>,
    /// The same for each seed's own curve, in the order of the curves.
    pub reached_per_seed: Vec<Option<usize>>,
}

/// Everything the report needs, borrowed from the results.
#[derive(Debug, Clone)]
pub(crate) struct View<'a> {
    /// The results document.
    pub results: &'a Results,
    /// Its optional sections.
    pub extensions: &'a Extensions,
    /// The teacher, when the run has one.
    pub teacher: Option<ModelView<'a>>,
    /// Students grouped by label fraction, most labels first.
    pub groups: Vec<Group<'a>>,
    /// Learning speed is judged against this fraction of the reference accuracy.
    pub threshold_fraction: f64,
    /// The validation accuracy that counts as "learnt": `threshold_fraction` times the
    /// teacher's validation accuracy (or the best student's, without a teacher). NaN when
    /// there is nothing to compare with.
    pub threshold: f64,
    /// What the threshold is a fraction of, for captions: `the teacher's` or `the best
    /// student's`.
    pub threshold_reference: &'static str,
}

impl<'a> View<'a> {
    /// Works out the view of `results` with learning speed judged at `threshold_fraction`.
    pub fn new(results: &'a Results, extensions: &'a Extensions, threshold_fraction: f64) -> Self {
        let efficiency_of = |name: &str| {
            extensions
                .efficiency
                .as_ref()
                .and_then(|section| section.models.iter().find(|m| m.measured.name == name))
        };
        let mut distilled_keys: Vec<(String, Option<String>)> = Vec::new();
        let mut view_of = |model: &'a ModelResult| {
            let color = match model.role {
                Role::Teacher => TEACHER,
                Role::Scratch => SCRATCH,
                Role::Distilled => {
                    let key = (model.method.clone(), model.transfer.clone());
                    let index = match distilled_keys.iter().position(|k| *k == key) {
                        Some(index) => index,
                        None => {
                            distilled_keys.push(key);
                            distilled_keys.len() - 1
                        }
                    };
                    DISTILLED[index % DISTILLED.len()]
                }
            };
            ModelView {
                result: model,
                color,
                efficiency: efficiency_of(&model.name),
            }
        };
        let teacher = results
            .models
            .iter()
            .find(|m| m.role == Role::Teacher)
            .map(&mut view_of);
        let mut groups: Vec<Group<'a>> = Vec::new();
        for model in results.models.iter().filter(|m| m.role != Role::Teacher) {
            let view = view_of(model);
            // Fractions come from the same configuration values, so exact comparison groups them.
            match groups
                .iter_mut()
                .find(|g| g.fraction.total_cmp(&model.label_fraction) == Ordering::Equal)
            {
                Some(group) => group.models.push(view),
                None => groups.push(Group {
                    fraction: model.label_fraction,
                    title: group_title(model.label_fraction, &results.data),
                    models: vec![view],
                }),
            }
        }
        // A stable sort keeps the results' order within a fraction.
        groups.sort_by(|a, b| b.fraction.total_cmp(&a.fraction));

        let teacher_validation = teacher
            .as_ref()
            .map(|t| t.result.validation_accuracy.mean)
            .filter(|v| v.is_finite() && *v > 0.0);
        let (reference, threshold_reference) = match teacher_validation {
            Some(value) => (value, "the teacher's"),
            None => (
                groups
                    .iter()
                    .flat_map(|g| &g.models)
                    .map(|m| m.result.validation_accuracy.mean)
                    .filter(|v| v.is_finite())
                    .fold(f64::NAN, f64::max),
                "the best student's",
            ),
        };
        let threshold_fraction = if threshold_fraction.is_finite() {
            threshold_fraction
        } else {
            0.95
        };
        View {
            results,
            extensions,
            teacher,
            groups,
            threshold_fraction,
            threshold: reference * threshold_fraction,
            threshold_reference,
        }
    }

    /// Every model: the teacher first, then the groups in order.
    pub fn all_models(&self) -> Vec<&ModelView<'a>> {
        self.teacher
            .iter()
            .chain(self.groups.iter().flat_map(|g| &g.models))
            .collect()
    }

    /// Number of seeds the results were averaged over.
    pub fn seeds(&self) -> usize {
        self.results.seeds.len()
    }

    /// The learning curve of `model`, judged against [`View::threshold`].
    pub fn learning_curve(&self, model: &ModelResult) -> LearningCurve {
        let curves: Vec<&Vec<f64>> = model
            .curves
            .iter()
            .map(|c| &c.validation_accuracy)
            .collect();
        let (mean, low, high) = mean_band(&curves);
        let reach = |values: &[f64]| {
            if !self.threshold.is_finite() {
                return None;
            }
            values
                .iter()
                .position(|v| *v >= self.threshold)
                .map(|index| index + 1)
        };
        LearningCurve {
            reached_at: reach(&mean),
            reached_per_seed: curves.iter().map(|c| reach(c)).collect(),
            mean,
            low,
            high,
        }
    }

    /// Share of the teacher's lead over `scratch` that `model` recovers:
    /// `(model − scratch) / (teacher − scratch)` in test accuracy. `None` without a teacher,
    /// or when the teacher leads by under half a point (the share would be noise).
    pub fn gap_closed(&self, model: &ModelResult, scratch: &ModelResult) -> Option<f64> {
        let teacher = self.teacher.as_ref()?.result.test.accuracy.mean;
        let lead = teacher - scratch.test.accuracy.mean;
        let share = (model.test.accuracy.mean - scratch.test.accuracy.mean) / lead;
        (lead >= 0.005 && share.is_finite()).then_some(share)
    }
}

/// Mean, minimum and maximum at each index over lists of unequal length, skipping NaN.
pub(crate) fn mean_band(lists: &[&Vec<f64>]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let length = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut mean = Vec::with_capacity(length);
    let mut low = Vec::with_capacity(length);
    let mut high = Vec::with_capacity(length);
    for index in 0..length {
        let values: Vec<f64> = lists
            .iter()
            .filter_map(|l| l.get(index).copied())
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            mean.push(f64::NAN);
            low.push(f64::NAN);
            high.push(f64::NAN);
        } else {
            mean.push(values.iter().sum::<f64>() / values.len() as f64);
            low.push(values.iter().copied().fold(f64::INFINITY, f64::min));
            high.push(values.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        }
    }
    (mean, low, high)
}

/// The title of a label-fraction group, counting the labelled training samples.
pub(crate) fn group_title(fraction: f64, data: &DataSummary) -> String {
    if fraction >= 1.0 {
        return "all labels".to_string();
    }
    // `as` saturates, so a negative or NaN fraction shows as 0 rather than wrapping.
    let count = (fraction * data.train as f64).round() as usize;
    let [_, height, width] = data.sample_shape;
    let noun = if height > 1 && width > 1 {
        "image"
    } else {
        "sample"
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{}% of labels ({count} {noun}{plural})", percent(fraction))
}

/// A fraction as a percentage with at most four decimals and no trailing zeros:
/// `0.05` → `"5"`, `0.125` → `"12.5"`.
pub(crate) fn percent(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `mean ± std` of a fraction as a percentage with `digits` decimals; the mean alone for a
/// single seed; `—` for a missing or non-finite value.
pub(crate) fn pct(summary: &Summary, digits: usize) -> String {
    if !summary.mean.is_finite() {
        return "—".to_string();
    }
    summary.format(digits, 100.0)
}

/// Signed percentage points between two fractions, never `-0.0`.
pub(crate) fn points(difference: f64) -> String {
    let value = difference * 100.0;
    if !value.is_finite() {
        return "—".to_string();
    }
    if format!("{:.1}", value.abs()) == "0.0" {
        "+0.0".to_string()
    } else {
        format!("{value:+.1}")
    }
}

pub(crate) use super::units::{bytes, duration, energy, si, significant, thousands, times};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(si(169_994.0), "170k");
        assert_eq!(si(2_410.0), "2.41k");
        assert_eq!(si(12.0), "12");
        assert_eq!(si(f64::NAN), "—");
        assert_eq!(significant(0.012345, 3), "0.0123");
        assert_eq!(significant(1234.0, 3), "1234");
        assert_eq!(bytes(1000), "1000 B");
        assert_eq!(bytes(341_512), "334 KiB");
        assert_eq!(duration(0.000_042), "42 µs");
        assert_eq!(duration(0.0123), "12.3 ms");
        assert_eq!(energy(0.0021), "2.1 mJ");
        assert_eq!(times(0.028, "fewer", "more"), "35.7× fewer");
        assert_eq!(times(2.0, "less", "more"), "2× more");
        assert_eq!(times(1.001, "less", "more"), "same");
        assert_eq!(times(f64::NAN, "less", "more"), "—");
        assert_eq!(points(-0.00001), "+0.0");
        assert_eq!(points(0.1123), "+11.2");
        assert_eq!(percent(0.05), "5");
    }

    #[test]
    fn bands_skip_missing_values() {
        let a = vec![0.1, 0.5, 0.9];
        let b = vec![0.3, f64::NAN];
        let (mean, low, high) = mean_band(&[&a, &b]);
        assert_eq!(mean.len(), 3);
        assert!((mean[0] - 0.2).abs() < 1e-12);
        assert_eq!((low[0], high[0]), (0.1, 0.3));
        assert_eq!(mean[1], 0.5);
        assert_eq!(mean[2], 0.9);
        let (empty, _, _) = mean_band(&[]);
        assert!(empty.is_empty());
    }
}

//! What a continual run measures per seed, summarised into `continual.json`
//! ([`crate::report::continual_results`]), and the table printed at its end.
//!
//! Accuracies are fractions in [0, 1] on the test split. A stage's *class group* is its test
//! samples (its classes, shifted as the stage is). After stage k:
//! - `new` is the accuracy on stage k's group, `old` on the groups of stages 1 to k−1 together,
//!   `all` on every group so far; the prediction is the argmax over every class seen so far
//!   (class-incremental: the model is not told which stage a sample comes from);
//! - `old_task_aware` is the accuracy on the old groups when each sample's prediction is the
//!   argmax over its own stage's classes only (the model is told the stage);
//! - `forgetting` is the mean, over the old groups, of the best accuracy the group had after any
//!   earlier stage minus its accuracy now (Chaudhry et al., 2018), class-incremental;
//!   `forgetting_task_aware` is the same drop of the task-aware accuracies.

pub use crate::report::continual_results::{
    CONTINUAL_SCHEMA_VERSION, ContinualResults, StageResult, StageSummary, VariantResult,
};
use crate::report::results::Summary;

/// One seed's numbers for one variant after one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    /// Training samples of the stage.
    pub train_samples: usize,
    /// Class-incremental accuracy on each group seen so far.
    pub groups: Vec<f64>,
    /// Test samples in each group seen so far.
    pub group_sizes: Vec<usize>,
    /// Task-aware accuracy on each group seen so far.
    pub groups_task_aware: Vec<f64>,
    /// Final validation accuracy of the stage's training.
    pub validation_accuracy: f64,
    /// Training seconds.
    pub wall_time_s: f64,
}

impl StageRecord {
    /// Sample-weighted accuracy over the groups `range` of `accuracies`.
    fn pooled(&self, accuracies: &[f64], range: std::ops::Range<usize>) -> f64 {
        let sizes = &self.group_sizes[range.clone()];
        let correct: f64 = accuracies[range]
            .iter()
            .zip(sizes)
            .map(|(a, &n)| a * n as f64)
            .sum();
        correct / sizes.iter().sum::<usize>() as f64
    }

    /// Class-incremental accuracy on the old groups (NaN after stage 1).
    pub fn old(&self) -> f64 {
        let k = self.groups.len();
        if k < 2 {
            f64::NAN
        } else {
            self.pooled(&self.groups, 0..k - 1)
        }
    }

    /// Class-incremental accuracy on the stage's own group.
    pub fn new_group(&self) -> f64 {
        self.groups[self.groups.len() - 1]
    }

    /// Class-incremental accuracy on every group seen so far.
    pub fn all(&self) -> f64 {
        self.pooled(&self.groups, 0..self.groups.len())
    }

    /// Task-aware accuracy on the old groups (NaN after stage 1).
    pub fn old_task_aware(&self) -> f64 {
        let k = self.groups_task_aware.len();
        if k < 2 {
            f64::NAN
        } else {
            self.pooled(&self.groups_task_aware, 0..k - 1)
        }
    }
}

/// Average forgetting after the last of `history` (one record per stage so far, in order): for
/// each old group, its best accuracy after an earlier stage minus its accuracy now, averaged
/// over the old groups; class-incremental accuracies. NaN with fewer than two stages.
pub fn forgetting(history: &[StageRecord]) -> f64 {
    mean_drop(history, |record| &record.groups)
}

/// [`forgetting`] of the task-aware accuracies.
pub fn forgetting_task_aware(history: &[StageRecord]) -> f64 {
    mean_drop(history, |record| &record.groups_task_aware)
}

fn mean_drop(history: &[StageRecord], accuracies: impl Fn(&StageRecord) -> &[f64]) -> f64 {
    let Some((now, earlier)) = history.split_last() else {
        return f64::NAN;
    };
    if earlier.is_empty() {
        return f64::NAN;
    }
    let now = accuracies(now);
    let old_groups = now.len() - 1;
    let drops: f64 = (0..old_groups)
        .map(|group| {
            let best = earlier
                .iter()
                .filter_map(|record| accuracies(record).get(group))
                .fold(f64::NEG_INFINITY, |m, &a| m.max(a));
            best - now[group]
        })
        .sum();
    drops / old_groups as f64
}

/// Summaries over seeds of one variant's stage `stage` (1-based); `histories` holds one list of
/// per-stage records per seed.
pub fn summarise_stage(histories: &[&[StageRecord]], stage: usize) -> StageResult {
    let records: Vec<&StageRecord> = histories.iter().map(|h| &h[stage - 1]).collect();
    let collect = |f: &dyn Fn(&StageRecord) -> f64| -> Summary {
        Summary::from_values(&records.iter().map(|r| f(r)).collect::<Vec<_>>())
    };
    let over_histories = |f: &dyn Fn(&[StageRecord]) -> f64| -> Summary {
        Summary::from_values(&histories.iter().map(|h| f(&h[..stage])).collect::<Vec<_>>())
    };
    let later = stage > 1;
    let groups = (0..stage).map(|g| collect(&|r| r.groups[g])).collect();
    StageResult {
        stage,
        train_samples: records[0].train_samples,
        old: later.then(|| collect(&|r| r.old())),
        new: collect(&|r| r.new_group()),
        all: collect(&|r| r.all()),
        old_task_aware: later.then(|| collect(&|r| r.old_task_aware())),
        forgetting: later.then(|| over_histories(&forgetting)),
        forgetting_task_aware: later.then(|| over_histories(&forgetting_task_aware)),
        groups,
        validation_accuracy: collect(&|r| r.validation_accuracy),
        train_time_s: collect(&|r| r.wall_time_s),
    }
}

/// Shown where a variant has no such number (old classes after stage 1).
const ABSENT: &str = "—";

/// The table printed at the end of a continual run: the shared stage-1 model, then for every
/// later stage one row per variant with old, new and all-seen accuracy and the forgetting, then
/// the task-aware old accuracy and forgetting, in % and percentage points as `mean ± std` over
/// seeds.
pub fn continual_table(results: &ContinualResults) -> String {
    let header = [
        "variant",
        "old %",
        "new %",
        "all %",
        "forgetting",
        "old, told stage %",
        "forgetting, told",
    ]
    .map(String::from)
    .to_vec();
    let percent = |s: &Option<Summary>| {
        s.as_ref()
            .map_or(ABSENT.to_string(), |s| s.format(2, 100.0))
    };
    let mut sections: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for (index, stage) in results.stages.iter().enumerate() {
        let title = format!(
            "after stage {} (classes {}{})",
            stage.stage,
            class_list(&stage.classes),
            stage.permute_features.map_or(String::new(), |s| format!(
                ", features permuted by seed {s}"
            ))
        );
        let rows = if index == 0 {
            // Every variant trains stage 1 the same way, from the same model.
            results
                .variants
                .first()
                .map(|variant| {
                    let first = &variant.stages[0];
                    vec![vec![
                        "(all variants)".to_string(),
                        ABSENT.to_string(),
                        first.new.format(2, 100.0),
                        first.all.format(2, 100.0),
                        ABSENT.to_string(),
                        ABSENT.to_string(),
                        ABSENT.to_string(),
                    ]]
                })
                .unwrap_or_default()
        } else {
            results
                .variants
                .iter()
                .map(|variant| {
                    let result = &variant.stages[index];
                    vec![
                        variant.name.clone(),
                        percent(&result.old),
                        result.new.format(2, 100.0),
                        result.all.format(2, 100.0),
                        percent(&result.forgetting),
                        percent(&result.old_task_aware),
                        percent(&result.forgetting_task_aware),
                    ]
                })
                .collect()
        };
        sections.push((title, rows));
    }
    let mut widths: Vec<usize> = header.iter().map(|c| c.chars().count()).collect();
    for row in sections.iter().flat_map(|(_, rows)| rows) {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(cell.chars().count());
        }
    }
    let render = |cells: &[String]| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                let pad = widths[column] - cell.chars().count();
                if column == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string()
    };
    let seeds = results.seeds.len();
    let header_line = render(&header);
    let rule = "-".repeat(header_line.chars().count());
    let mut lines = vec![
        format!(
            "{}: {} ({} classes), {} stages, {}, {} seed{}",
            results.experiment,
            results.data.name,
            results.data.num_classes,
            results.stages.len(),
            results.architecture,
            seeds,
            if seeds == 1 { "" } else { "s" }
        ),
        String::new(),
        rule.clone(),
        header_line,
        rule,
    ];
    for (index, (title, rows)) in sections.iter().enumerate() {
        if index > 0 {
            lines.push(String::new());
        }
        lines.push(title.clone());
        lines.extend(rows.iter().map(|row| render(row)));
    }
    lines.push(String::new());
    lines.extend(
        [
            "old / new / all: test accuracy % on the earlier stages' test samples, this stage's, and both,",
            "  predicting among every class seen so far; forgetting: each earlier stage's best accuracy",
            "  minus now, averaged, in points; \"told stage\": predicting among the sample's own stage's",
            "  classes only.",
        ]
        .map(String::from),
    );
    lines.join("\n")
}

/// `0-4` for a run of consecutive classes, `0, 2, 7` otherwise.
fn class_list(classes: &[usize]) -> String {
    let consecutive = classes.windows(2).all(|w| w[1] == w[0] + 1);
    if consecutive && classes.len() > 2 {
        format!("{}-{}", classes[0], classes[classes.len() - 1])
    } else {
        classes
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(groups: Vec<f64>, sizes: Vec<usize>) -> StageRecord {
        StageRecord {
            train_samples: 10,
            groups_task_aware: groups.clone(),
            groups,
            group_sizes: sizes,
            validation_accuracy: 0.5,
            wall_time_s: 1.0,
        }
    }

    #[test]
    fn forgetting_is_the_mean_drop_from_the_best_earlier_accuracy() {
        let history = [
            record(vec![0.9], vec![10]),
            record(vec![0.7, 0.8], vec![10, 30]),
            record(vec![0.5, 0.6, 0.9], vec![10, 30, 20]),
        ];
        assert!(forgetting(&history[..1]).is_nan());
        assert!((forgetting(&history[..2]) - 0.2).abs() < 1e-12);
        // Group 1 dropped 0.4 from its best (0.9 after stage 1), group 2 by 0.2.
        assert!((forgetting(&history) - 0.3).abs() < 1e-12);
        // Old accuracy pools samples: (0.5·10 + 0.6·30) / 40.
        assert!((history[2].old() - 23.0 / 40.0).abs() < 1e-12);
        assert!((history[2].all() - 41.0 / 60.0).abs() < 1e-12);
    }

    #[test]
    fn class_lists_are_short() {
        assert_eq!(class_list(&[0, 1, 2, 3, 4]), "0-4");
        assert_eq!(class_list(&[0, 2, 7]), "0, 2, 7");
        assert_eq!(class_list(&[5, 6]), "5, 6");
    }
}

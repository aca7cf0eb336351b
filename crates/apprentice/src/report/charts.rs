//! From the report's [`View`] to chart descriptions, and the findings written above them.
//!
//! Each chart is optional: a chart whose data the results do not hold is left out with a
//! note saying why, so a reduced run still gets a report.

use super::plots::{
    Chart, DotChart, DotRow, Heatmap, HeatmapChart, Level, Line, LinePanel, PanelChart, Point,
    Reference, ScatterChart, ScatterPanel, render,
};
use super::results::{ModelResult, Role, Summary};
use super::view::{
    LearningCurve, ModelView, View, duration, mean_band, pct, percent, points, si, significant,
    times,
};

/// A chart that is not in the report, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Omission {
    /// The chart's identifier, e.g. `complexity`.
    pub chart: &'static str,
    /// Why it is left out, in one sentence.
    pub reason: String,
}

/// Every chart the results allow, in report order, and the charts left out.
pub(crate) fn build_charts(view: &View<'_>) -> (Vec<Chart>, Vec<Omission>) {
    let mut charts = Vec::new();
    let mut omitted = Vec::new();
    let mut add = |id: &'static str, outcome: Result<Chart, String>| match outcome {
        Ok(chart) => charts.push(chart),
        Err(reason) => omitted.push(Omission { chart: id, reason }),
    };
    add("knowledge", knowledge(view));
    add("learning", learning(view));
    add("cost", cost(view));
    add("complexity", complexity(view));
    add("agreement", agreement(view));
    add("confusion", confusion(view));
    // Only language-model runs have one; other runs do not list it as left out.
    if view.extensions.lm.is_some() {
        add(
            "perplexity",
            super::perplexity_chart::perplexity(view)
                .and_then(|chart| draw("perplexity", &chart.title.clone(), &chart)),
        );
    }
    (charts, omitted)
}

/// Draws a figure, turning a panic inside the drawing library into a reason, so that one
/// chart cannot take the report down.
fn draw(
    id: &'static str,
    title: &str,
    figure: &impl super::plots::Figure,
) -> Result<Chart, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render(id, title, figure))) {
        Ok(Ok(chart)) => Ok(chart),
        Ok(Err(error)) => Err(format!("the chart could not be drawn: {error}")),
        Err(_) => Err("the chart could not be drawn (the plotting library failed)".to_string()),
    }
}

/// `n seeds`, or `1 seed`.
pub(crate) fn seeds_phrase(count: usize) -> String {
    if count == 1 {
        "1 seed".to_string()
    } else {
        format!("{count} seeds")
    }
}

/// The dot row of one model's summary, in percent.
fn dot(view: &View<'_>, model: &ModelView<'_>, summary: &Summary) -> DotRow {
    let several = summary.per_seed.len() > 1;
    DotRow::Dot {
        name: model.result.name.clone(),
        color: model.color,
        mean: summary.mean * 100.0,
        std: several.then_some(summary.std * 100.0),
        seeds: summary.per_seed.iter().map(|v| v * 100.0).collect(),
        value: if view.seeds() > 0 {
            pct(summary, 1)
        } else {
            "—".to_string()
        },
    }
}

/// The headline chart: test accuracy of every model against the teacher's level.
fn knowledge(view: &View<'_>) -> Result<Chart, String> {
    if view.results.models.is_empty() {
        return Err("the results hold no models".to_string());
    }
    let mut rows = Vec::new();
    if let Some(teacher) = &view.teacher {
        rows.push(dot(view, teacher, &teacher.result.test.accuracy));
    }
    for group in &view.groups {
        rows.push(DotRow::Heading(group.title.clone()));
        for model in &group.models {
            rows.push(dot(view, model, &model.result.test.accuracy));
        }
    }
    let reference = view.teacher.as_ref().map(|teacher| {
        let accuracy = &teacher.result.test.accuracy;
        Reference {
            value: accuracy.mean * 100.0,
            spread: (accuracy.per_seed.len() > 1).then_some(accuracy.std * 100.0),
            label: format!("teacher level {}%", pct(accuracy, 1)),
        }
    });
    let spread = if view.seeds() > 1 {
        format!("mean ± std over {}", seeds_phrase(view.seeds()))
    } else {
        format!("{}, no error bars", seeds_phrase(view.seeds()))
    };
    let chart = DotChart {
        title: format!("Test accuracy: teacher, scratch and distilled students ({spread})"),
        axis: "test accuracy (%)".to_string(),
        rows,
        reference,
    };
    draw("knowledge", &chart.title.clone(), &chart)
}

/// Validation accuracy per epoch, one panel per label fraction.
fn learning(view: &View<'_>) -> Result<Chart, String> {
    let mut panels = Vec::new();
    for group in &view.groups {
        let mut lines = Vec::new();
        for model in &group.models {
            let curve = view.learning_curve(model.result);
            if curve.mean.iter().all(|v| !v.is_finite()) {
                continue;
            }
            lines.push(learning_line(view, model, &curve));
        }
        if lines.is_empty() {
            continue;
        }
        let mut levels = Vec::new();
        if let Some(teacher) = &view.teacher {
            let value = teacher.result.validation_accuracy.mean * 100.0;
            levels.push(Level {
                value,
                label: format!("teacher {}%", significant(value, 3)),
                dense: false,
            });
        }
        if view.threshold.is_finite() {
            levels.push(Level {
                value: view.threshold * 100.0,
                label: format!(
                    "threshold: {}% of {} = {}%",
                    percent(view.threshold_fraction),
                    view.threshold_reference.trim_end_matches("'s"),
                    significant(view.threshold * 100.0, 3)
                ),
                dense: true,
            });
        }
        panels.push(LinePanel {
            title: group.title.clone(),
            lines,
            levels,
        });
    }
    if panels.is_empty() {
        return Err("no student has a per-epoch validation curve".to_string());
    }
    let band = if view.seeds() > 1 {
        format!(
            "mean over {}, band: lowest to highest seed",
            seeds_phrase(view.seeds())
        )
    } else {
        seeds_phrase(view.seeds())
    };
    let chart = PanelChart {
        x_axis: "epoch".to_string(),
        title: format!("Learning speed: validation accuracy per epoch ({band})"),
        y_axis: "validation accuracy (%)".to_string(),
        percent: true,
        legend_low: true,
        log_y: false,
        panels,
    };
    draw("learning", &chart.title.clone(), &chart)
}

fn learning_line(view: &View<'_>, model: &ModelView<'_>, curve: &LearningCurve) -> Line {
    let epochs = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64, v * 100.0))
            .collect()
    };
    let band = if view.seeds() > 1 {
        curve
            .low
            .iter()
            .zip(&curve.high)
            .enumerate()
            .map(|(i, (a, b))| ((i + 1) as f64, a * 100.0, b * 100.0))
            .collect()
    } else {
        Vec::new()
    };
    let label = match curve.reached_at {
        Some(epoch) => format!("{} · threshold at epoch {epoch}", model.result.name),
        None => format!("{} · never reaches the threshold", model.result.name),
    };
    Line {
        label,
        color: model.color,
        mean: epochs(&curve.mean),
        band,
        marker: curve.reached_at.map(|epoch| {
            (
                epoch as f64,
                curve.mean[epoch - 1] * 100.0,
                format!("epoch {epoch}"),
            )
        }),
    }
}

/// Accuracy against parameters, and against latency when the run was measured.
fn cost(view: &View<'_>) -> Result<Chart, String> {
    let models = view.all_models();
    if models.is_empty() {
        return Err("the results hold no models".to_string());
    }
    let point = |model: &ModelView<'_>, x: f64| Point {
        label: model.result.name.clone(),
        color: model.color,
        x,
        y: model.result.test.accuracy.mean * 100.0,
        y_err: (model.result.test.accuracy.per_seed.len() > 1)
            .then_some(model.result.test.accuracy.std * 100.0),
        emphasise: model.result.role == Role::Teacher,
    };
    let mut panels = vec![ScatterPanel {
        title: "accuracy against size".to_string(),
        x_axis: "parameters (log scale)".to_string(),
        points: models
            .iter()
            .map(|m| point(m, m.result.params as f64))
            .collect(),
    }];
    let timed: Vec<Point> = models
        .iter()
        .filter_map(|m| m.efficiency.map(|e| point(m, e.measured.latency.p50_ms)))
        .collect();
    if !timed.is_empty() {
        panels.push(ScatterPanel {
            title: "accuracy against latency (batch 1, p50)".to_string(),
            x_axis: "milliseconds per example (log scale)".to_string(),
            points: timed,
        });
    }
    let chart = ScatterChart {
        title: "Cost against accuracy: teacher and students".to_string(),
        y_axis: "test accuracy (%)".to_string(),
        panels,
    };
    draw("cost", &chart.title.clone(), &chart)
}

/// Supervision complexity per epoch, when the results record it.
fn complexity(view: &View<'_>) -> Result<Chart, String> {
    let curves = &view.extensions.supervision_complexity;
    if curves.is_empty() {
        return Err(
            "this run recorded no supervision complexity (no curve has a supervision_complexity list)"
                .to_string(),
        );
    }
    let mut panels = Vec::new();
    for group in &view.groups {
        let mut lines = Vec::new();
        for model in &group.models {
            let lists: Vec<&Vec<f64>> = curves
                .iter()
                .filter(|c| c.model == model.result.name)
                .map(|c| &c.values)
                .collect();
            if lists.is_empty() {
                continue;
            }
            let (mean, low, high) = mean_band(&lists);
            lines.push(Line {
                label: model.result.name.clone(),
                color: model.color,
                mean: mean
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i + 1) as f64, *v))
                    .collect(),
                band: if lists.len() > 1 {
                    low.iter()
                        .zip(&high)
                        .enumerate()
                        .map(|(i, (a, b))| ((i + 1) as f64, *a, *b))
                        .collect()
                } else {
                    Vec::new()
                },
                marker: None,
            });
        }
        if !lines.is_empty() {
            panels.push(LinePanel {
                title: group.title.clone(),
                lines,
                levels: Vec::new(),
            });
        }
    }
    if panels.is_empty() {
        return Err("the recorded supervision complexity belongs to no student".to_string());
    }
    let chart = PanelChart {
        x_axis: "epoch".to_string(),
        title: "Supervision complexity of the training targets per epoch (lower is easier)"
            .to_string(),
        y_axis: "supervision complexity".to_string(),
        percent: false,
        legend_low: false,
        log_y: false,
        panels,
    };
    draw("complexity", &chart.title.clone(), &chart)
}

/// How often each student predicts the teacher's class.
fn agreement(view: &View<'_>) -> Result<Chart, String> {
    let mut rows = Vec::new();
    for group in &view.groups {
        let models: Vec<DotRow> = group
            .models
            .iter()
            .filter_map(|m| {
                m.result
                    .test
                    .agreement
                    .as_ref()
                    .map(|summary| dot(view, m, summary))
            })
            .collect();
        if !models.is_empty() {
            rows.push(DotRow::Heading(group.title.clone()));
            rows.extend(models);
        }
    }
    if rows.is_empty() {
        return Err("no student has an agreement with a teacher (the run has no teacher)".into());
    }
    let chart = DotChart {
        title: format!(
            "Agreement with the teacher: test samples on which the student predicts the teacher's class ({})",
            seeds_phrase(view.seeds())
        ),
        axis: "agreement with the teacher (%)".to_string(),
        rows,
        reference: None,
    };
    draw("agreement", &chart.title.clone(), &chart)
}

/// Teacher-versus-student class matrices of the group with the fewest labels.
fn confusion(view: &View<'_>) -> Result<Chart, String> {
    let Some(section) = &view.extensions.teacher_agreement else {
        return Err(
            "the teacher–student confusion was not measured (it needs the run's checkpoints)"
                .to_string(),
        );
    };
    let matrix_of = |name: &str| section.models.iter().find(|m| m.name == name);
    // The group with the fewest labels is where the teacher's help shows most.
    let chosen: Vec<(&ModelResult, &super::extensions::AgreementMatrix)> = view
        .groups
        .iter()
        .rev()
        .map(|group| {
            let mut models: Vec<&ModelResult> = group
                .scratch()
                .map(|m| m.result)
                .into_iter()
                .chain(group.distilled().map(|m| m.result))
                .collect();
            models.truncate(3);
            models
                .into_iter()
                .filter_map(|m| matrix_of(&m.name).map(|matrix| (m, matrix)))
                .collect::<Vec<_>>()
        })
        .find(|found| !found.is_empty())
        .unwrap_or_default();
    if chosen.is_empty() {
        return Err("the measured confusion covers none of the students".to_string());
    }
    let chart = HeatmapChart {
        title: format!(
            "Teacher's class against the student's on the {} split (seed {}, {} samples)",
            section.split, section.seed, section.samples
        ),
        maps: chosen
            .iter()
            .map(|(model, matrix)| Heatmap {
                title: format!(
                    "{}: agrees on {}%",
                    model.name,
                    significant(matrix.agreement * 100.0, 3)
                ),
                matrix: matrix.matrix.clone(),
            })
            .collect(),
    };
    draw("confusion", &chart.title.clone(), &chart)
}

/// The findings that open the report, one sentence each, in plain text.
pub(crate) fn findings(view: &View<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    let teacher = view.teacher.as_ref();
    for group in &view.groups {
        let Some(best) = group.distilled().max_by(|a, b| {
            a.result
                .test
                .accuracy
                .mean
                .total_cmp(&b.result.test.accuracy.mean)
        }) else {
            continue;
        };
        let mut line = format!(
            "With {}, {} reaches {}% test accuracy",
            group.title,
            best.result.name,
            pct(&best.result.test.accuracy, 1)
        );
        if let Some(scratch) = group.scratch() {
            line.push_str(&format!(
                " against {}% for {} ({} points)",
                pct(&scratch.result.test.accuracy, 1),
                scratch.result.name,
                points(best.result.test.accuracy.mean - scratch.result.test.accuracy.mean)
            ));
            // A negative share (distillation hurt) is said by the points already.
            if let (Some(share), Some(teacher)) = (
                view.gap_closed(best.result, scratch.result)
                    .filter(|share| *share > 0.0),
                teacher,
            ) {
                line.push_str(&format!(
                    ", recovering {}% of the teacher's lead (teacher {}%)",
                    significant(share * 100.0, 2),
                    pct(&teacher.result.test.accuracy, 1)
                ));
            }
        } else if let Some(teacher) = teacher {
            line.push_str(&format!(
                " (teacher {}%)",
                pct(&teacher.result.test.accuracy, 1)
            ));
        }
        line.push('.');
        lines.push(line);

        if let Some(scratch) = group.scratch() {
            let ours = view.learning_curve(best.result);
            let theirs = view.learning_curve(scratch.result);
            let threshold = format!(
                "{}% of {} validation accuracy",
                percent(view.threshold_fraction),
                view.threshold_reference
            );
            match (ours.reached_at, theirs.reached_at) {
                (Some(a), Some(b)) => lines.push(format!(
                    "{} reaches {threshold} at epoch {a}; {} at epoch {b}.",
                    best.result.name, scratch.result.name
                )),
                (Some(a), None) => lines.push(format!(
                    "{} reaches {threshold} at epoch {a}; {} never does in {} epochs.",
                    best.result.name,
                    scratch.result.name,
                    theirs.mean.len()
                )),
                _ => {}
            }
        }
    }
    if let Some(teacher) = teacher.and_then(|t| t.efficiency) {
        // The headline student: the best distilled one with the fewest labels, whose
        // accuracy the first findings quote.
        let headline = view.groups.iter().rev().find_map(|g| {
            g.distilled()
                .filter(|m| m.efficiency.is_some_and(|e| e.ratio_to_teacher.is_some()))
                .max_by(|a, b| {
                    a.result
                        .test
                        .accuracy
                        .mean
                        .total_cmp(&b.result.test.accuracy.mean)
                })
                .and_then(|m| m.efficiency)
        });
        let student = headline.or_else(|| {
            view.groups
                .iter()
                .flat_map(|g| &g.models)
                .find_map(|m| m.efficiency.filter(|e| e.ratio_to_teacher.is_some()))
        });
        if let Some(student) = student
            && let Some(ratio) = &student.ratio_to_teacher
        {
            lines.push(format!(
                "{} ({}) has {} parameters and {} FLOPs per example than the teacher, \
                 and answers one example in {} against {} ({}).",
                student.measured.name,
                student.measured.architecture,
                times(ratio.params, "fewer", "more"),
                times(ratio.flops, "fewer", "more"),
                duration(student.measured.latency.p50_ms / 1000.0),
                duration(teacher.measured.latency.p50_ms / 1000.0),
                times(ratio.latency_p50, "faster", "slower"),
            ));
        }
    } else if let (Some(teacher), Some(student)) =
        (teacher, view.groups.iter().flat_map(|g| &g.models).next())
        && teacher.result.params > 0
    {
        lines.push(format!(
            "The student has {} parameters, the teacher {} ({}).",
            si(student.result.params as f64),
            si(teacher.result.params as f64),
            times(
                student.result.params as f64 / teacher.result.params as f64,
                "fewer",
                "more"
            )
        ));
    }
    if view.seeds() == 1 {
        lines.push(
            "One seed only: there are no error bars, and differences of a point or two may be noise."
                .to_string(),
        );
    }
    lines
}

//! The comparison table printed at the end of an experiment.

use std::cmp::Ordering;

use super::results::{DataSummary, ModelResult, Results, Role, Summary};

/// Column titles, in order; the first column is left-aligned, the others right-aligned.
const HEADER: [&str; 8] = [
    "model",
    "accuracy %",
    "NLL",
    "ECE %",
    "agreement %",
    "KL(t‖s)",
    "params",
    "train time s",
];

/// Shown in place of a metric a model does not have (agreement of the teacher with itself).
const ABSENT: &str = "—";

/// Spaces between columns.
const GAP: &str = "  ";

/// A plain-text table comparing every model of `results`, for the terminal.
///
/// Models are grouped by label fraction, most labels first, each group under a line such as
/// `all labels (100%)` or `5% of labels (54 images)`, with a blank line between groups.
/// Columns: model name, test accuracy %, NLL, ECE %, agreement with the teacher %,
/// KL(teacher ‖ model), parameter count and training seconds, each as `mean ± std` over
/// seeds (the mean alone for a single seed) and `—` where a model lacks the metric. All
/// rows share one set of column widths, so every row lines up with the header.
///
/// After the table, one line per distilled model gives its gain over the scratch model
/// trained on the same label fraction, in percentage points of accuracy and of agreement:
/// `kd-all@5%: +3.21 points vs scratch, agreement +7.50 points`. Distilled models with no
/// such scratch model get no line.
pub fn comparison_table(results: &Results) -> String {
    let groups = group_by_fraction(&results.models);
    let rows: Vec<Vec<Vec<String>>> = groups
        .iter()
        .map(|(_, models)| models.iter().map(|model| cells(model)).collect())
        .collect();

    let header: Vec<String> = HEADER.iter().map(ToString::to_string).collect();
    let mut widths: Vec<usize> = header.iter().map(|cell| width(cell)).collect();
    for row in rows.iter().flatten() {
        for (column, cell) in row.iter().enumerate() {
            widths[column] = widths[column].max(width(cell));
        }
    }
    let header_line = render(&header, &widths);

    let seeds = results.seeds.len();
    let mut lines = vec![
        format!(
            "{}: {} ({} classes), {} seed{}",
            results.experiment,
            results.data.name,
            results.data.num_classes,
            seeds,
            plural(seeds)
        ),
        String::new(),
        "-".repeat(width(&header_line)),
        header_line,
    ];
    lines.push(lines[2].clone());
    for (index, ((fraction, _), group_rows)) in groups.iter().zip(&rows).enumerate() {
        if index > 0 {
            lines.push(String::new());
        }
        lines.push(group_title(*fraction, &results.data));
        lines.extend(group_rows.iter().map(|row| render(row, &widths)));
    }

    let gains: Vec<String> = groups
        .iter()
        .flat_map(|(_, models)| gain_lines(models))
        .collect();
    if !gains.is_empty() {
        lines.push(String::new());
        lines.extend(gains);
    }
    let surpassed = results.surpassed_teacher();
    if !surpassed.is_empty() {
        lines.push(String::new());
        for student in surpassed {
            lines.push(format!(
                "surpassed the teacher: {} ({:.2}% vs {:.2}%, on {} of {} seeds)",
                student.name,
                student.accuracy * 100.0,
                student.teacher_accuracy * 100.0,
                student.seeds_above,
                student.seeds
            ));
        }
    }

    let mut table = lines.join("\n");
    table.push('\n');
    table
}

/// Models grouped by exactly equal label fraction, largest fraction first, each group in
/// the order the models appear in the results.
fn group_by_fraction(models: &[ModelResult]) -> Vec<(f64, Vec<&ModelResult>)> {
    let mut groups: Vec<(f64, Vec<&ModelResult>)> = Vec::new();
    for model in models {
        let fraction = model.label_fraction;
        // Fractions come from the same configuration values, so exact comparison groups them.
        match groups
            .iter_mut()
            .find(|(f, _)| f.total_cmp(&fraction) == Ordering::Equal)
        {
            Some((_, group)) => group.push(model),
            None => groups.push((fraction, vec![model])),
        }
    }
    // A stable sort keeps first-appearance order within equal fractions.
    groups.sort_by(|a, b| b.0.total_cmp(&a.0));
    groups
}

/// The cells of one model's row, in [`HEADER`] order.
fn cells(model: &ModelResult) -> Vec<String> {
    let optional = |summary: &Option<Summary>, digits, scale| {
        summary
            .as_ref()
            .map_or_else(|| ABSENT.to_string(), |s| s.format(digits, scale))
    };
    vec![
        model.name.clone(),
        model.test.accuracy.format(2, 100.0),
        model.test.nll.format(3, 1.0),
        model.test.ece.format(2, 100.0),
        optional(&model.test.agreement, 2, 100.0),
        optional(&model.test.kl_from_teacher, 3, 1.0),
        super::view::thousands(model.params as u64),
        model.train_time_s.format(1, 1.0),
    ]
}

/// One table line: the first cell padded on the right, the others on the left.
fn render(cells: &[String], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(column, (cell, &width))| {
            if column == 0 {
                format!("{cell:<width$}")
            } else {
                format!("{cell:>width$}")
            }
        })
        .collect::<Vec<_>>()
        .join(GAP)
}

/// Display width of `text`: its character count, since `±`, `—` and `‖` are one column
/// wide but several bytes long.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// `"s"` unless `count` is one.
fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// A fraction as a percentage with at most four decimals and no trailing zeros:
/// `0.05` → `"5"`, `0.125` → `"12.5"`.
fn percent(fraction: f64) -> String {
    let text = format!("{:.4}", fraction * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

/// The title of a label-fraction group, counting the labelled training samples.
fn group_title(fraction: f64, data: &DataSummary) -> String {
    if fraction >= 1.0 {
        return format!("all labels ({}%)", percent(fraction));
    }
    // `as` saturates, so a negative or NaN fraction shows as 0 rather than wrapping.
    let count = (fraction * data.train as f64).round() as usize;
    let [_, height, width] = data.sample_shape;
    let noun = if height > 1 && width > 1 {
        "image"
    } else {
        "sample"
    };
    format!(
        "{}% of labels ({count} {noun}{})",
        percent(fraction),
        plural(count)
    )
}

/// A difference in fractions as signed percentage points, never `-0.00`.
fn points(difference: f64) -> String {
    let value = difference * 100.0;
    if format!("{:.2}", value.abs()) == "0.00" {
        "+0.00".to_string()
    } else {
        format!("{value:+.2}")
    }
}

/// The gain lines of the distilled models of one label-fraction group.
fn gain_lines(models: &[&ModelResult]) -> Vec<String> {
    let Some(first_scratch) = models.iter().find(|model| model.role == Role::Scratch) else {
        return Vec::new();
    };
    models
        .iter()
        .filter(|model| model.role == Role::Distilled)
        .map(|model| {
            // Against the scratch student of the same architecture when the run has several.
            let scratch = models
                .iter()
                .find(|m| m.role == Role::Scratch && m.architecture == model.architecture)
                .unwrap_or(first_scratch);
            let accuracy = points(model.test.accuracy.mean - scratch.test.accuracy.mean);
            let mut line = format!("{}: {accuracy} points vs scratch", model.name);
            if let (Some(ours), Some(theirs)) = (&model.test.agreement, &scratch.test.agreement) {
                line.push_str(&format!(
                    ", agreement {} points",
                    points(ours.mean - theirs.mean)
                ));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::results::{Curve, SCHEMA_VERSION, TestSummary};

    /// A model whose per-seed accuracies are `accuracy`, other metrics fixed.
    fn model(role: Role, name: &str, fraction: f64, accuracy: &[f64]) -> ModelResult {
        let seeds = accuracy.len();
        let same = |value: f64| Summary::from_values(&vec![value; seeds]);
        let has_teacher = role != Role::Teacher;
        let agreement = if role == Role::Distilled { 0.97 } else { 0.9 };
        ModelResult {
            role,
            name: name.to_string(),
            method: if role == Role::Distilled { "kd" } else { "ce" }.to_string(),
            label_fraction: fraction,
            transfer: (role == Role::Distilled).then(|| "all".to_string()),
            architecture: "mlp 64-32-10".to_string(),
            params: if role == Role::Teacher {
                1_234_567
            } else {
                2_410
            },
            test: TestSummary {
                accuracy: Summary::from_values(accuracy),
                nll: same(0.125),
                ece: same(0.0321),
                agreement: has_teacher.then(|| same(agreement)),
                kl_from_teacher: has_teacher.then(|| same(0.0456)),
            },
            validation_accuracy: Summary::from_values(accuracy),
            train_time_s: same(12.34),
            epochs_run: same(30.0),
            curves: vec![Curve {
                seed: 0,
                train_loss: vec![1.0],
                validation_accuracy: vec![0.5],
                learning_rate: vec![0.1],
            }],
        }
    }

    fn results(seeds: Vec<u64>, models: Vec<ModelResult>) -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            experiment: "digits-kd".to_string(),
            created_unix_s: 0,
            apprentice_version: "0.1.0".to_string(),
            seeds,
            data: DataSummary {
                name: "digits".to_string(),
                num_classes: 10,
                train: 1078,
                validation: 359,
                test: 360,
                sample_shape: [1, 8, 8],
            },
            models,
            config: serde_json::Value::Null,
        }
    }

    /// The lines of the table proper: header and model rows, without titles and gains.
    fn table_rows<'a>(table: &'a str, names: &[&str]) -> Vec<&'a str> {
        table
            .lines()
            .filter(|line| {
                line.starts_with("model") || names.iter().any(|name| line.starts_with(name))
            })
            .filter(|line| !line.contains("points vs scratch"))
            .collect()
    }

    fn assert_aligned(rows: &[&str]) {
        let header = rows[0];
        for row in rows {
            assert_eq!(
                width(row),
                width(header),
                "misaligned row:\n{row}\n{header}"
            );
            // Right-aligned columns end where their titles end.
            for title in &HEADER[1..] {
                let end = header.find(title).unwrap() + title.len();
                let column = width(&header[..end]);
                let before: String = row.chars().take(column).collect();
                assert!(!before.ends_with(' '), "column {title} ragged in:\n{row}");
            }
        }
    }

    #[test]
    fn three_seeds() {
        let models = vec![
            model(Role::Teacher, "teacher", 1.0, &[0.97, 0.98, 0.99]),
            model(Role::Scratch, "scratch@100%", 1.0, &[0.94, 0.95, 0.96]),
            model(Role::Scratch, "scratch@5%", 0.05, &[0.80, 0.81, 0.82]),
            model(Role::Distilled, "kd-all@5%", 0.05, &[0.85, 0.86, 0.87]),
            model(Role::Distilled, "kd-labelled@5%", 0.05, &[0.80, 0.80, 0.80]),
        ];
        let table = comparison_table(&results(vec![0, 1, 2], models));
        println!("{table}");
        assert!(table.starts_with("digits-kd: digits (10 classes), 3 seeds\n"));
        assert!(table.contains("\nall labels (100%)\nteacher "));
        // round(0.05 * 1078) = 54 labelled images.
        assert!(table.contains("\n\n5% of labels (54 images)\nscratch@5% "));
        assert!(table.contains("98.00 ± 1.00"), "teacher accuracy");
        assert!(table.contains("81.00 ± 1.00"), "scratch accuracy");
        assert!(table.contains("80.00 ± 0.00"), "constant accuracy");
        assert!(table.contains("0.125 ± 0.000") && table.contains("3.21 ± 0.00"));
        assert!(table.contains("97.00 ± 0.00") && table.contains("0.046 ± 0.000"));
        assert!(table.contains("1,234,567") && table.contains("2,410"));
        assert!(table.contains("12.3 ± 0.0"));
        let teacher = table.lines().find(|l| l.starts_with("teacher")).unwrap();
        assert_eq!(teacher.matches(ABSENT).count(), 2, "{teacher}");
        assert!(table.contains("\nkd-all@5%: +5.00 points vs scratch, agreement +7.00 points\n"));
        assert!(table.contains("\nkd-labelled@5%: -1.00 points vs scratch, agreement +7.00"));
        // A 100% group without distilled models gives no gain line.
        assert_eq!(table.matches("points vs scratch").count(), 2);
        let names = [
            "teacher",
            "scratch@100%",
            "scratch@5%",
            "kd-all@5%",
            "kd-labelled@5%",
        ];
        let rows = table_rows(&table, &names);
        assert_eq!(rows.len(), 6);
        assert_aligned(&rows);
    }

    #[test]
    fn one_seed() {
        let models = vec![
            model(Role::Distilled, "kd-all@10%", 0.1, &[0.9012]),
            model(Role::Teacher, "teacher", 1.0, &[0.9876]),
            model(Role::Scratch, "scratch@10%", 0.1, &[0.9012]),
            model(Role::Distilled, "kd@0.5%", 0.005, &[0.5]),
        ];
        let mut results = results(vec![7], models);
        results.data.sample_shape = [1, 1, 64];
        let table = comparison_table(&results);
        println!("{table}");
        assert!(table.starts_with("digits-kd: digits (10 classes), 1 seed\n"));
        // One seed: means only, no "± 0.00".
        assert!(!table.contains('±'), "{table}");
        assert!(table.contains(" 98.76 ") && table.contains(" 90.12 "));
        // Groups run from most to fewest labels; flat vectors are samples, not images.
        let all = table.find("all labels (100%)").unwrap();
        let ten = table.find("10% of labels (108 samples)").unwrap();
        let half = table.find("0.5% of labels (5 samples)").unwrap();
        assert!(all < ten && ten < half);
        // The distilled model listed first still sits in its group, after nothing else moved.
        assert!(table.contains("10% of labels (108 samples)\nkd-all@10% "));
        assert!(table.contains("kd-all@10%: +0.00 points vs scratch, agreement +7.00 points"));
        // No scratch model at 0.5%: no gain line for kd@0.5%.
        assert!(!table.contains("kd@0.5%:"));
        let names = ["teacher", "scratch@10%", "kd-all@10%", "kd@0.5%"];
        let rows = table_rows(&table, &names);
        assert_eq!(rows.len(), 5);
        assert_aligned(&rows);
    }

    #[test]
    fn empty_results_still_render() {
        let table = comparison_table(&results(Vec::new(), Vec::new()));
        assert!(table.contains("0 seeds") && table.contains("model"));
        assert!(!table.contains("points vs scratch"));
    }

    #[test]
    fn helpers() {
        use crate::report::view::thousands;
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(percent(1.0), "100");
        assert_eq!(percent(0.05), "5");
        assert_eq!(percent(0.125), "12.5");
        assert_eq!(points(-0.00001), "+0.00");
        assert_eq!(points(0.0321), "+3.21");
        assert_eq!(points(-0.5), "-50.00");
    }
}

//! `summary.md`: the report's findings and key tables in Markdown, for a README, a pull
//! request or a terminal, with the PNG charts linked.

use std::fmt::Write as _;

use super::charts::{Omission, findings, seeds_phrase};
use super::html::chart_name;
use super::plots::Chart;
use super::view::{View, bytes, duration, energy, pct, points, si, times};

/// Markdown needs `|` escaped inside table cells.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The summary document.
pub(crate) fn summary(
    view: &View<'_>,
    charts: &[Chart],
    omitted: &[Omission],
    png_dir: &str,
    efficiency_hint: &str,
) -> String {
    let results = view.results;
    let mut md = String::new();
    let _ = writeln!(md, "# {}: distillation report\n", results.experiment);
    let _ = writeln!(
        md,
        "{} ({} classes; train {}, validation {}, test {}), {}, apprentice {}. \
         Full report with all charts: [report.html](report.html).\n",
        results.data.name,
        results.data.num_classes,
        results.data.train,
        results.data.validation,
        results.data.test,
        seeds_phrase(view.seeds()),
        results.apprentice_version
    );
    let lines = findings(view);
    if !lines.is_empty() {
        md.push_str("## In short\n\n");
        for line in lines {
            let _ = writeln!(md, "- {line}");
        }
        md.push('\n');
    }

    md.push_str("## Test accuracy\n\n");
    md.push_str("| model | labels | accuracy % | vs scratch | agreement % | params |\n");
    md.push_str("|---|---|--:|--:|--:|--:|\n");
    let row = |md: &mut String, model: &super::results::ModelResult, labels: &str, vs: String| {
        let agreement = model
            .test
            .agreement
            .as_ref()
            .map_or_else(|| "—".to_string(), |s| pct(s, 1));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&model.name),
            cell(labels),
            pct(&model.test.accuracy, 1),
            vs,
            agreement,
            si(model.params as f64)
        );
    };
    if let Some(teacher) = &view.teacher {
        row(&mut md, teacher.result, "all", "—".to_string());
    }
    for group in &view.groups {
        for model in &group.models {
            let scratch = group
                .scratch_for(model.result)
                .map(|m| m.result.test.accuracy.mean);
            let vs = match scratch {
                Some(s) if model.result.role == super::results::Role::Distilled => {
                    format!("{} pts", points(model.result.test.accuracy.mean - s))
                }
                _ => "—".to_string(),
            };
            row(&mut md, model.result, &group.title, vs);
        }
    }
    md.push('\n');

    md.push_str("## Efficiency\n\n");
    match &view.extensions.efficiency {
        Some(section) => {
            let _ = writeln!(
                md,
                "Measured from the seed-{} checkpoints ({} settings). Latency at batch 1 \
                 (p50 / p95), throughput at batch {}, peak heap at batch 1 including the \
                 model; CPU time and energy per example at the large batch.\n",
                section.seed,
                section.bench,
                section
                    .models
                    .first()
                    .map_or(256, |m| m.measured.throughput.batch_size)
            );
            md.push_str(
                "| model | params | FLOPs | latency p50 / p95 | throughput | peak memory | CPU time | energy | vs teacher |\n",
            );
            md.push_str("|---|--:|--:|--:|--:|--:|--:|--:|---|\n");
            for model in &section.models {
                let m = &model.measured;
                let versus = model.ratio_to_teacher.as_ref().map_or_else(
                    || "—".to_string(),
                    |r| {
                        format!(
                            "{} params, {}",
                            times(r.params, "fewer", "more"),
                            times(r.latency_p50, "faster", "slower")
                        )
                    },
                );
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} / {} | {}/s | {} | {} | {} | {} |",
                    cell(&m.name),
                    si(m.params as f64),
                    si(m.flops.total as f64),
                    duration(m.latency.p50_ms / 1000.0),
                    duration(m.latency.p95_ms / 1000.0),
                    si(m.throughput.examples_per_s),
                    m.peak_memory_batch1_bytes()
                        .map_or_else(|| "unavailable".to_string(), bytes),
                    m.cpu.as_ref().map_or_else(
                        || "—".to_string(),
                        |c| duration(c.seconds_per_example_batch)
                    ),
                    m.energy.as_ref().map_or_else(
                        || "unavailable".to_string(),
                        |e| energy(e.joules_per_example_batch)
                    ),
                    versus
                );
            }
            if let Some(reason) = section
                .models
                .iter()
                .find_map(|m| m.measured.energy_unavailable.as_ref())
            {
                let _ = writeln!(
                    md,
                    "\nEnergy unavailable: {reason}. It is not estimated; CPU time stands in for it."
                );
            }
            md.push('\n');
        }
        None => {
            let _ = writeln!(md, "Not measured: {efficiency_hint}\n");
        }
    }

    if !charts.is_empty() {
        md.push_str("## Charts\n\n");
        for chart in charts {
            let _ = writeln!(
                md,
                "![{}]({png_dir}/{}.png)\n",
                chart_name(chart.id),
                chart.id
            );
        }
    }
    if !omitted.is_empty() {
        md.push_str("## Not in this report\n\n");
        for omission in omitted {
            let _ = writeln!(md, "- {}: {}.", chart_name(omission.chart), omission.reason);
        }
    }
    md
}

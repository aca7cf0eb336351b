//! The report page: one self-contained HTML file with the charts as inline SVG and the
//! styles inline, so that it opens offline in any browser and can be mailed as one file.

use std::fmt::Write as _;

use super::charts::{Omission, findings, seeds_phrase};
use super::plots::Chart;
use super::results::{ModelResult, Role};
use super::view::{
    View, bytes, duration, energy, pct, percent, points, si, significant, thousands, times,
};

/// What the page needs besides the view.
pub(crate) struct PageInputs<'a> {
    /// The charts, in report order.
    pub charts: &'a [Chart],
    /// Charts left out, and why.
    pub omitted: &'a [Omission],
    /// Problems met while reading the results (unreadable optional sections).
    pub warnings: &'a [String],
    /// Why there are no efficiency measurements, when there are none.
    pub efficiency_hint: &'a str,
    /// Where each chart's PNG is, relative to the page.
    pub png_dir: &'a str,
}

/// Escapes text for HTML element content and for attribute values in double quotes (the only
/// quotes this page uses, so apostrophes stay as they are).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #222; --muted: #666; --line: #e3e3e3; --teacher: #444;
        --scratch: #e69f00; --distilled: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f6f4; color: var(--ink);
       font: 15px/1.5 "DejaVu Sans", Verdana, system-ui, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header p { margin: 2px 0; color: var(--muted); }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 18px 22px; margin: 18px 0; }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead { margin-top: 0; color: var(--muted); }
ul.findings { margin: 0; padding-left: 20px; }
ul.findings li { margin: 6px 0; }
figure.chart { margin: 12px 0; }
figure.chart svg { display: block; width: 100%; height: auto; }
figure.chart figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 8px 0; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: right;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; background: #fafafa; }
tr.group td { text-align: left; font-weight: 600; color: var(--muted); background: #fcfcfc; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
          margin-right: 6px; vertical-align: baseline; }
.table-wrap { overflow-x: auto; }
.unavailable { color: var(--muted); font-style: italic; }
.arch { color: var(--muted); font-size: 11.5px; padding-left: 16px; }
.note { color: var(--muted); font-size: 13px; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 12.5px; background: #f2f2f2;
       padding: 0 3px; border-radius: 3px; }
details pre { overflow-x: auto; font-size: 12px; background: #f7f7f7; padding: 10px; }
footer { color: var(--muted); font-size: 13px; }
@media print { body { background: #fff; } section { border: none; padding: 0; } }
"#;

/// The whole page.
pub(crate) fn page(view: &View<'_>, inputs: &PageInputs<'_>) -> String {
    let results = view.results;
    let mut html = String::with_capacity(256 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"apprentice {}\">\n\
         <title>{} — apprentice report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(env!("CARGO_PKG_VERSION")),
        escape(&results.experiment)
    );
    header(&mut html, view);
    let lines = findings(view);
    if !lines.is_empty() {
        html.push_str("<section id=\"findings\">\n<h2>In short</h2>\n<ul class=\"findings\">\n");
        for line in &lines {
            let _ = writeln!(html, "<li>{}</li>", escape(line));
        }
        html.push_str("</ul>\n</section>\n");
    }
    knowledge_section(&mut html, view, inputs);
    learning_section(&mut html, view, inputs);
    cost_section(&mut html, view, inputs);
    if let Some(chart) = find(inputs, "complexity") {
        html.push_str("<section id=\"complexity\">\n<h2>Supervision complexity</h2>\n");
        html.push_str(
            "<p class=\"lead\">How hard the training targets are for the student to fit, \
             epoch by epoch, as recorded during training. Distillation is expected to give \
             targets the student finds easier than the raw labels.</p>\n",
        );
        figure(
            &mut html,
            chart,
            "Mean over the seeds that recorded it.",
            inputs,
        );
        html.push_str("</section>\n");
    }
    if let Some(chart) = find(inputs, "perplexity") {
        html.push_str("<section id=\"perplexity\">\n<h2>Language model</h2>\n");
        html.push_str(
            "<p class=\"lead\">How well each student predicts held-out text as it trains: \
             the perplexity of the next token, against the teacher's (the dashed line).</p>\n",
        );
        figure(&mut html, chart, "Mean over the seeds.", inputs);
        html.push_str("</section>\n");
    }
    agreement_section(&mut html, view, inputs);
    notes_section(&mut html, inputs);
    footer(&mut html, view, inputs);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn find<'a>(inputs: &'a PageInputs<'_>, id: &str) -> Option<&'a Chart> {
    inputs.charts.iter().find(|chart| chart.id == id)
}

/// A chart's figure: the SVG inline, its caption and a link to its PNG.
fn figure(html: &mut String, chart: &Chart, caption: &str, inputs: &PageInputs<'_>) {
    // The SVG's own size attributes stay: the style sheet scales it to the page width.
    let svg = chart
        .svg
        .replacen("<svg ", "<svg role=\"img\" focusable=\"false\" ", 1);
    let _ = write!(
        html,
        "<figure class=\"chart\" id=\"chart-{id}\" data-chart=\"{id}\" aria-label=\"{title}\">\n\
         {svg}\n<figcaption>{caption} <a href=\"{dir}/{id}.png\">PNG</a></figcaption>\n</figure>\n",
        id = chart.id,
        title = escape(&chart.title),
        caption = escape(caption),
        dir = escape(inputs.png_dir),
    );
}

fn header(html: &mut String, view: &View<'_>) {
    let results = view.results;
    let data = &results.data;
    let [channels, height, width] = data.sample_shape;
    let shape = if height > 1 && width > 1 {
        format!("{channels}×{height}×{width} images")
    } else {
        format!("{} features", channels * height * width)
    };
    let seeds: Vec<String> = results.seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        html,
        "<header>\n<h1>{}</h1>\n<p>{} · {} classes · {} · train {} / validation {} / test {}</p>\n\
         <p>{} ({}) · written {} UTC by apprentice {}</p>\n</header>\n",
        escape(&results.experiment),
        escape(&data.name),
        data.num_classes,
        shape,
        thousands(data.train as u64),
        thousands(data.validation as u64),
        thousands(data.test as u64),
        seeds_phrase(results.seeds.len()),
        escape(&seeds.join(", ")),
        date(results.created_unix_s),
        escape(&results.apprentice_version),
    );
}

/// `YYYY-mm-dd HH:MM` for a Unix time.
fn date(unix_seconds: u64) -> String {
    let stamp = crate::fsutil::utc_timestamp(unix_seconds);
    // `YYYYmmdd-HHMMSS` → `YYYY-mm-dd HH:MM`.
    if stamp.len() == 15 {
        format!(
            "{}-{}-{} {}:{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13]
        )
    } else {
        stamp
    }
}

fn swatch(color: (u8, u8, u8)) -> String {
    format!(
        "<span class=\"swatch\" style=\"background: rgb({}, {}, {})\"></span>",
        color.0, color.1, color.2
    )
}

fn knowledge_section(html: &mut String, view: &View<'_>, inputs: &PageInputs<'_>) {
    html.push_str("<section id=\"knowledge\">\n<h2>How much of the teacher's knowledge did the student get?</h2>\n");
    html.push_str(
        "<p class=\"lead\">Test accuracy of the teacher, of the student trained from scratch on \
         the labels alone, and of the same student distilled from the teacher, grouped by the \
         share of training labels the students saw.</p>\n",
    );
    if let Some(chart) = find(inputs, "knowledge") {
        let caption = if view.seeds() > 1 {
            "Dots: mean; bars: ± one standard deviation over seeds; small circles: each seed. \
             Dashed line and grey band: the teacher's level."
        } else {
            "One seed: each dot is that seed's value, without error bars. Dashed line: the \
             teacher's level."
        };
        figure(html, chart, caption, inputs);
    }
    html.push_str(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>model</th><th>test accuracy %</th>\
         <th>vs scratch</th><th>teacher's lead recovered</th><th>agreement %</th>\
         <th>KL(t‖s)</th><th>NLL</th><th>ECE %</th><th>params</th>\
         <th>train time s</th></tr></thead>\n<tbody>\n",
    );
    if let Some(teacher) = &view.teacher {
        metrics_row(html, view, teacher.result, teacher.color, None);
    }
    for group in &view.groups {
        let _ = writeln!(
            html,
            "<tr class=\"group\"><td colspan=\"10\">{}</td></tr>",
            escape(&group.title)
        );
        for model in &group.models {
            let scratch = group.scratch_for(model.result).map(|m| m.result);
            metrics_row(html, view, model.result, model.color, scratch);
        }
    }
    html.push_str("</tbody></table></div>\n");
    let _ = writeln!(
        html,
        "<p class=\"note\">Values are {}. “vs scratch”: difference in test accuracy from the \
         scratch student with the same labels, in points. “Teacher's lead recovered”: that \
         difference over the teacher's lead on the scratch student. Agreement: share of test \
         samples on which the model predicts the teacher's class.</p>",
        if view.seeds() > 1 {
            format!("mean ± std over {}", seeds_phrase(view.seeds()))
        } else {
            "from a single seed".to_string()
        }
    );
    html.push_str("</section>\n");
}

fn metrics_row(
    html: &mut String,
    view: &View<'_>,
    model: &ModelResult,
    color: (u8, u8, u8),
    scratch: Option<&ModelResult>,
) {
    let optional = |summary: &Option<super::results::Summary>, digits: usize, scale: f64| {
        summary
            .as_ref()
            .filter(|s| s.mean.is_finite())
            .map_or_else(|| "—".to_string(), |s| s.format(digits, scale))
    };
    let (versus, recovered) = match scratch {
        Some(scratch) if model.role == Role::Distilled => (
            format!(
                "{} points",
                points(model.test.accuracy.mean - scratch.test.accuracy.mean)
            ),
            view.gap_closed(model, scratch).map_or_else(
                || "—".to_string(),
                |share| format!("{}%", significant(share * 100.0, 3)),
            ),
        ),
        _ => ("—".to_string(), "—".to_string()),
    };
    let finite = |summary: &super::results::Summary, digits: usize, scale: f64| {
        if summary.mean.is_finite() {
            summary.format(digits, scale)
        } else {
            "—".to_string()
        }
    };
    let _ = writeln!(
        html,
        "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td></tr>",
        swatch(color),
        escape(&model.name),
        pct(&model.test.accuracy, 2),
        versus,
        recovered,
        optional(&model.test.agreement, 2, 100.0),
        optional(&model.test.kl_from_teacher, 3, 1.0),
        finite(&model.test.nll, 3, 1.0),
        finite(&model.test.ece, 2, 100.0),
        thousands(model.params as u64),
        finite(&model.train_time_s, 1, 1.0),
    );
}

fn learning_section(html: &mut String, view: &View<'_>, inputs: &PageInputs<'_>) {
    let chart = find(inputs, "learning");
    html.push_str("<section id=\"learning\">\n<h2>How fast did it learn?</h2>\n");
    let threshold = if view.threshold.is_finite() {
        format!(
            "{}% of {} validation accuracy ({}%)",
            percent(view.threshold_fraction),
            view.threshold_reference,
            significant(view.threshold * 100.0, 3)
        )
    } else {
        "a threshold (no reference accuracy is known)".to_string()
    };
    let _ = writeln!(
        html,
        "<p class=\"lead\">Validation accuracy after each epoch, distilled against scratch. A \
         dot marks the first epoch at which the mean curve reaches {}.</p>",
        escape(&threshold)
    );
    match chart {
        Some(chart) => figure(
            html,
            chart,
            "Lines: mean over seeds; shaded: lowest to highest seed. Dashed: the teacher's \
             validation accuracy; dotted: the threshold.",
            inputs,
        ),
        None => {
            let reason = omission(inputs, "learning");
            let _ = writeln!(html, "<p class=\"note\">No chart: {}.</p>", escape(&reason));
        }
    }
    html.push_str(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>model</th><th>threshold reached \
         at epoch (mean curve)</th><th>per seed</th><th>epochs trained</th>\
         <th>speed-up vs scratch</th></tr></thead>\n<tbody>\n",
    );
    for group in &view.groups {
        let _ = writeln!(
            html,
            "<tr class=\"group\"><td colspan=\"5\">{}</td></tr>",
            escape(&group.title)
        );
        for model in &group.models {
            let scratch_epoch = group
                .scratch_for(model.result)
                .and_then(|s| view.learning_curve(s.result).reached_at);
            let curve = view.learning_curve(model.result);
            let per_seed: Vec<String> = curve
                .reached_per_seed
                .iter()
                .map(|e| e.map_or_else(|| "never".to_string(), |e| e.to_string()))
                .collect();
            let speed_up = match (model.result.role, curve.reached_at, scratch_epoch) {
                (Role::Distilled, Some(ours), Some(theirs)) => {
                    times(ours as f64 / theirs as f64, "faster", "slower")
                }
                (Role::Distilled, Some(_), None) => "scratch never reaches it".to_string(),
                _ => "—".to_string(),
            };
            let _ = writeln!(
                html,
                "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                swatch(model.color),
                escape(&model.result.name),
                curve
                    .reached_at
                    .map_or_else(|| "never".to_string(), |e| e.to_string()),
                escape(&per_seed.join(", ")),
                curve.mean.len(),
                speed_up
            );
        }
    }
    html.push_str("</tbody></table></div>\n</section>\n");
}

fn omission(inputs: &PageInputs<'_>, id: &str) -> String {
    inputs
        .omitted
        .iter()
        .find(|o| o.chart == id)
        .map_or_else(|| "not available".to_string(), |o| o.reason.clone())
}

fn cost_section(html: &mut String, view: &View<'_>, inputs: &PageInputs<'_>) {
    html.push_str("<section id=\"cost\">\n<h2>How much cheaper is it to run?</h2>\n");
    html.push_str(
        "<p class=\"lead\">Distillation is done for efficiency, so the costs are measured: \
         size, arithmetic, time, memory and energy of each model, and each student's costs \
         against the teacher's.</p>\n",
    );
    if let Some(chart) = find(inputs, "cost") {
        let accuracy = if view.seeds() > 1 {
            "test accuracy (mean, bars ± std over seeds)"
        } else {
            "test accuracy"
        };
        figure(
            html,
            chart,
            &format!(
                "Each dot is a model: {accuracy} against its parameters and, where measured, \
                 its median batch-1 latency. Up and to the left is better."
            ),
            inputs,
        );
    }
    let Some(section) = &view.extensions.efficiency else {
        let _ = writeln!(
            html,
            "<p class=\"note\">Efficiency not measured: {}</p>",
            escape(inputs.efficiency_hint)
        );
        html.push_str("</section>\n");
        return;
    };
    html.push_str(
        "<div class=\"table-wrap\"><table>\n<thead><tr><th>model</th>\
         <th>params</th><th>file</th><th>FLOPs / example</th><th>latency p50</th>\
         <th>latency p95</th><th>throughput</th><th>peak memory</th>\
         <th>CPU / example</th><th>energy / example</th></tr></thead>\n<tbody>\n",
    );
    let mut energy_reasons: Vec<String> = Vec::new();
    let mut memory_reasons: Vec<String> = Vec::new();
    for model in &section.models {
        let m = &model.measured;
        let color = view
            .all_models()
            .iter()
            .find(|v| v.result.name == m.name)
            .map_or((120, 120, 120), |v| v.color);
        let memory = match (m.peak_memory_batch1_bytes(), &m.memory_unavailable) {
            (Some(total), _) => bytes(total),
            (None, Some(reason)) => {
                memory_reasons.push(reason.clone());
                "<span class=\"unavailable\">unavailable</span>".to_string()
            }
            (None, None) => "—".to_string(),
        };
        let energy_cell = match (&m.energy, &m.energy_unavailable) {
            (Some(e), _) => energy(e.joules_per_example_batch),
            (None, reason) => {
                if let Some(reason) = reason {
                    energy_reasons.push(reason.clone());
                }
                format!(
                    "<span class=\"unavailable\" title=\"{}\">unavailable</span>",
                    escape(reason.as_deref().unwrap_or("not measured"))
                )
            }
        };
        let _ = writeln!(
            html,
            "<tr><td>{}{}<br><span class=\"arch\">{}</span></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}/s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            swatch(color),
            escape(&m.name),
            escape(&m.architecture),
            thousands(m.params as u64),
            m.file_bytes.map_or_else(|| "—".to_string(), bytes),
            si(m.flops.total as f64),
            duration(m.latency.p50_ms / 1000.0),
            duration(m.latency.p95_ms / 1000.0),
            si(m.throughput.examples_per_s),
            memory,
            m.cpu.as_ref().map_or_else(
                || "—".to_string(),
                |c| duration(c.seconds_per_example_batch)
            ),
            energy_cell,
        );
    }
    html.push_str("</tbody></table></div>\n");

    let students: Vec<_> = section
        .models
        .iter()
        .filter_map(|m| m.ratio_to_teacher.as_ref().map(|r| (m, r)))
        .collect();
    if !students.is_empty() {
        html.push_str(
            "<h3>Each student against the teacher</h3>\n<div class=\"table-wrap\"><table>\n\
             <thead><tr><th>student</th><th>params</th><th>FLOPs</th><th>file</th>\
             <th>latency p50</th><th>throughput</th><th>peak memory</th><th>CPU time</th>\
             <th>energy</th></tr></thead>\n<tbody>\n",
        );
        for (model, ratio) in students {
            let optional = |value: Option<f64>, less: &str, more: &str| {
                value.map_or_else(|| "—".to_string(), |v| times(v, less, more))
            };
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&model.measured.name),
                times(ratio.params, "fewer", "more"),
                times(ratio.flops, "fewer", "more"),
                optional(ratio.file_bytes, "smaller", "larger"),
                times(ratio.latency_p50, "faster", "slower"),
                // Throughput: a ratio above 1 is the good direction, unlike the others.
                times(1.0 / ratio.throughput, "higher", "lower"),
                optional(ratio.peak_memory_batch1, "less", "more"),
                optional(ratio.cpu_seconds_per_example, "less", "more"),
                optional(ratio.energy_per_example, "less", "more"),
            );
        }
        html.push_str("</tbody></table></div>\n");
    }

    let mut types: Vec<&String> = section
        .models
        .iter()
        .flat_map(|m| m.measured.flops.by_layer_type.keys())
        .collect();
    types.sort();
    types.dedup();
    if !types.is_empty() {
        html.push_str("<h3>FLOPs per example by layer type</h3>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>model</th>");
        for kind in &types {
            let _ = write!(html, "<th>{}</th>", escape(kind));
        }
        html.push_str("<th>total</th><th>multiply-adds</th></tr></thead>\n<tbody>\n");
        for model in &section.models {
            let flops = &model.measured.flops;
            let _ = write!(html, "<tr><td>{}</td>", escape(&model.measured.name));
            for kind in &types {
                let value = flops.by_layer_type.get(*kind).copied().unwrap_or(0);
                let _ = write!(html, "<td>{}</td>", thousands(value));
            }
            let _ = writeln!(
                html,
                "<td>{}</td><td>{}</td></tr>",
                thousands(flops.total),
                thousands(flops.multiply_adds)
            );
        }
        html.push_str("</tbody></table></div>\n");
    }

    let first = section.models.first().map(|m| &m.measured);
    let environment = first.map_or_else(String::new, |m| {
        format!(
            "{} device, {} hardware thread{}{}",
            m.environment.device,
            m.environment.threads,
            if m.environment.threads == 1 { "" } else { "s" },
            m.environment
                .cpu_model
                .as_ref()
                .map_or_else(String::new, |model| format!(", {model}"))
        )
    });
    let (latency_runs, batch) =
        first.map_or((0, 256), |m| (m.latency.runs, m.throughput.batch_size));
    let _ = writeln!(
        html,
        "<p class=\"note\">Measured from the checkpoints of seed {} with the {} benchmark \
         settings on {}. One call copies the input in, runs the forward pass and copies the \
         logits out. Latency: batch of 1, after a warm-up, p50 and p95 over many calls \
         ({} for the first model). Throughput: batch of {}, examples per second from the \
         median call. FLOPs are counted from the architecture (a multiply-add is 2). Peak \
         memory: heap held by the loaded model plus the most extra heap in use during one \
         batch-1 inference, counted exactly by apprentice's counting allocator (every heap \
         allocation of the process; not stack, GPU memory or allocator overhead). CPU time \
         and energy are per example at batch {}; CPU time covers every thread of the \
         process, and RAPL energy the whole processor package.</p>",
        section.seed,
        escape(&section.bench),
        escape(&environment),
        latency_runs,
        batch,
        batch,
    );
    let mut architectures: Vec<&str> = section
        .models
        .iter()
        .map(|m| m.measured.architecture.as_str())
        .collect();
    let count = architectures.len();
    architectures.sort_unstable();
    architectures.dedup();
    if architectures.len() < count {
        html.push_str(
            "<p class=\"note\">Models of one architecture cost the same by construction \
             (parameters and FLOPs are equal); differences in their measured times show the \
             measurement's noise on this machine.</p>\n",
        );
    }
    energy_reasons.dedup();
    memory_reasons.dedup();
    for reason in energy_reasons {
        let _ = writeln!(
            html,
            "<p class=\"note\">Energy unavailable: {}. It is not estimated; CPU time stands \
             in for it.</p>",
            escape(&reason)
        );
    }
    for reason in memory_reasons {
        let _ = writeln!(
            html,
            "<p class=\"note\">Peak memory unavailable: {}.</p>",
            escape(&reason)
        );
    }
    html.push_str("</section>\n");
}

fn agreement_section(html: &mut String, view: &View<'_>, inputs: &PageInputs<'_>) {
    let agreement = find(inputs, "agreement");
    let confusion = find(inputs, "confusion");
    if agreement.is_none() && confusion.is_none() {
        return;
    }
    html.push_str(
        "<section id=\"agreement\">\n<h2>Does the student think like the teacher?</h2>\n",
    );
    html.push_str(
        "<p class=\"lead\">Distillation transfers the teacher's function, not only its \
         accuracy: a distilled student should predict the teacher's class more often than a \
         student trained on labels, including on the samples the teacher gets wrong.</p>\n",
    );
    if let Some(chart) = agreement {
        let caption = if view.seeds() > 1 {
            "Dots: mean; bars: ± one standard deviation over seeds; small circles: each seed."
        } else {
            "One seed: no error bars."
        };
        figure(html, chart, caption, inputs);
    }
    if let Some(chart) = confusion {
        figure(
            html,
            chart,
            "Rows: the class the teacher predicts; columns: the class the student predicts. \
             Blue: agreement (the share of the teacher's class); orange: disagreement, full \
             colour from a fifth of the row. Numbers: sample counts.",
            inputs,
        );
    }
    html.push_str("</section>\n");
}

fn notes_section(html: &mut String, inputs: &PageInputs<'_>) {
    if inputs.omitted.is_empty() && inputs.warnings.is_empty() {
        return;
    }
    html.push_str("<section id=\"notes\">\n<h2>Not in this report</h2>\n<ul>\n");
    for omission in inputs.omitted {
        let _ = writeln!(
            html,
            "<li><strong>{}</strong>: {}.</li>",
            chart_name(omission.chart),
            escape(&omission.reason)
        );
    }
    for warning in inputs.warnings {
        let _ = writeln!(html, "<li>{}</li>", escape(warning));
    }
    html.push_str("</ul>\n</section>\n");
}

/// A chart's name for people.
pub(crate) fn chart_name(id: &str) -> &'static str {
    match id {
        "knowledge" => "Knowledge levels",
        "learning" => "Learning speed",
        "perplexity" => "Perplexity over training",
        "cost" => "Cost against accuracy",
        "complexity" => "Supervision complexity",
        "agreement" => "Agreement with the teacher",
        "confusion" => "Teacher–student confusion",
        _ => "Chart",
    }
}

fn footer(html: &mut String, view: &View<'_>, inputs: &PageInputs<'_>) {
    html.push_str("<footer>\n<section id=\"files\">\n<h2>Files</h2>\n<p>");
    let links: Vec<String> = inputs
        .charts
        .iter()
        .map(|chart| {
            format!(
                "<a href=\"{dir}/{id}.png\">{dir}/{id}.png</a>",
                dir = escape(inputs.png_dir),
                id = chart.id
            )
        })
        .collect();
    let _ = writeln!(
        html,
        "This page is self-contained. Beside it: <a href=\"summary.md\">summary.md</a>, {}, \
         and the run's <code>results.json</code> and <code>config.toml</code>.</p>",
        if links.is_empty() {
            "no charts".to_string()
        } else {
            links.join(", ")
        }
    );
    let config = serde_json::to_string_pretty(&view.results.config).unwrap_or_default();
    let _ = writeln!(
        html,
        "<details><summary>Configuration as run</summary><pre>{}</pre></details>\n</section>\n</footer>",
        escape(&config)
    );
}

//! The perplexity chart of a language-model run: each student's held-out perplexity over its
//! training steps (mean over seeds, the seeds' range shaded) against the teacher's.

use super::plots::{Level, Line, LinePanel, PanelChart};
use super::view::{View, mean_band};

/// The chart to draw, or why the run has none.
pub(crate) fn perplexity(view: &View<'_>) -> Result<PanelChart, String> {
    let Some(section) = &view.extensions.lm else {
        return Err("not a language-model run (results.json has no lm section)".to_string());
    };
    let color_of = |name: &str| {
        view.groups
            .iter()
            .flat_map(|group| &group.models)
            .find(|model| model.result.name == name)
            .map(|model| model.color)
    };
    let mut lines = Vec::new();
    for model in &section.models {
        let (Some(first), Some(color)) = (model.curves.first(), color_of(&model.name)) else {
            continue;
        };
        // Every seed evaluates at the same steps; the first seed's steps are the x values.
        let steps: Vec<f64> = first.steps.iter().map(|&s| s as f64).collect();
        let lists: Vec<&Vec<f64>> = model.curves.iter().map(|c| &c.perplexity).collect();
        let (mean, low, high) = mean_band(&lists);
        lines.push(Line {
            label: model.name.clone(),
            color,
            mean: steps.iter().copied().zip(mean).collect(),
            band: if lists.len() > 1 {
                steps
                    .iter()
                    .zip(low.iter().zip(&high))
                    .map(|(&x, (&a, &b))| (x, a, b))
                    .collect()
            } else {
                Vec::new()
            },
            marker: None,
        });
    }
    if lines.is_empty() {
        return Err("no student recorded a perplexity curve".to_string());
    }
    let levels = section
        .models
        .iter()
        .filter(|model| model.curves.is_empty())
        .map(|model| Level {
            value: model.perplexity.mean,
            label: format!("{} {:.1}", model.name, model.perplexity.mean),
            dense: false,
        })
        .collect();
    Ok(PanelChart {
        title: "Held-out perplexity over training (lower is better)".to_string(),
        x_axis: "training step".to_string(),
        y_axis: "perplexity (log scale)".to_string(),
        percent: false,
        legend_low: false,
        // Perplexities of students and teacher span orders of magnitude.
        log_y: true,
        panels: vec![LinePanel {
            title: "the curve's held-out texts; mean over seeds, their range shaded".to_string(),
            lines,
            levels,
        }],
    })
}

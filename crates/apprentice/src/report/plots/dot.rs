//! The dot chart: one row per model, its mean with a whisker of one standard deviation and each
//! seed's value, under an optional reference line (the teacher). Used for the knowledge chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::figure::{Figure, WIDTH, fail};
use super::pen::{GRID, INK, MUTED, Pen, label, rgb, span, text_width, tint, title};
use crate::report::view::{Rgb, significant};

/// One row of a [`DotChart`].
#[derive(Debug, Clone)]
pub(crate) enum DotRow {
    /// A group heading, e.g. `5% of labels (54 images)`.
    Heading(String),
    /// A model: values in percent.
    Dot {
        /// The model's name.
        name: String,
        /// Its colour.
        color: Rgb,
        /// Mean over seeds.
        mean: f64,
        /// Standard deviation over seeds; `None` for a single seed (no error bar).
        std: Option<f64>,
        /// Each seed's value.
        seeds: Vec<f64>,
        /// The value as written at the end of the row, e.g. `95.4 ± 1.2`.
        value: String,
    },
}

/// A reference level drawn as a vertical line across every row (the teacher's accuracy).
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    /// Position, in percent.
    pub value: f64,
    /// Half-width of the shaded band around it (the teacher's std), if any.
    pub spread: Option<f64>,
    /// Text at the top of the line.
    pub label: String,
}

/// Horizontal dot-and-whisker chart of one percentage per model.
#[derive(Debug, Clone)]
pub(crate) struct DotChart {
    /// Title drawn on top.
    pub title: String,
    /// Axis description, e.g. `test accuracy (%)`.
    pub axis: String,
    /// Rows from top to bottom.
    pub rows: Vec<DotRow>,
    /// The reference line, if any.
    pub reference: Option<Reference>,
}

impl Figure for DotChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 110 + 28 * self.rows.len().max(1) as u32 + 30)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: f64,
    ) -> Result<(), String> {
        let pen = Pen { k };
        root.fill(&WHITE).map_err(fail)?;
        title(root, pen, &self.title);
        let mut values: Vec<f64> = Vec::new();
        for row in &self.rows {
            if let DotRow::Dot {
                mean, std, seeds, ..
            } = row
            {
                values.push(*mean);
                values.extend(seeds);
                if let Some(std) = std {
                    values.push(mean - std);
                    values.push(mean + std);
                }
            }
        }
        if let Some(reference) = &self.reference {
            values.push(reference.value);
            if let Some(spread) = reference.spread {
                values.push(reference.value - spread);
                values.push(reference.value + spread);
            }
        }
        let (low, high) = span(&values, 0.08, 0.6, 0.0, 100.0);
        let rows = self.rows.len().max(1);
        let longest = self
            .rows
            .iter()
            .map(|row| match row {
                DotRow::Heading(text) => text_width(text, 12.5) - 20.0,
                DotRow::Dot { name, .. } => text_width(name, 13.0),
            })
            .fold(60.0, f64::max);
        let value_width = self
            .rows
            .iter()
            .map(|row| match row {
                DotRow::Dot { value, .. } => text_width(value, 12.5),
                DotRow::Heading(_) => 0.0,
            })
            .fold(40.0, f64::max);
        // Room above the top row for the reference line's label.
        let top = rows as f64 - 0.5 + if self.reference.is_some() { 0.8 } else { 0.1 };
        let area = root.margin(pen.px(46.0), pen.px(6.0), pen.px(14.0), pen.px(14.0));
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(pen.upx(44.0))
            .y_label_area_size(pen.upx((longest + 24.0).min(360.0)))
            .right_y_label_area_size(pen.upx(value_width + 16.0))
            .build_cartesian_2d(low..high, -0.5..top)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(10)
            .x_desc(self.axis.as_str())
            .axis_desc_style(pen.font(13.0, INK))
            .label_style(pen.font(12.0, MUTED))
            .bold_line_style(pen.line(GRID, 1.0))
            .light_line_style(TRANSPARENT)
            .axis_style(pen.line(MUTED, 1.0))
            .x_label_formatter(&|v| significant(*v, 3))
            .draw()
            .map_err(fail)?;
        let y_of = |index: usize| (rows - 1 - index) as f64;

        if let Some(reference) = &self.reference
            && reference.value.is_finite()
        {
            if let Some(spread) = reference.spread.filter(|s| s.is_finite() && *s > 0.0) {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            ((reference.value - spread).max(low), -0.5),
                            ((reference.value + spread).min(high), rows as f64 - 0.5),
                        ],
                        tint(MUTED, 0.12).filled(),
                    )))
                    .map_err(fail)?;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [
                        (reference.value, -0.5),
                        (reference.value, rows as f64 - 0.5),
                    ],
                    pen.px(7.0),
                    pen.px(5.0),
                    pen.line(MUTED, 1.5),
                ))
                .map_err(fail)?;
            let (x, y) = chart.backend_coord(&(reference.value, rows as f64 - 0.5));
            label(
                root,
                &reference.label,
                (x, y - pen.px(4.0)),
                &pen.text(12.0, MUTED, HPos::Center, VPos::Bottom),
            );
        }

        for (index, row) in self.rows.iter().enumerate() {
            let y = y_of(index);
            match row {
                DotRow::Heading(text) => {
                    // A rule above every group but the first separates the groups.
                    if index > 0 {
                        chart
                            .draw_series(LineSeries::new(
                                [(low, y + 0.5), (high, y + 0.5)],
                                pen.line(GRID, 1.0),
                            ))
                            .map_err(fail)?;
                    }
                    let (_, py) = chart.backend_coord(&(low, y));
                    label(
                        root,
                        text,
                        (pen.px(16.0), py),
                        &pen.text(12.5, MUTED, HPos::Left, VPos::Center),
                    );
                }
                DotRow::Dot {
                    name,
                    color,
                    mean,
                    std,
                    seeds,
                    value,
                } => {
                    let (left, py) = chart.backend_coord(&(low, y));
                    let (right, _) = chart.backend_coord(&(high, y));
                    label(
                        root,
                        name,
                        (left - pen.px(10.0), py),
                        &pen.text(13.0, INK, HPos::Right, VPos::Center),
                    );
                    label(
                        root,
                        value,
                        (right + pen.px(10.0), py),
                        &pen.text(12.5, *color, HPos::Left, VPos::Center),
                    );
                    if !mean.is_finite() {
                        continue;
                    }
                    let clamp = |v: f64| v.clamp(low, high);
                    if let Some(std) = std.filter(|s| s.is_finite() && *s > 0.0) {
                        let (from, to) = (clamp(mean - std), clamp(mean + std));
                        chart
                            .draw_series([
                                PathElement::new(vec![(from, y), (to, y)], pen.line(*color, 2.0)),
                                PathElement::new(
                                    vec![(from, y - 0.2), (from, y + 0.2)],
                                    pen.line(*color, 2.0),
                                ),
                                PathElement::new(
                                    vec![(to, y - 0.2), (to, y + 0.2)],
                                    pen.line(*color, 2.0),
                                ),
                            ])
                            .map_err(fail)?;
                    }
                    if seeds.len() > 1 {
                        chart
                            .draw_series(seeds.iter().filter(|v| v.is_finite()).map(|&v| {
                                Circle::new((clamp(v), y), pen.upx(3.5), pen.line(*color, 1.2))
                            }))
                            .map_err(fail)?;
                    }
                    chart
                        .draw_series([
                            Circle::new((clamp(*mean), y), pen.upx(6.5), WHITE.filled()),
                            Circle::new((clamp(*mean), y), pen.upx(5.5), rgb(*color).filled()),
                        ])
                        .map_err(fail)?;
                }
            }
        }
        Ok(())
    }
}

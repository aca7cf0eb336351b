//! Line panels: a quantity per epoch, one small panel per label fraction, with bands over
//! seeds, reference levels and marked points. Used for the learning curves.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::figure::{Figure, WIDTH, fail};
use super::pen::{GRID, INK, MUTED, Pen, label, rgb, span, tint, title};
use crate::report::view::{Rgb, significant};

/// One line of a [`LinePanel`].
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// `(epoch, value)` of the mean over seeds; non-finite values are skipped.
    pub mean: Vec<(f64, f64)>,
    /// `(epoch, lowest, highest)` over seeds, shaded when there are several seeds.
    pub band: Vec<(f64, f64, f64)>,
    /// A marked point: `(epoch, value, text)`, e.g. where the threshold is first reached.
    pub marker: Option<(f64, f64, String)>,
}

/// A horizontal reference line.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    /// Height.
    pub value: f64,
    /// Text at its right end.
    pub label: String,
    /// Long dashes (a level) or short ones (a threshold).
    pub dense: bool,
}

/// One panel of a [`PanelChart`].
#[derive(Debug, Clone)]
pub(crate) struct LinePanel {
    /// Panel title, e.g. the label-fraction group.
    pub title: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Horizontal reference lines.
    pub levels: Vec<Level>,
}

/// Small multiples of per-epoch lines sharing axis descriptions.
#[derive(Debug, Clone)]
pub(crate) struct PanelChart {
    /// Title drawn on top.
    pub title: String,
    /// The horizontal axis, e.g. `epoch` or `training step`.
    pub x_axis: String,
    /// The vertical axis, e.g. `validation accuracy (%)`.
    pub y_axis: String,
    /// Values are percentages: the vertical range stays within 0–100.
    pub percent: bool,
    /// Put the legend at the middle right (for rising curves, whose right end is high) or
    /// top right (falling ones).
    pub legend_low: bool,
    /// A logarithmic vertical axis (for values over orders of magnitude, e.g. perplexity).
    pub log_y: bool,
    /// Panels, laid out two per row.
    pub panels: Vec<LinePanel>,
}

impl LinePanel {
    /// The same panel with every value replaced by its base-10 logarithm: a linear axis over
    /// these is a logarithmic axis over the values (non-positive values become NaN, skipped).
    pub(super) fn log10(&self) -> LinePanel {
        let log = |v: f64| if v > 0.0 { v.log10() } else { f64::NAN };
        LinePanel {
            title: self.title.clone(),
            lines: self
                .lines
                .iter()
                .map(|line| Line {
                    label: line.label.clone(),
                    color: line.color,
                    mean: line.mean.iter().map(|&(x, y)| (x, log(y))).collect(),
                    band: line
                        .band
                        .iter()
                        .map(|&(x, a, b)| (x, log(a), log(b)))
                        .collect(),
                    marker: line.marker.clone().map(|(x, y, text)| (x, log(y), text)),
                })
                .collect(),
            levels: self
                .levels
                .iter()
                .map(|level| Level {
                    value: log(level.value),
                    ..level.clone()
                })
                .collect(),
        }
    }
}

impl PanelChart {
    fn columns(&self) -> usize {
        if self.panels.len() > 1 { 2 } else { 1 }
    }
}

impl Figure for PanelChart {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().max(1).div_ceil(self.columns()) as u32;
        (WIDTH, 50 + rows * 360)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: f64,
    ) -> Result<(), String> {
        let pen = Pen { k };
        root.fill(&WHITE).map_err(fail)?;
        title(root, pen, &self.title);
        let (_, body) = root.split_vertically(pen.px(44.0));
        let columns = self.columns();
        let rows = self.panels.len().max(1).div_ceil(columns);
        let cells = body.split_evenly((rows, columns));
        for (panel, cell) in self.panels.iter().zip(&cells) {
            self.draw_panel(root, cell, panel, pen)?;
        }
        Ok(())
    }
}

impl PanelChart {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        cell: &DrawingArea<DB, Shift>,
        panel: &LinePanel,
        pen: Pen,
    ) -> Result<(), String> {
        let logged;
        let panel = if self.log_y {
            logged = panel.log10();
            &logged
        } else {
            panel
        };
        let xs = || {
            panel
                .lines
                .iter()
                .flat_map(|line| line.mean.iter().map(|(x, _)| *x))
                .filter(|x| x.is_finite())
        };
        let last_epoch = xs().fold(1.0, f64::max);
        // Epochs count from 1; training steps from 0 (the initial weights).
        let x_low = xs().fold(1.0, f64::min);
        let mut values: Vec<f64> = Vec::new();
        for line in &panel.lines {
            values.extend(line.mean.iter().map(|(_, y)| *y));
            values.extend(line.band.iter().flat_map(|(_, a, b)| [*a, *b]));
        }
        values.extend(panel.levels.iter().map(|level| level.value));
        let (low, high) = if self.percent {
            span(&values, 0.06, 1.0, 0.0, 100.5)
        } else {
            span(&values, 0.08, 1e-3, f64::NEG_INFINITY, f64::INFINITY)
        };
        let x_high = if last_epoch > 1.0 { last_epoch } else { 2.0 };
        let mut chart = ChartBuilder::on(cell)
            .caption(&panel.title, pen.font(13.5, INK))
            .margin(pen.px(10.0))
            .x_label_area_size(pen.upx(40.0))
            .y_label_area_size(pen.upx(52.0))
            .build_cartesian_2d(x_low..x_high, low..high)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(self.x_axis.as_str())
            .y_desc(self.y_axis.as_str())
            .axis_desc_style(pen.font(12.5, INK))
            .label_style(pen.font(11.5, MUTED))
            .bold_line_style(pen.line(GRID, 1.0))
            .light_line_style(TRANSPARENT)
            .axis_style(pen.line(MUTED, 1.0))
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| {
                let value = if self.log_y { 10f64.powf(*v) } else { *v };
                significant(value, 3)
            })
            .draw()
            .map_err(fail)?;

        for level in &panel.levels {
            if !level.value.is_finite() {
                continue;
            }
            let (dash, gap) = if level.dense { (3.0, 3.0) } else { (8.0, 5.0) };
            let style = pen.line(MUTED, 1.3);
            let k = pen.k;
            // Named in the legend rather than beside the line, where curves would cross the
            // text.
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_low, level.value), (x_high, level.value)],
                    pen.px(dash),
                    pen.px(gap),
                    style,
                ))
                .map_err(fail)?
                .label(level.label.as_str())
                .legend(move |(x, y)| {
                    let step = ((dash + gap) * k) as i32;
                    let length = (dash * k) as i32;
                    let end = (18.0 * k) as i32;
                    let segment = |i: i32| {
                        let start = (i * step).min(end);
                        PathElement::new(vec![(start, 0), ((start + length).min(end), 0)], style)
                    };
                    EmptyElement::at((x, y)) + segment(0) + segment(1) + segment(2)
                });
        }
        for line in &panel.lines {
            let band: Vec<(f64, f64, f64)> = line
                .band
                .iter()
                .copied()
                .filter(|(x, a, b)| x.is_finite() && a.is_finite() && b.is_finite())
                .collect();
            if band.len() > 1 {
                let outline: Vec<(f64, f64)> = band
                    .iter()
                    .map(|(x, _, b)| (*x, b.min(high)))
                    .chain(band.iter().rev().map(|(x, a, _)| (*x, a.max(low))))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        tint(line.color, 0.18).filled(),
                    )))
                    .map_err(fail)?;
            }
        }
        for line in &panel.lines {
            let points: Vec<(f64, f64)> = line
                .mean
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let color = line.color;
            let k = pen.k;
            chart
                .draw_series(LineSeries::new(points.clone(), pen.line(color, 2.2)))
                .map_err(fail)?
                .label(line.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + (18.0 * k) as i32, y)],
                        rgb(color).stroke_width((3.0 * k) as u32),
                    )
                });
            if points.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(
                        points[0],
                        pen.upx(3.0),
                        rgb(color).filled(),
                    )))
                    .map_err(fail)?;
            }
        }
        for (index, line) in panel.lines.iter().enumerate() {
            let Some((x, y, text)) = &line.marker else {
                continue;
            };
            if !(x.is_finite() && y.is_finite()) {
                continue;
            }
            let y = y.clamp(low, high);
            chart
                .draw_series(DashedLineSeries::new(
                    [(*x, low), (*x, y)],
                    pen.px(2.0),
                    pen.px(3.0),
                    pen.line(line.color, 1.3),
                ))
                .map_err(fail)?;
            chart
                .draw_series([
                    Circle::new((*x, y), pen.upx(6.0), WHITE.filled()),
                    Circle::new((*x, y), pen.upx(4.5), rgb(line.color).filled()),
                ])
                .map_err(fail)?;
            let (px, py) = chart.backend_coord(&(*x, low));
            label(
                root,
                text,
                (px + pen.px(4.0), py - pen.px(6.0 + 15.0 * index as f64)),
                &pen.text(11.0, line.color, HPos::Left, VPos::Bottom),
            );
        }
        if panel.lines.iter().any(|line| !line.mean.is_empty()) {
            chart
                .configure_series_labels()
                .position(if self.legend_low {
                    // Not lower right: the threshold markers' labels sit at the bottom.
                    SeriesLabelPosition::MiddleRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .margin(pen.upx(8.0))
                .legend_area_size(pen.upx(28.0))
                .label_font(pen.font(11.5, INK))
                .background_style(WHITE.mix(0.9))
                .border_style(pen.line((200, 200, 200), 1.0))
                .draw()
                .map_err(fail)?;
        }
        Ok(())
    }
}

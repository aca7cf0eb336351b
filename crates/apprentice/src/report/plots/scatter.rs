//! Scatter panels: accuracy against a cost on a log axis, one panel per cost, with labels
//! pushed apart where they would overlap. Used for the cost chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::figure::{Figure, WIDTH, fail};
use super::pen::{GRID, INK, MUTED, Pen, label, rgb, span, text_width, tint, title};
use crate::report::view::{Rgb, significant};

/// One model in a [`ScatterPanel`].
#[derive(Debug, Clone)]
pub(crate) struct Point {
    /// Label next to the point.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// The cost (positive; log axis).
    pub x: f64,
    /// Accuracy in percent.
    pub y: f64,
    /// Standard deviation of `y` over seeds, drawn as an error bar.
    pub y_err: Option<f64>,
    /// Draw larger (the teacher).
    pub emphasise: bool,
}

/// One panel of a [`ScatterChart`].
#[derive(Debug, Clone)]
pub(crate) struct ScatterPanel {
    /// Panel title.
    pub title: String,
    /// The horizontal axis, e.g. `parameters (log scale)`.
    pub x_axis: String,
    /// Points.
    pub points: Vec<Point>,
}

/// Accuracy against costs, one panel per cost.
#[derive(Debug, Clone)]
pub(crate) struct ScatterChart {
    /// Title drawn on top.
    pub title: String,
    /// The shared vertical axis.
    pub y_axis: String,
    /// Panels, side by side.
    pub panels: Vec<ScatterPanel>,
}

impl Figure for ScatterChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 470)
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
        let cells = body.split_evenly((1, self.panels.len().max(1)));
        let all_y: Vec<f64> = self
            .panels
            .iter()
            .flat_map(|p| &p.points)
            .flat_map(|p| {
                let err = p.y_err.unwrap_or(0.0);
                [p.y - err, p.y + err]
            })
            .collect();
        // One vertical range for every panel, so that the panels can be read across.
        let (low, high) = span(&all_y, 0.1, 1.0, 0.0, 100.5);
        for (panel, cell) in self.panels.iter().zip(&cells) {
            self.draw_panel(root, cell, panel, pen, (low, high))?;
        }
        Ok(())
    }
}

impl ScatterChart {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        cell: &DrawingArea<DB, Shift>,
        panel: &ScatterPanel,
        pen: Pen,
        (low, high): (f64, f64),
    ) -> Result<(), String> {
        let points: Vec<&Point> = panel
            .points
            .iter()
            .filter(|p| p.x.is_finite() && p.x > 0.0 && p.y.is_finite())
            .collect();
        let logs: Vec<f64> = points.iter().map(|p| p.x.log10()).collect();
        let (log_low, log_high) = match (
            logs.iter().copied().reduce(f64::min),
            logs.iter().copied().reduce(f64::max),
        ) {
            (Some(a), Some(b)) => (a, b),
            _ => (0.0, 1.0),
        };
        let spread = log_high - log_low;
        // Room on the right for the labels of the largest models.
        let x_low = 10f64.powf(log_low - (0.15 * spread).max(0.3));
        let x_high = 10f64.powf(log_high + (0.3 * spread).max(0.5));
        let mut chart = ChartBuilder::on(cell)
            .caption(&panel.title, pen.font(13.5, INK))
            .margin(pen.px(12.0))
            .x_label_area_size(pen.upx(42.0))
            .y_label_area_size(pen.upx(52.0))
            .build_cartesian_2d((x_low..x_high).log_scale(), low..high)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(panel.x_axis.as_str())
            .y_desc(self.y_axis.as_str())
            .axis_desc_style(pen.font(12.5, INK))
            .label_style(pen.font(11.5, MUTED))
            .bold_line_style(pen.line(GRID, 1.0))
            .light_line_style(TRANSPARENT)
            .axis_style(pen.line(MUTED, 1.0))
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_labels(6)
            .y_label_formatter(&|v| significant(*v, 3))
            .draw()
            .map_err(fail)?;
        // plotters puts log-axis labels at powers of ten only, too few for a span of one or
        // two decades, so the ticks are 1-2-5 steps drawn here.
        for tick in log_ticks(x_low, x_high) {
            chart
                .draw_series(LineSeries::new(
                    [(tick, low), (tick, high)],
                    pen.line(GRID, 1.0),
                ))
                .map_err(fail)?;
            let (x, y) = chart.backend_coord(&(tick, low));
            let _ = root.draw(&PathElement::new(
                vec![(x, y), (x, y + pen.px(5.0))],
                pen.line(MUTED, 1.0),
            ));
            label(
                root,
                &crate::report::view::si(tick),
                (x, y + pen.px(8.0)),
                &pen.text(11.5, MUTED, HPos::Center, VPos::Top),
            );
        }
        for point in &points {
            if let Some(err) = point.y_err.filter(|e| e.is_finite() && *e > 0.0) {
                let (from, to) = ((point.y - err).max(low), (point.y + err).min(high));
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(point.x, from), (point.x, to)],
                        pen.line(point.color, 1.8),
                    )))
                    .map_err(fail)?;
            }
            let radius = if point.emphasise { 7.5 } else { 5.5 };
            chart
                .draw_series([
                    Circle::new((point.x, point.y), pen.upx(radius + 1.2), WHITE.filled()),
                    Circle::new(
                        (point.x, point.y),
                        pen.upx(radius),
                        rgb(point.color).filled(),
                    ),
                ])
                .map_err(fail)?;
        }
        // Labels right of their points, pushed apart where they would overlap.
        let (plot_x, _) = chart.plotting_area().get_pixel_range();
        let size = 11.5;
        let line_height = pen.px(14.0);
        let mut placed: Vec<(i32, i32, i32, usize)> = Vec::new();
        let mut order: Vec<(usize, (i32, i32))> = points
            .iter()
            .enumerate()
            .map(|(index, p)| (index, chart.backend_coord(&(p.x, p.y))))
            .collect();
        order.sort_by_key(|(_, (_, y))| *y);
        for (index, (px, py)) in order {
            let width = pen.px(text_width(&points[index].label, size));
            let gap = pen.px(10.0);
            // Left of the point when the label would leave the plot on the right.
            let left = if px + gap + width > plot_x.end {
                px - gap - width
            } else {
                px + gap
            };
            let mut y = py;
            for &(other_left, other_right, other_y, _) in &placed {
                let overlaps_x = left < other_right && other_left < left + width;
                if overlaps_x && (y - other_y).abs() < line_height {
                    y = other_y + line_height;
                }
            }
            placed.push((left, left + width, y, index));
            let point = points[index];
            if (y - py).abs() > pen.px(3.0) {
                let anchor = if left > px { left } else { left + width };
                let _ = root.draw(&PathElement::new(
                    vec![(px, py), (anchor, y)],
                    pen.line(tint(point.color, 0.6).into_rgb(), 1.0),
                ));
            }
            label(
                root,
                &point.label,
                (left, y),
                &pen.text(size, point.color, HPos::Left, VPos::Center),
            );
        }
        Ok(())
    }
}

/// Tick positions for a log axis over `[low, high]`: 1-2-5 steps per decade, thinned to
/// powers of ten over wide spans and filled in to every integer step over narrow ones.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low.is_finite() && high.is_finite() && low > 0.0 && high > low) {
        return Vec::new();
    }
    let ticks = |steps: &[f64]| -> Vec<f64> {
        let first = low.log10().floor() as i32;
        let last = high.log10().ceil() as i32;
        (first..=last)
            .flat_map(|decade| steps.iter().map(move |m| m * 10f64.powi(decade)))
            .filter(|t| *t >= low * (1.0 - 1e-9) && *t <= high * (1.0 + 1e-9))
            .collect()
    };
    let standard = ticks(&[1.0, 2.0, 5.0]);
    if standard.len() > 9 {
        ticks(&[1.0])
    } else if standard.len() < 3 {
        ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    } else {
        standard
    }
}

/// Converting a plotters colour back to our triple.
trait IntoRgb {
    fn into_rgb(self) -> Rgb;
}

impl IntoRgb for RGBColor {
    fn into_rgb(self) -> Rgb {
        (self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_suit_the_span() {
        assert_eq!(
            log_ticks(900.0, 200_000.0),
            vec![1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5]
        );
        assert_eq!(log_ticks(1.0, 1e9).len(), 10);
        assert_eq!(log_ticks(1.5, 4.5), vec![2.0, 3.0, 4.0]);
        assert!(log_ticks(0.0, 1.0).is_empty());
        assert!(log_ticks(f64::NAN, 1.0).is_empty());
    }
}

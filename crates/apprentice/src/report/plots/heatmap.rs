//! Heat maps of the teacher's class against a student's, agreement in blue and disagreement
//! in vermillion. Used for the confusion chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::figure::{Figure, WIDTH, fail};
use super::pen::{INK, MUTED, Pen, label, tint, title};
use crate::report::view::Rgb;

/// One matrix of a [`HeatmapChart`].
#[derive(Debug, Clone)]
pub(crate) struct Heatmap {
    /// Panel title, e.g. `kd-all@5%: agrees on 97.1%`.
    pub title: String,
    /// `matrix[t][s]`: samples the teacher puts in class `t` and the student in `s`.
    pub matrix: Vec<Vec<u64>>,
}

/// Teacher-versus-student class matrices side by side.
#[derive(Debug, Clone)]
pub(crate) struct HeatmapChart {
    /// Title drawn on top.
    pub title: String,
    /// The matrices (at most three are drawn).
    pub maps: Vec<Heatmap>,
}

/// Agreement cells in blue, disagreement in vermillion.
const AGREE: Rgb = (0, 114, 178);
const DISAGREE: Rgb = (213, 94, 0);

impl Figure for HeatmapChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, 420)
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
        let maps: Vec<&Heatmap> = self.maps.iter().take(3).collect();
        let cells = body.split_evenly((1, maps.len().max(1)));
        for (map, cell) in maps.iter().zip(&cells) {
            draw_heatmap(root, cell, map, pen)?;
        }
        Ok(())
    }
}

fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cell: &DrawingArea<DB, Shift>,
    map: &Heatmap,
    pen: Pen,
) -> Result<(), String> {
    let classes = map.matrix.len();
    if classes == 0 || map.matrix.iter().any(|row| row.len() != classes) {
        return Ok(());
    }
    let n = classes as f64;
    // Square plot: the cell's width decides, less the label areas.
    let (cell_width, cell_height) = cell.dim_in_pixel();
    let side = (cell_width as i32 - pen.px(70.0)).min(cell_height as i32 - pen.px(80.0));
    let extra_x = (cell_width as i32 - side - pen.px(70.0)).max(0) / 2;
    let area = cell.margin(0, 0, extra_x, extra_x);
    let mut chart = ChartBuilder::on(&area)
        .caption(&map.title, pen.font(13.0, INK))
        .margin(pen.px(8.0))
        .x_label_area_size(pen.upx(38.0))
        .y_label_area_size(pen.upx(44.0))
        .build_cartesian_2d(0.0..n, 0.0..n)
        .map_err(fail)?;
    let step = classes.div_ceil(10).max(1);
    let tick = move |v: &f64| {
        let index = v.floor() as usize;
        let centred = (v - v.floor() - 0.5).abs() < 1e-6;
        if centred && index.is_multiple_of(step) {
            index.to_string()
        } else {
            String::new()
        }
    };
    let flip = move |v: &f64| {
        let flipped = n - v;
        tick(&flipped)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("student's class")
        .y_desc("teacher's class")
        .axis_desc_style(pen.font(12.0, INK))
        .label_style(pen.font(11.0, MUTED))
        .axis_style(pen.line(MUTED, 1.0))
        .x_labels(classes * 2 + 1)
        .y_labels(classes * 2 + 1)
        .x_label_formatter(&tick)
        .y_label_formatter(&flip)
        .draw()
        .map_err(fail)?;
    let annotate = classes <= 12;
    for (teacher, row) in map.matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (student, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f64 / total as f64
            };
            let (color, strength) = if teacher == student {
                (AGREE, share)
            } else {
                // A fifth of a class going elsewhere is already a strong disagreement.
                (DISAGREE, (share / 0.2).min(1.0))
            };
            let fill = if count == 0 {
                RGBColor(250, 250, 250)
            } else {
                tint(color, 0.12 + 0.88 * strength)
            };
            let x = student as f64;
            let y = n - 1.0 - teacher as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    fill.filled(),
                )))
                .map_err(fail)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    pen.line((255, 255, 255), 1.0),
                )))
                .map_err(fail)?;
            if annotate && count > 0 {
                let (px, py) = chart.backend_coord(&(x + 0.5, y + 0.5));
                let ink = if strength > 0.55 {
                    (255, 255, 255)
                } else {
                    INK
                };
                label(
                    root,
                    &count.to_string(),
                    (px, py),
                    &pen.text(10.5, ink, HPos::Center, VPos::Center),
                );
            }
        }
    }
    Ok(())
}

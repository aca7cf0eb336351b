//! `complexity.png`: the study's chart, in the style of the report's charts (embedded DejaVu
//! Sans, Okabe–Ito colours, drawn at twice the nominal size).
//!
//! Up to three panels, each shown only when the study has something for it: the adjusted
//! complexity of every set of targets; the teacher's predictions against temperature, with
//! labels and random labels as reference lines; and the teacher's checkpoints against their
//! epoch, each point labelled with that checkpoint's accuracy on the subset. The adjusted
//! complexity is plotted because it is comparable across kernels; within one study it orders
//! the targets exactly as the complexity does.

use std::io::Cursor;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{StudyReport, TargetRow, TargetSource};

/// The font every label is drawn with, the one the report's charts embed.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The family name the font is registered under.
const FAMILY: &str = "apprentice-complexity-sans";

/// Pixels per nominal pixel, so that the PNG stays sharp on high-density screens.
const SCALE: f64 = 2.0;

/// Nominal size of one panel.
const PANEL: (u32, u32) = (480, 420);

const INK: RGBColor = RGBColor(34, 34, 34);
const MUTED: RGBColor = RGBColor(110, 110, 110);
const GRID: RGBColor = RGBColor(232, 232, 232);

/// Colour of each kind of targets (Okabe–Ito).
fn color(source: TargetSource) -> RGBColor {
    match source {
        TargetSource::Labels => RGBColor(68, 68, 68),
        TargetSource::Random => RGBColor(213, 94, 0),
        TargetSource::Teacher => RGBColor(0, 114, 178),
        TargetSource::TeacherCheckpoint => RGBColor(0, 158, 115),
        TargetSource::Method => RGBColor(204, 121, 167),
        TargetSource::Uniform => RGBColor(150, 130, 0),
    }
}

fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded chart font cannot be read".to_owned())
        })
        .clone()
}

fn fail(error: impl std::fmt::Display) -> String {
    error.to_string()
}

fn px(length: f64) -> i32 {
    (length * SCALE).round() as i32
}

fn upx(length: f64) -> u32 {
    (length * SCALE).round().max(1.0) as u32
}

fn font(size: f64, color: RGBColor) -> TextStyle<'static> {
    (FAMILY, size * SCALE).into_font().color(&color)
}

fn line(color: RGBColor, width: f64) -> ShapeStyle {
    color.stroke_width(upx(width))
}

/// A number in at most `digits` significant digits, for tick labels.
fn short(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 6) as usize;
    format!("{value:.decimals$}")
}

/// `[0, max]` with room above the largest finite value.
fn upper(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if max > 0.0 { max * 1.12 } else { 1.0 }
}

/// The study's chart as PNG bytes.
pub fn render_png(report: &StudyReport) -> Result<Vec<u8>, String> {
    fonts()?;
    let teacher: Vec<&TargetRow> = report
        .targets
        .iter()
        .filter(|r| r.source == TargetSource::Teacher && r.temperature.is_some())
        .collect();
    let checkpoints: Vec<&TargetRow> = report
        .targets
        .iter()
        .filter(|r| r.source == TargetSource::TeacherCheckpoint)
        .collect();
    let panels = 1 + usize::from(teacher.len() > 1) + usize::from(!checkpoints.is_empty());
    let (width, height) = (
        (f64::from(PANEL.0 * panels as u32) * SCALE) as u32,
        (f64::from(PANEL.1 + 40) * SCALE) as u32,
    );
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        // A checkpoint is named by its file, which says which student it is (`scratch`, ...).
        let student = std::path::Path::new(&report.student.source)
            .file_name()
            .filter(|_| report.student.source.ends_with(".safetensors"))
            .map_or_else(
                || report.student.source.clone(),
                |name| name.to_string_lossy().into_owned(),
            );
        let title = format!(
            "Supervision complexity: {} student ({student}) on {} inputs of {} (lower is easier)",
            report.student.architecture, report.data.subset_size, report.data.name
        );
        root.draw_text(
            &title,
            &font(15.0, INK).pos(Pos::new(HPos::Center, VPos::Top)),
            ((width / 2) as i32, px(10.0)),
        )
        .map_err(fail)?;
        let body = root.margin(px(36.0), 0, 0, 0);
        let cells = body.split_evenly((1, panels));
        let mut cells = cells.iter();
        if let Some(cell) = cells.next() {
            draw_all_targets(cell, report)?;
        }
        if teacher.len() > 1
            && let Some(cell) = cells.next()
        {
            draw_temperatures(cell, report, &teacher)?;
        }
        if !checkpoints.is_empty()
            && let Some(cell) = cells.next()
        {
            draw_checkpoints(cell, &checkpoints)?;
        }
        root.present().map_err(fail)?;
    }
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(Cursor::new(&mut bytes), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&pixels).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(bytes)
}

/// One horizontal bar per set of targets (teacher checkpoints have their own panel), first on
/// top, named on the left.
fn draw_all_targets<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    report: &StudyReport,
) -> Result<(), String> {
    let shown: Vec<&TargetRow> = report
        .targets
        .iter()
        .filter(|r| r.source != TargetSource::TeacherCheckpoint)
        .collect();
    let rows = shown.len().max(1);
    let high = upper(shown.iter().map(|r| r.measured.adjusted));
    let name_width = shown
        .iter()
        .map(|r| r.measured.name.chars().count())
        .max()
        .unwrap_or(4) as f64
        * 6.8
        + 14.0;
    let mut chart = ChartBuilder::on(cell)
        .caption("every set of targets", font(13.5, INK))
        .margin(px(10.0))
        .margin_right(px(36.0))
        .x_label_area_size(upx(40.0))
        .y_label_area_size(upx(name_width.min(240.0)))
        .build_cartesian_2d(0.0..high, 0.0..rows as f64)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("adjusted supervision complexity")
        .axis_desc_style(font(12.0, INK))
        .label_style(font(11.0, MUTED))
        .bold_line_style(line(GRID, 1.0))
        .light_line_style(TRANSPARENT)
        .axis_style(line(MUTED, 1.0))
        .x_labels(6)
        .x_label_formatter(&|v| short(*v))
        .draw()
        .map_err(fail)?;
    let (base_x, base_y) = cell.get_base_pixel();
    // Bars thinner than a few pixels would hide their colour; labels need about 14 pixels.
    let label_size = (300.0 / rows as f64).clamp(6.0, 11.0);
    for (index, row) in shown.iter().enumerate() {
        let top = (rows - index) as f64 - 0.18;
        let bottom = (rows - index - 1) as f64 + 0.18;
        let value = if row.measured.adjusted.is_finite() {
            row.measured.adjusted
        } else {
            0.0
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, bottom), (value, top)],
                color(row.source).filled(),
            )))
            .map_err(fail)?;
        let (x, y) = chart.backend_coord(&(0.0, (bottom + top) / 2.0));
        cell.draw_text(
            &row.measured.name,
            &font(label_size, INK).pos(Pos::new(HPos::Right, VPos::Center)),
            (x - px(6.0) - base_x, y - base_y),
        )
        .map_err(fail)?;
        let (x, y) = chart.backend_coord(&(value, (bottom + top) / 2.0));
        cell.draw_text(
            &short(row.measured.adjusted),
            &font(label_size.min(10.0), MUTED).pos(Pos::new(HPos::Left, VPos::Center)),
            (x + px(4.0) - base_x, y - base_y),
        )
        .map_err(fail)?;
    }
    Ok(())
}

/// The teacher's predictions against temperature (log scale), labels, random labels and the
/// uniform distribution as dashed reference levels.
fn draw_temperatures<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    report: &StudyReport,
    teacher: &[&TargetRow],
) -> Result<(), String> {
    // x is log2(T), so that the usual doubling temperatures are evenly spaced.
    let points: Vec<(f64, f64)> = teacher
        .iter()
        .filter_map(|r| Some((r.temperature?, r.measured.adjusted)))
        .filter(|(t, a)| *t > 0.0 && t.is_finite() && a.is_finite())
        .map(|(t, a)| (t.log2(), a))
        .collect();
    let levels: Vec<&TargetRow> = report
        .targets
        .iter()
        .filter(|r| {
            matches!(
                r.source,
                TargetSource::Labels | TargetSource::Random | TargetSource::Uniform
            )
        })
        .collect();
    let low_t = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let high_t = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (low_t, high_t) = if low_t < high_t {
        let pad = (high_t - low_t) * 0.06;
        (low_t - pad, high_t + pad)
    } else {
        (-1.0, 1.0)
    };
    let high = upper(
        points
            .iter()
            .map(|p| p.1)
            .chain(levels.iter().map(|r| r.measured.adjusted)),
    );
    let mut chart = ChartBuilder::on(cell)
        .caption("teacher predictions by temperature", font(13.5, INK))
        .margin(px(10.0))
        .x_label_area_size(upx(40.0))
        .y_label_area_size(upx(52.0))
        .build_cartesian_2d(low_t..high_t, 0.0..high)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc("temperature T (log scale)")
        .y_desc("adjusted complexity")
        .axis_desc_style(font(12.0, INK))
        .label_style(font(11.0, MUTED))
        .bold_line_style(line(GRID, 1.0))
        .light_line_style(TRANSPARENT)
        .axis_style(line(MUTED, 1.0))
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-6 {
                let t = 2f64.powf(v.round());
                if t >= 1.0 {
                    format!("{t:.0}")
                } else {
                    short(t)
                }
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(fail)?;
    for level in levels {
        let value = level.measured.adjusted;
        if !value.is_finite() {
            continue;
        }
        let style = line(color(level.source), 1.4);
        chart
            .draw_series(DashedLineSeries::new(
                [(low_t, value), (high_t, value)],
                px(7.0),
                px(5.0),
                style,
            ))
            .map_err(fail)?
            .label(level.measured.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + px(18.0), y)], style));
    }
    let teacher_color = color(TargetSource::Teacher);
    chart
        .draw_series(LineSeries::new(points.clone(), line(teacher_color, 2.2)))
        .map_err(fail)?
        .label("teacher softmax(z/T)")
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + px(18.0), y)], line(teacher_color, 3.0))
        });
    chart
        .draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, upx(3.5), teacher_color.filled())),
        )
        .map_err(fail)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .margin(upx(8.0))
        .legend_area_size(upx(26.0))
        .label_font(font(11.0, INK))
        .background_style(WHITE.mix(0.9))
        .border_style(line(RGBColor(200, 200, 200), 1.0))
        .draw()
        .map_err(fail)
}

/// The teacher's checkpoints against their epoch (or order), each labelled with its accuracy.
fn draw_checkpoints<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    checkpoints: &[&TargetRow],
) -> Result<(), String> {
    let by_epoch = checkpoints.iter().all(|r| r.epoch.is_some());
    let points: Vec<(f64, f64, f64)> = checkpoints
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let x = if by_epoch {
                r.epoch.unwrap_or(index + 1) as f64
            } else {
                (index + 1) as f64
            };
            (x, r.measured.adjusted, r.accuracy.unwrap_or(f64::NAN))
        })
        .filter(|(_, y, _)| y.is_finite())
        .collect();
    let last = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let high = upper(points.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(cell)
        .caption(
            "teacher checkpoints (T = 1; label: accuracy %)",
            font(13.5, INK),
        )
        .margin(px(10.0))
        .x_label_area_size(upx(40.0))
        .y_label_area_size(upx(52.0))
        .build_cartesian_2d(0.0..last + 1.0, 0.0..high)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .x_desc(if by_epoch {
            "teacher epoch"
        } else {
            "checkpoint (name order)"
        })
        .y_desc("adjusted complexity")
        .axis_desc_style(font(12.0, INK))
        .label_style(font(11.0, MUTED))
        .bold_line_style(line(GRID, 1.0))
        .light_line_style(TRANSPARENT)
        .axis_style(line(MUTED, 1.0))
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(fail)?;
    let green = color(TargetSource::TeacherCheckpoint);
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.1)),
            line(green, 2.2),
        ))
        .map_err(fail)?;
    // Every point's accuracy would crowd a long run; about eight labels are enough to read.
    let every = points.len().div_ceil(8).max(1);
    for (index, &(x, y, accuracy)) in points.iter().enumerate() {
        chart
            .draw_series(std::iter::once(Circle::new(
                (x, y),
                upx(3.5),
                green.filled(),
            )))
            .map_err(fail)?;
        if (index % every == 0 || index + 1 == points.len()) && accuracy.is_finite() {
            let (bx, by) = chart.backend_coord(&(x, y));
            cell.draw_text(
                &format!("{:.1}", accuracy * 100.0),
                &font(10.0, MUTED).pos(Pos::new(HPos::Center, VPos::Bottom)),
                (
                    bx - cell.get_base_pixel().0,
                    by - px(6.0) - cell.get_base_pixel().1,
                ),
            )
            .map_err(fail)?;
        }
    }
    Ok(())
}

//! The report's charts, each drawn twice with plotters from one description: as SVG for the
//! HTML page and as a PNG file.
//!
//! Text is laid out with DejaVu Sans embedded from `assets/fonts`, so that PNGs look the same
//! on every machine and need no system font. The SVGs name the same family first, with
//! generic fallbacks, and leave the drawing of text to the browser.
//!
//! Every chart is built from a plain description ([`DotChart`], [`PanelChart`],
//! [`ScatterChart`], [`HeatmapChart`]) whose numbers are checked for finiteness here, so that
//! odd results (NaN, a single value, a single model) give a drawable range instead of an
//! error or a panic.

use std::io::Cursor;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::view::{Rgb, significant};

/// The font every chart's text is measured (and, in PNGs, drawn) with.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The font family named in charts: the embedded font, then near-metric fallbacks a browser
/// is likely to have.
const FAMILY: &str = "DejaVu Sans, Verdana, sans-serif";

/// PNGs are drawn at twice the SVG size, so that they stay sharp on high-density screens.
pub(crate) const PNG_SCALE: u32 = 2;

/// Width of every chart in SVG pixels.
const WIDTH: u32 = 960;

/// A chart ready to embed and to save.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable identifier: `knowledge`, `learning`, `cost`, `complexity`, `agreement` or
    /// `confusion`; the PNG is saved as `<id>.png` and the page marks the figure with it.
    pub id: &'static str,
    /// What the chart shows, in one line (used as its accessible name).
    pub title: String,
    /// The chart as an SVG document.
    pub svg: String,
    /// The chart as PNG bytes.
    pub png: Vec<u8>,
}

/// Registers the embedded font under every family name plotters may ask for, once.
fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for family in [FAMILY, "sans-serif", "serif", "monospace"] {
                register_font(family, FontStyle::Normal, FONT)
                    .map_err(|_| "the embedded chart font cannot be read".to_string())?;
            }
            Ok(())
        })
        .clone()
}

/// A drawable chart description.
pub(crate) trait Figure {
    /// Size in SVG pixels.
    fn size(&self) -> (u32, u32);
    /// Draws onto `root`, with every length multiplied by `k`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, k: f64)
    -> Result<(), String>;
}

/// Draws `figure` as SVG and as PNG.
pub(crate) fn render(id: &'static str, title: &str, figure: &impl Figure) -> Result<Chart, String> {
    fonts()?;
    let (width, height) = figure.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        figure.draw(&root, 1.0)?;
        root.present().map_err(fail)?;
    }
    let (png_width, png_height) = (width * PNG_SCALE, height * PNG_SCALE);
    let mut pixels = vec![255u8; png_width as usize * png_height as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut pixels, (png_width, png_height)).into_drawing_area();
        figure.draw(&root, f64::from(PNG_SCALE))?;
        root.present().map_err(fail)?;
    }
    Ok(Chart {
        id,
        title: title.to_string(),
        svg,
        png: encode_png(&pixels, png_width, png_height)?,
    })
}

/// RGB pixels as a PNG file.
fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(Cursor::new(&mut bytes), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(pixels).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(bytes)
}

fn fail(error: impl std::fmt::Display) -> String {
    error.to_string()
}

// ---------------------------------------------------------------------------------------------
// Drawing helpers
// ---------------------------------------------------------------------------------------------

fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// `color` mixed with white: 0 gives white, 1 the colour itself.
fn tint((r, g, b): Rgb, amount: f64) -> RGBColor {
    let amount = amount.clamp(0.0, 1.0);
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * amount).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

const INK: Rgb = (34, 34, 34);
const MUTED: Rgb = (110, 110, 110);
const GRID: Rgb = (232, 232, 232);

/// Lengths and fonts at one scale.
#[derive(Clone, Copy)]
struct Pen {
    k: f64,
}

impl Pen {
    fn px(self, length: f64) -> i32 {
        (length * self.k).round() as i32
    }

    fn upx(self, length: f64) -> u32 {
        (length * self.k).round().max(0.0) as u32
    }

    fn font(self, size: f64, color: Rgb) -> TextStyle<'static> {
        (FAMILY, size * self.k).into_font().color(&rgb(color))
    }

    fn text(self, size: f64, color: Rgb, h: HPos, v: VPos) -> TextStyle<'static> {
        self.font(size, color).pos(Pos::new(h, v))
    }

    fn line(self, color: Rgb, width: f64) -> ShapeStyle {
        rgb(color).stroke_width(self.upx(width).max(1))
    }
}

/// A finite, non-empty range around `values` with `pad` added on both sides (as a share of
/// the span, at least `min_pad`), clamped to `[floor, ceiling]`.
fn span(values: &[f64], pad: f64, min_pad: f64, floor: f64, ceiling: f64) -> (f64, f64) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (low, high) = match (
        finite.iter().copied().reduce(f64::min),
        finite.iter().copied().reduce(f64::max),
    ) {
        (Some(low), Some(high)) => (low, high),
        _ => return (floor.max(0.0), ceiling.min(1.0).max(floor.max(0.0) + 1.0)),
    };
    let margin = ((high - low) * pad).max(min_pad);
    let mut low = (low - margin).max(floor);
    let mut high = (high + margin).min(ceiling);
    if high - low < 1e-9 {
        low -= min_pad.max(1e-6);
        high += min_pad.max(1e-6);
    }
    (low, high)
}

/// Draws `text` at backend pixel `at` on the whole figure, ignoring a font failure (a label
/// is not worth losing the chart over).
fn label<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    at: (i32, i32),
    style: &TextStyle,
) {
    let _ = root.draw_text(text, style, at);
}

/// Approximate width of `text` at font size `size` in the same pixels, for placing labels.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// The figure's title, centred in its top band.
fn title<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, pen: Pen, text: &str) {
    let (width, _) = root.dim_in_pixel();
    label(
        root,
        text,
        ((width / 2) as i32, pen.px(12.0)),
        &pen.text(16.0, INK, HPos::Center, VPos::Top),
    );
}

// ---------------------------------------------------------------------------------------------
// Dot chart: one row per model, mean ± std with each seed's value
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Line panels: a quantity per epoch, one panel per label fraction
// ---------------------------------------------------------------------------------------------

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
    /// The vertical axis, e.g. `validation accuracy (%)`.
    pub y_axis: String,
    /// Values are percentages: the vertical range stays within 0–100.
    pub percent: bool,
    /// Put the legend at the middle right (for rising curves, whose right end is high) or
    /// top right (falling ones).
    pub legend_low: bool,
    /// Panels, laid out two per row.
    pub panels: Vec<LinePanel>,
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
        let last_epoch = panel
            .lines
            .iter()
            .flat_map(|line| line.mean.iter().map(|(x, _)| *x))
            .filter(|x| x.is_finite())
            .fold(1.0, f64::max);
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
            .build_cartesian_2d(1.0..x_high, low..high)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
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
            .y_label_formatter(&|v| significant(*v, 3))
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
                    [(1.0, level.value), (x_high, level.value)],
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

// ---------------------------------------------------------------------------------------------
// Scatter panels: accuracy against a cost, log scale
// ---------------------------------------------------------------------------------------------

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
                &super::view::si(tick),
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

// ---------------------------------------------------------------------------------------------
// Heat maps: the teacher's class against a student's
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_finite_and_non_empty() {
        assert_eq!(span(&[], 0.1, 1.0, 0.0, 100.0), (0.0, 1.0));
        assert_eq!(span(&[f64::NAN], 0.1, 1.0, 0.0, 100.0), (0.0, 1.0));
        let (low, high) = span(&[50.0], 0.1, 1.0, 0.0, 100.0);
        assert!(low < 50.0 && high > 50.0);
        let (low, high) = span(&[100.0, 100.0], 0.1, 0.0, 0.0, 100.0);
        assert!(low < high && low.is_finite() && high.is_finite());
        let (low, high) = span(&[20.0, 80.0, f64::INFINITY], 0.1, 1.0, 0.0, 100.0);
        assert_eq!((low, high), (14.0, 86.0));
    }

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

    #[test]
    fn tints_run_from_white_to_the_colour() {
        assert_eq!(tint((0, 114, 178), 0.0), RGBColor(255, 255, 255));
        assert_eq!(tint((0, 114, 178), 1.0), RGBColor(0, 114, 178));
    }

    #[test]
    fn every_chart_kind_draws_even_when_degenerate() {
        let dot = DotChart {
            title: "t".into(),
            axis: "a".into(),
            rows: vec![
                DotRow::Heading("h".into()),
                DotRow::Dot {
                    name: "m".into(),
                    color: (1, 2, 3),
                    mean: f64::NAN,
                    std: None,
                    seeds: vec![],
                    value: "—".into(),
                },
            ],
            reference: None,
        };
        render("knowledge", "t", &dot).unwrap();
        let empty_rows = DotChart {
            rows: vec![],
            ..dot
        };
        render("knowledge", "t", &empty_rows).unwrap();
        let panels = PanelChart {
            title: "t".into(),
            y_axis: "y".into(),
            percent: true,
            legend_low: true,
            panels: vec![LinePanel {
                title: "p".into(),
                lines: vec![Line {
                    label: "l".into(),
                    color: (1, 2, 3),
                    mean: vec![(1.0, 50.0)],
                    band: vec![(1.0, 50.0, 50.0)],
                    marker: Some((1.0, 50.0, "epoch 1".into())),
                }],
                levels: vec![Level {
                    value: f64::NAN,
                    label: "x".into(),
                    dense: true,
                }],
            }],
        };
        render("learning", "t", &panels).unwrap();
        let scatter = ScatterChart {
            title: "t".into(),
            y_axis: "y".into(),
            panels: vec![ScatterPanel {
                title: "p".into(),
                x_axis: "x".into(),
                points: vec![Point {
                    label: "only".into(),
                    color: (1, 2, 3),
                    x: 10.0,
                    y: 90.0,
                    y_err: None,
                    emphasise: true,
                }],
            }],
        };
        render("cost", "t", &scatter).unwrap();
        let heat = HeatmapChart {
            title: "t".into(),
            maps: vec![
                Heatmap {
                    title: "a".into(),
                    matrix: vec![vec![3, 1], vec![0, 0]],
                },
                Heatmap {
                    title: "ragged".into(),
                    matrix: vec![vec![1], vec![]],
                },
            ],
        };
        let chart = render("confusion", "t", &heat).unwrap();
        assert!(chart.svg.starts_with("<svg"));
        assert_eq!(&chart.png[1..4], b"PNG");
    }
}

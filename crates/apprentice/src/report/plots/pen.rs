//! The drawing helpers every chart uses: colours and tints, the [`Pen`] that scales lengths and
//! fonts, value ranges that stay finite, and text placement. Separate so that the charts share
//! one look without depending on each other.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figure::FAMILY;
use crate::report::view::Rgb;

pub(super) fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// `color` mixed with white: 0 gives white, 1 the colour itself.
pub(super) fn tint((r, g, b): Rgb, amount: f64) -> RGBColor {
    let amount = amount.clamp(0.0, 1.0);
    let mix = |c: u8| (255.0 - (255.0 - f64::from(c)) * amount).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

pub(super) const INK: Rgb = (34, 34, 34);
pub(super) const MUTED: Rgb = (110, 110, 110);
pub(super) const GRID: Rgb = (232, 232, 232);

/// Lengths and fonts at one scale.
#[derive(Clone, Copy)]
pub(super) struct Pen {
    pub(super) k: f64,
}

impl Pen {
    pub(super) fn px(self, length: f64) -> i32 {
        (length * self.k).round() as i32
    }

    pub(super) fn upx(self, length: f64) -> u32 {
        (length * self.k).round().max(0.0) as u32
    }

    pub(super) fn font(self, size: f64, color: Rgb) -> TextStyle<'static> {
        (FAMILY, size * self.k).into_font().color(&rgb(color))
    }

    pub(super) fn text(self, size: f64, color: Rgb, h: HPos, v: VPos) -> TextStyle<'static> {
        self.font(size, color).pos(Pos::new(h, v))
    }

    pub(super) fn line(self, color: Rgb, width: f64) -> ShapeStyle {
        rgb(color).stroke_width(self.upx(width).max(1))
    }
}

/// A finite, non-empty range around `values` with `pad` added on both sides (as a share of
/// the span, at least `min_pad`), clamped to `[floor, ceiling]`.
pub(super) fn span(values: &[f64], pad: f64, min_pad: f64, floor: f64, ceiling: f64) -> (f64, f64) {
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
pub(super) fn label<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    at: (i32, i32),
    style: &TextStyle,
) {
    let _ = root.draw_text(text, style, at);
}

/// Approximate width of `text` at font size `size` in the same pixels, for placing labels.
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// The figure's title, centred in its top band.
pub(super) fn title<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, pen: Pen, text: &str) {
    let (width, _) = root.dim_in_pixel();
    label(
        root,
        text,
        ((width / 2) as i32, pen.px(12.0)),
        &pen.text(16.0, INK, HPos::Center, VPos::Top),
    );
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
    fn tints_run_from_white_to_the_colour() {
        assert_eq!(tint((0, 114, 178), 0.0), RGBColor(255, 255, 255));
        assert_eq!(tint((0, 114, 178), 1.0), RGBColor(0, 114, 178));
    }
}

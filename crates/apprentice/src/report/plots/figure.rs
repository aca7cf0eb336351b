//! What every chart shares: the [`Figure`] trait a chart description implements, [`render`],
//! which draws one as SVG and as PNG, the finished [`Chart`], and the embedded font and
//! common sizes. Kept apart from the charts themselves, which only describe what to draw.

use std::io::Cursor;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::register_font;

/// The font every chart's text is measured (and, in PNGs, drawn) with.
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The font family named in charts: the embedded font, then near-metric fallbacks a browser
/// is likely to have.
pub(super) const FAMILY: &str = "DejaVu Sans, Verdana, sans-serif";

/// PNGs are drawn at twice the SVG size, so that they stay sharp on high-density screens.
pub(crate) const PNG_SCALE: u32 = 2;

/// Width of every chart in SVG pixels.
pub(super) const WIDTH: u32 = 960;

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

pub(super) fn fail(error: impl std::fmt::Display) -> String {
    error.to_string()
}

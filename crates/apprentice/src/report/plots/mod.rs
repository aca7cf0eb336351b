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
//!
//! One concept per file: `figure` holds what every chart shares (the [`Figure`] trait,
//! [`render`], [`Chart`], the font), `pen` the drawing helpers, and `dot`, `panel`, `scatter`
//! and `heatmap` one kind of chart each.

mod dot;
mod figure;
mod heatmap;
mod panel;
mod pen;
mod scatter;
#[cfg(test)]
mod tests;

pub(crate) use dot::{DotChart, DotRow, Reference};
pub use figure::Chart;
pub(crate) use figure::{Figure, render};
pub(crate) use heatmap::{Heatmap, HeatmapChart};
pub(crate) use panel::{Level, Line, LinePanel, PanelChart};
pub(crate) use scatter::{Point, ScatterChart, ScatterPanel};

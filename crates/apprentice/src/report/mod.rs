//! What an experiment leaves behind and how it is shown: the versioned `results.json`, the
//! console table, and the HTML report with its charts and Markdown summary.
//!
//! [`results`] defines the file format (its schema is documented field by field there),
//! [`extensions`] its optional sections added after the run (efficiency, teacher–student
//! confusion, supervision complexity), [`measure`] makes those measurements from a run's
//! checkpoints, [`table`] renders the results for the terminal and [`render`] writes the
//! report: `report.html` (self-contained, charts as inline SVG), `summary.md` and
//! `plots/<chart>.png`. [`markdown`] and [`inline_values`] generate the documentation's tables
//! and the numbers in its prose from committed raw files.

mod charts;
pub mod complexity_curves_table;
pub mod continual_results;
pub mod continual_table;
pub mod extensions;
mod html;
pub mod inline_values;
pub mod lm_speed_table;
pub mod lm_table;
pub mod markdown;
pub mod measure;
pub mod methods_table;
mod perplexity_chart;
mod plots;
pub mod render;
pub mod replay_table;
pub mod results;
pub mod speed_ratio_table;
pub mod study_tables;
mod summary;
pub mod table;
pub mod text_tables;
pub mod tune_table;
pub mod units;
mod view;

pub use charts::Omission;
pub use extensions::{
    AgreementMatrix, ComplexityCurve, EfficiencySection, Extensions, ModelEfficiency,
    TeacherAgreementSection,
};
pub use measure::{MeasureOptions, Measurements, measure_run};
pub use plots::Chart;
pub use render::{
    LoadedRun, RenderedReport, ReportError, ReportFiles, ReportOptions, load_run, render_report,
    write_report,
};
pub use results::{
    Curve, DataSummary, ModelResult, Results, ResultsError, Role, SCHEMA_VERSION, Summary,
    TestSummary,
};
pub use table::comparison_table;

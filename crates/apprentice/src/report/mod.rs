//! What an experiment leaves behind: the versioned `results.json` and the console table.
//!
//! [`results`] defines the file format (its schema is documented field by field there) and
//! [`table`] renders it for the terminal.

pub mod results;
pub mod table;

pub use results::{
    Curve, DataSummary, ModelResult, Results, ResultsError, Role, SCHEMA_VERSION, Summary,
    TestSummary,
};
pub use table::comparison_table;

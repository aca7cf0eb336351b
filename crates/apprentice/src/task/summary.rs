//! Classification models summarised over seeds, and the [`Results`] envelope around them: the
//! one place every classification task (images, text, continual stages' students, language
//! models' token predictions) builds the rows of `results.json`.

use super::table::ModelSeeds;
use crate::distill::record::StudentRecord;
use crate::report::results::{
    DataSummary, ModelResult, Results, SCHEMA_VERSION, Summary, TestSummary,
};

/// One model's row of `results.json`: every measure as mean ± std over its seeds; its role,
/// method, label fraction, architecture and parameters as recorded on its first seed.
///
/// # Panics
/// When the model has no records (a [`ModelSeeds`] from a [`super::SeedTable`] always has one).
pub fn model_result(model: &ModelSeeds<StudentRecord>) -> ModelResult {
    let records: Vec<&StudentRecord> = model.records().collect();
    let first = records[0];
    let summary = |f: &dyn Fn(&StudentRecord) -> f64| -> Summary {
        Summary::from_values(&records.iter().map(|r| f(r)).collect::<Vec<_>>())
    };
    // Present only when every seed measured it (a teacher has no agreement with itself).
    let optional = |f: &dyn Fn(&StudentRecord) -> Option<f64>| -> Option<Summary> {
        let values: Option<Vec<f64>> = records.iter().map(|r| f(r)).collect();
        values.map(|v| Summary::from_values(&v))
    };
    ModelResult {
        role: first.role,
        name: model.name.clone(),
        method: first.method.clone(),
        label_fraction: first.label_fraction,
        transfer: first.transfer.map(|t| t.as_str().to_string()),
        architecture: first.architecture.clone(),
        params: first.params,
        test: TestSummary {
            accuracy: summary(&|r| r.metrics.accuracy),
            nll: summary(&|r| r.metrics.nll),
            ece: summary(&|r| r.metrics.ece),
            agreement: optional(&|r| r.metrics.agreement),
            kl_from_teacher: optional(&|r| r.metrics.kl_from_teacher),
        },
        validation_accuracy: summary(&|r| r.validation_accuracy),
        train_time_s: summary(&|r| r.wall_time_s),
        epochs_run: summary(&|r| r.epochs_run as f64),
        curves: records.iter().map(|r| r.curve.clone()).collect(),
    }
}

/// The `results.json` envelope of a run of this build: its schema version, apprentice version
/// and `created_unix_s`, around the run's own parts.
pub fn envelope(
    experiment: &str,
    seeds: &[u64],
    data: DataSummary,
    models: Vec<ModelResult>,
    config: serde_json::Value,
    created_unix_s: u64,
) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        experiment: experiment.to_string(),
        created_unix_s,
        apprentice_version: env!("CARGO_PKG_VERSION").to_string(),
        seeds: seeds.to_vec(),
        data,
        models,
        config,
    }
}

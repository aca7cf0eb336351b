//! The report of a language-model run: its perplexity chart and section, from the committed
//! results of the Rotten Tomatoes language-model experiment.

use std::path::Path;

use apprentice::report::{ReportOptions, load_run, write_report};

#[test]
fn a_language_model_runs_report_has_its_perplexity_chart() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/data/lm-rotten-tomatoes.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&committed, dir.path().join("results.json")).unwrap();
    let run = load_run(dir.path()).unwrap();
    assert!(run.extensions.lm.is_some(), "{:?}", run.warnings);
    let files = write_report(&run, &ReportOptions::default()).unwrap();
    assert!(dir.path().join("plots/perplexity.png").is_file());
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("<section id=\"perplexity\">"),
        "no language-model section"
    );
    assert!(
        !files.omitted.iter().any(|o| o.chart == "perplexity"),
        "{:?}",
        files.omitted
    );
}

#[test]
fn an_image_runs_report_neither_draws_nor_omits_a_perplexity_chart() {
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/data/quickstart.json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&committed, dir.path().join("results.json")).unwrap();
    let run = load_run(dir.path()).unwrap();
    let files = write_report(&run, &ReportOptions::default()).unwrap();
    assert!(!dir.path().join("plots/perplexity.png").exists());
    assert!(!files.omitted.iter().any(|o| o.chart == "perplexity"));
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(!html.contains("<section id=\"perplexity\">"));
}

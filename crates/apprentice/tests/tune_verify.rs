//! `apprentice tune --verify`'s grid: one KD run per candidate temperature, each the same as
//! a run configured with that temperature, and the table that ranks the choice.

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::distill::train::Silent;
use apprentice::experiment::tune_verify::train_temperature_grid;
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::report::tune_table::{TUNE_SCHEMA_VERSION, TuneResults, parse_tune, tune_markdown};

const TINY: &str = r#"
name = "tiny"
seeds = [0, 1]

[data]
source = "digits"

[teacher.model]
kind = "mlp"
hidden = [64]

[teacher.train]
epochs = 4

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 3

[distill]
methods = ["kd", "dist"]
auto_temperatures = [1.0, 4.0]
"#;

fn options(folder: &std::path::Path) -> RunOptions {
    RunOptions {
        run_dir: folder.to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    }
}

#[test]
fn each_candidate_is_the_kd_student_a_run_at_that_temperature_trains() {
    let config = ExperimentConfig::from_toml(TINY, "tiny.toml").expect("valid config");
    let work = tempfile::tempdir().unwrap();
    let grid = train_temperature_grid(
        &config,
        &options(work.path()),
        work.path(),
        &mut Silent::default(),
    )
    .expect("the grid trains");
    assert_eq!(
        grid.iter().map(|p| p.temperature).collect::<Vec<_>>(),
        [1.0, 4.0]
    );
    for point in &grid {
        // Only KD students: the config's other methods are not candidates.
        let names: Vec<&str> = point.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["kd"], "T = {}", point.temperature);
        let text = TINY.replace(
            "[distill]\n",
            &format!("[distill]\ntemperature = {:?}\n", point.temperature),
        );
        let direct = ExperimentConfig::from_toml(&text, "direct.toml").unwrap();
        let folder = tempfile::tempdir().unwrap();
        let results = run_experiment(&direct, &options(folder.path()), &mut Silent::default())
            .expect("the direct run succeeds");
        let kd = results.models.iter().find(|m| m.name == "kd").unwrap();
        assert_eq!(
            kd.test.accuracy.per_seed, point.models[0].test.accuracy.per_seed,
            "T = {}",
            point.temperature
        );
    }
    // Different temperatures train different students.
    assert_ne!(
        grid[0].models[0].test.accuracy.per_seed,
        grid[1].models[0].test.accuracy.per_seed
    );

    let document = TuneResults {
        schema_version: TUNE_SCHEMA_VERSION,
        experiment: "tiny".into(),
        seeds: vec![0, 1],
        choices: vec![
            serde_json::json!({"seed": 0, "chosen": 4.0}),
            serde_json::json!({"seed": 1, "chosen": 4.0}),
        ],
        grid,
    };
    let text = serde_json::to_string(&document).unwrap();
    let parsed = parse_tune(&text, "tune.json").expect("what is written reads back");
    let table = tune_markdown(&parsed);
    assert!(table.contains("| T = 4 (chosen) |"), "{table}");
    let accuracy = |i: usize| parsed.grid[i].models[0].test.accuracy.mean;
    let rank = if accuracy(1) > accuracy(0) { 1 } else { 2 };
    assert!(table.contains(&format!("| {rank} of 2 |")), "{table}");
    let wrong = text.replace(
        &format!("\"schema_version\":{TUNE_SCHEMA_VERSION}"),
        "\"schema_version\":99",
    );
    let error = parse_tune(&wrong, "tune.json").unwrap_err();
    assert!(
        error.contains("tune.json") && error.contains("99"),
        "{error}"
    );
}

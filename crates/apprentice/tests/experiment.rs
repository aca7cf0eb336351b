//! Whole experiments on small configs: determinism, the comparison's fairness, scarce labels.

use apprentice::backend::ComputeDevice;
use apprentice::config::ExperimentConfig;
use apprentice::distill::train::Silent;
use apprentice::experiment::{RunOptions, run_experiment};
use apprentice::report::results::{Results, Role};

const TINY: &str = r#"
name = "tiny"
seeds = [0, 1]

[data]
source = "digits"
label_fractions = [1.0, 0.1]

[teacher.model]
kind = "mlp"
hidden = [128]
dropout = 0.2

[teacher.train]
epochs = 8

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 4

[distill]
transfer = ["all", "labelled"]
"#;

fn run(text: &str) -> (Results, tempfile::TempDir) {
    let config = ExperimentConfig::from_toml(text, "tiny.toml").expect("valid config");
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: true,
    };
    let results =
        run_experiment(&config, &options, &mut Silent::default()).expect("the run succeeds");
    (results, folder)
}

/// results.json without the fields that measure time.
fn comparable(results: &Results) -> serde_json::Value {
    let mut value = serde_json::to_value(results).unwrap();
    value["created_unix_s"] = serde_json::Value::Null;
    for model in value["models"].as_array_mut().unwrap() {
        model["train_time_s"] = serde_json::Value::Null;
    }
    value
}

#[test]
fn a_run_produces_every_model_results_and_checkpoints() {
    let (results, folder) = run(TINY);
    let names: Vec<&str> = results.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "teacher",
            "scratch",
            "kd",
            "scratch@10%",
            "kd-all@10%",
            "kd-labelled@10%"
        ]
    );
    assert_eq!(results.seeds, [0, 1]);
    for model in &results.models {
        assert_eq!(model.test.accuracy.per_seed.len(), 2, "{}", model.name);
        assert!(
            model.test.accuracy.mean > 0.3,
            "{} learned nothing",
            model.name
        );
        assert_eq!(
            model.test.agreement.is_some(),
            model.role != Role::Teacher,
            "{}",
            model.name
        );
        assert_eq!(model.curves.len(), 2);
    }
    let teacher = &results.models[0];
    let student = &results.models[1];
    assert!(student.params * 10 <= teacher.params);
    assert!(folder.path().join("results.json").is_file());
    for seed in [0, 1] {
        for stem in [
            "teacher",
            "scratch",
            "kd",
            "scratch-at-10pct",
            "kd-all-at-10pct",
            "kd-labelled-at-10pct",
        ] {
            let file = folder
                .path()
                .join(format!("seed-{seed}/{stem}.safetensors"));
            assert!(file.is_file(), "missing {}", file.display());
        }
    }
    let text = std::fs::read_to_string(folder.path().join("results.json")).unwrap();
    let reread = Results::from_json(&text, "results.json").unwrap();
    assert_eq!(comparable(&reread), comparable(&results));
}

#[test]
fn the_same_config_and_seed_give_identical_results() {
    let (first, _a) = run(TINY);
    let (second, _b) = run(TINY);
    assert_eq!(comparable(&first), comparable(&second));
}

#[test]
fn scratch_and_distilled_students_start_from_the_same_weights() {
    // With α = 1 the KD loss is plain cross-entropy, so on the same data order a distilled
    // student must retrace the scratch student exactly: same initialisation, batches, dropout.
    let text = TINY
        .replace("[distill]", "[distill]\nalpha = 1.0")
        .replace("label_fractions = [1.0, 0.1]", "label_fractions = [1.0]");
    let (results, _folder) = run(&text);
    let scratch = results.models.iter().find(|m| m.name == "scratch").unwrap();
    let kd = results.models.iter().find(|m| m.name == "kd").unwrap();
    assert_eq!(scratch.test.accuracy.per_seed, kd.test.accuracy.per_seed);
    assert_eq!(scratch.curves[0].train_loss, kd.curves[0].train_loss);
}

#[test]
fn early_stopping_stops_and_keeps_the_best_epoch() {
    let text = TINY
        .replace(
            "[teacher.train]\nepochs = 8",
            "[teacher.train]\nepochs = 200\nearly_stopping_patience = 2",
        )
        .replace("label_fractions = [1.0, 0.1]", "label_fractions = [1.0]")
        .replace("seeds = [0, 1]", "seeds = [0]");
    let (results, _folder) = run(&text);
    let teacher = &results.models[0];
    let epochs = teacher.epochs_run.mean as usize;
    assert!(epochs < 200, "early stopping never fired");
    let curve = &teacher.curves[0].validation_accuracy;
    let best = curve.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(teacher.validation_accuracy.mean, best);
}

#[test]
fn an_absurd_learning_rate_stops_with_a_clear_error() {
    let text = TINY.replace(
        "[teacher.train]",
        "[teacher.optimizer]\noptimizer = \"sgd\"\nlr = 1e30\n\n[teacher.train]",
    );
    let config = ExperimentConfig::from_toml(&text, "tiny.toml").unwrap();
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    let error = run_experiment(&config, &options, &mut Silent::default())
        .expect_err("the run must fail")
        .to_string();
    assert!(
        error.contains("teacher") && error.contains("lower the learning rate"),
        "{error}"
    );
    assert!(
        !folder.path().join("results.json").exists(),
        "no results file may look complete"
    );
}

#[test]
fn a_teacher_loaded_from_a_checkpoint_scores_as_it_did_when_trained() {
    let single = TINY
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("label_fractions = [1.0, 0.1]", "label_fractions = [1.0]");
    let (trained, folder) = run(&single);
    let checkpoint = folder.path().join("seed-0/teacher.safetensors");
    let loading = single.replace(
        "[teacher.model]\nkind = \"mlp\"\nhidden = [128]\ndropout = 0.2\n\n[teacher.train]\nepochs = 8\n",
        &format!("[teacher]\ncheckpoint = {:?}\n", checkpoint.display().to_string()),
    );
    assert!(
        loading.contains("checkpoint"),
        "the config edit did not apply"
    );
    let (loaded, _second) = run(&loading);
    assert_eq!(loaded.models[0].method, "loaded");
    assert_eq!(
        loaded.models[0].test.accuracy.per_seed,
        trained.models[0].test.accuracy.per_seed
    );
    // The students learn from the same teacher, so they end the same.
    assert_eq!(
        loaded.models[2].test.accuracy.per_seed,
        trained.models[2].test.accuracy.per_seed
    );
}

#[test]
fn augmented_runs_teach_live_and_stay_deterministic() {
    let augmented = TINY
        .replace("seeds = [0, 1]", "seeds = [0]")
        .replace("[distill]", "[augment]\nmax_shift = 1\n\n[distill]");
    let (first, _a) = run(&augmented);
    let (second, _b) = run(&augmented);
    assert_eq!(comparable(&first), comparable(&second));
    let (plain, _c) = run(&TINY.replace("seeds = [0, 1]", "seeds = [0]"));
    let kd = |r: &Results| {
        r.models
            .iter()
            .find(|m| m.name == "kd-all@10%")
            .unwrap()
            .test
            .accuracy
            .mean
    };
    assert_ne!(kd(&first), kd(&plain), "augmentation changed nothing");
}

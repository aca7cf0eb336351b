//! Continual learning (`apprentice continual`): LwF's loss against an independent numpy
//! reference (tests/fixtures/continual/make_lwf_reference.py) and finite differences, the
//! experiment file's errors, and whole runs on the embedded digits in two stages.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar, to_host, vector};
use apprentice::distill::loss::{LogitLoss, LwfSettings, lwf_loss};
use apprentice::distill::train::Silent;
use apprentice::experiment::continual::results::StageResult;
use apprentice::experiment::continual::{
    ContinualConfig, ContinualOptions, ContinualResults, run_continual,
};
use apprentice::report::results::Summary;
use burn::tensor::Tensor;
use serde::Deserialize;

/// The tiny config the suite runs: digits 0-4, then 5-9, MLP 64-32-10, replay of 10 per class.
const TINY: &str = include_str!("../../../configs/continual-tiny.toml");

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    batch: usize,
    classes: usize,
    old_classes: Vec<usize>,
    temperature: f64,
    weight: f64,
    student: Vec<f32>,
    previous: Vec<f32>,
    labels: Vec<u32>,
    labelled: Vec<bool>,
    loss: f64,
    grad: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures/continual/lwf_reference.json"))
        .expect("fixture parses")
}

fn settings(case: &Case) -> LwfSettings {
    LwfSettings {
        temperature: case.temperature,
        weight: case.weight,
        old_classes: case.old_classes.clone(),
    }
}

/// LwF's loss and its gradient with respect to the student logits, through burn's autodiff;
/// `via_objective` goes through its `LogitLoss`, as training does.
fn loss_and_grad(
    case: &Case,
    student: &[f32],
    previous: &[f32],
    via_objective: bool,
) -> (f64, Vec<f32>) {
    let device = ComputeDevice::cpu().training();
    let s: Tensor<2> = matrix(student.to_vec(), case.batch, case.classes, &device).require_grad();
    let t = matrix(previous.to_vec(), case.batch, case.classes, &device);
    let y = class_indices(&case.labels, &device);
    let mask = (!case.labelled.iter().all(|&l| l)).then(|| {
        vector(
            case.labelled
                .iter()
                .map(|&l| if l { 1.0 } else { 0.0 })
                .collect(),
            &device,
        )
    });
    let loss = if via_objective {
        settings(case)
            .loss(s.clone(), t, y, mask, 1)
            .expect("LwF never refuses a batch")
    } else {
        lwf_loss(s.clone(), t, y, mask, &settings(case))
    };
    let value = scalar(loss.clone()) as f64;
    let grads = loss.backward();
    let grad = s
        .grad(&grads)
        .map(to_host)
        .unwrap_or_else(|| vec![0.0; student.len()]);
    (value, grad)
}

#[test]
fn lwf_loss_matches_the_numpy_reference() {
    let fixture = fixture();
    assert!(fixture.cases.len() >= 10);
    for case in &fixture.cases {
        for via_objective in [false, true] {
            let (value, grad) = loss_and_grad(case, &case.student, &case.previous, via_objective);
            assert!(
                (value - case.loss).abs() <= 1e-5 * case.loss.abs().max(1.0),
                "{}: loss {value} vs reference {}",
                case.name,
                case.loss
            );
            for (i, (&ours, &reference)) in grad.iter().zip(&case.grad).enumerate() {
                assert!(
                    (ours as f64 - reference).abs() <= 1e-5,
                    "{}: grad[{i}] {ours} vs reference {reference}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn lwf_gradient_matches_finite_differences() {
    let fixture = fixture();
    let mut checked = 0;
    // f32 central differences need a step that beats rounding; moderate logits keep the
    // curvature small at that step.
    for case in fixture
        .cases
        .iter()
        .filter(|c| c.student.iter().all(|v| v.abs() < 20.0))
    {
        let (_, grad) = loss_and_grad(case, &case.student, &case.previous, false);
        let step = 1e-2f32;
        for i in 0..case.student.len() {
            let mut plus = case.student.clone();
            plus[i] += step;
            let mut minus = case.student.clone();
            minus[i] -= step;
            let numeric = (loss_and_grad(case, &plus, &case.previous, false).0
                - loss_and_grad(case, &minus, &case.previous, false).0)
                / (2.0 * step as f64);
            assert!(
                (numeric - grad[i] as f64).abs() <= 2e-3 * (1.0 + numeric.abs()),
                "{}: d loss / d s[{i}] autodiff {} vs finite difference {numeric}",
                case.name,
                grad[i]
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "too few cases were checked: {checked}");
}

#[test]
fn lwf_ignores_the_previous_models_new_class_outputs() {
    let fixture = fixture();
    let case = fixture
        .cases
        .iter()
        .find(|c| c.name == "scattered-old")
        .expect("case present");
    let mut changed = case.previous.clone();
    for row in changed.chunks_exact_mut(case.classes) {
        for (class, value) in row.iter_mut().enumerate() {
            if !case.old_classes.contains(&class) {
                *value = -3.0 * *value + 7.0;
            }
        }
    }
    let (original, _) = loss_and_grad(case, &case.student, &case.previous, false);
    let (altered, _) = loss_and_grad(case, &case.student, &changed, false);
    assert_eq!(original, altered);
    // ... but it does follow the old classes' outputs.
    let mut old_changed = case.previous.clone();
    old_changed[case.old_classes[0]] += 3.0;
    let (moved, _) = loss_and_grad(case, &case.student, &old_changed, false);
    assert!((moved - original).abs() > 1e-3);
}

fn config_error(text: &str) -> String {
    let error = ContinualConfig::from_toml(text, "configs/bad.toml")
        .expect_err("the config must be rejected");
    let message = error.to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[test]
fn the_tiny_config_is_valid() {
    let config = ContinualConfig::from_toml(TINY, "tiny.toml").expect("valid");
    assert_eq!(config.stages.len(), 2);
    assert_eq!(config.lwf.replay, [0, 10]);
}

#[test]
fn config_errors_are_one_line_with_location_and_key() {
    let typo = TINY.replace("weight = 1.0", "wieght = 1.0");
    let message = config_error(&typo);
    let line = TINY
        .lines()
        .position(|l| l.starts_with("weight = "))
        .unwrap()
        + 1;
    assert!(
        message.starts_with(&format!("configs/bad.toml:{line}:")),
        "{message}"
    );
    assert!(
        message.contains("lwf.wieght: unknown field `wieght`"),
        "{message}"
    );

    let wrong_type = TINY.replace("epochs = 8", "epochs = \"eight\"");
    let message = config_error(&wrong_type);
    assert!(
        message.contains("student.train.epochs: invalid type: string \"eight\""),
        "{message}"
    );

    let wrong_stage = TINY.replace("classes = [5, 6, 7, 8, 9]", "classes = [\"five\"]");
    let message = config_error(&wrong_stage);
    assert!(message.contains("stages[1].classes[0]"), "{message}");
}

#[test]
fn config_values_that_make_no_sense_are_named() {
    let cases = [
        (
            TINY.replace("classes = [5, 6, 7, 8, 9]", "classes = []"),
            "stages[1].classes: expected distinct class indices",
        ),
        (
            TINY.replace("classes = [5, 6, 7, 8, 9]", "classes = [5, 5]"),
            "stages[1].classes: expected distinct class indices",
        ),
        (
            TINY.replace("classes = [5, 6, 7, 8, 9]", "classes = [4, 5]"),
            "stages[1].classes: class 4 already arrives in stages[0]",
        ),
        (
            TINY.replace("[[stages]]\nclasses = [5, 6, 7, 8, 9]\n", ""),
            "stages: expected at least two [[stages]], found 1",
        ),
        (
            TINY.replace("temperature = 2.0", "temperature = 0.0"),
            "lwf.temperature: expected a positive number",
        ),
        (
            TINY.replace("weight = 1.0", "weight = -1.0"),
            "lwf.weight: expected a number ≥ 0",
        ),
        (
            TINY.replace("replay = [0, 10]", "replay = [10, 10]"),
            "lwf.replay: expected distinct sample counts",
        ),
        (
            TINY.replace("[data]\n", "[data]\nlabel_fractions = [0.5]\n"),
            "data.label_fractions: a continual run trains on every label",
        ),
        (
            TINY.replace("epochs = 8", "epochs = 0"),
            "student.train.epochs: expected at least 1",
        ),
    ];
    for (text, expected) in cases {
        let message = config_error(&text);
        assert!(
            message.starts_with("configs/bad.toml: ") && message.contains(expected),
            "expected {expected:?}, got {message}"
        );
    }
    // Shared classes are fine when one stage's inputs are shifted.
    let shifted = TINY.replace(
        "classes = [5, 6, 7, 8, 9]",
        "classes = [0, 1, 2, 3, 4]\npermute_features = 3",
    );
    ContinualConfig::from_toml(&shifted, "shifted.toml").expect("a permuted stage may repeat");
}

fn run(text: &str, folder: &std::path::Path, save: bool) -> ContinualResults {
    let config = ContinualConfig::from_toml(text, "tiny.toml").expect("valid config");
    let options = ContinualOptions {
        run_dir: folder.to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: save,
    };
    run_continual(&config, &options, &mut Silent::default()).expect("the run succeeds")
}

fn stage(results: &ContinualResults, variant: &str, stage: usize) -> StageResult {
    results
        .variant(variant)
        .unwrap_or_else(|| panic!("variant {variant} missing"))
        .stages[stage - 1]
        .clone()
}

/// Everything but the timings, which differ between runs.
fn without_times(results: &ContinualResults) -> Vec<Vec<StageResult>> {
    results
        .variants
        .iter()
        .map(|v| {
            v.stages
                .iter()
                .map(|s| StageResult {
                    train_time_s: Summary::from_values(&[]),
                    ..s.clone()
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_tiny_run_reports_old_and_new_class_accuracy_and_repeats_exactly() {
    let folder = tempfile::tempdir().unwrap();
    let results = run(TINY, folder.path(), true);

    let names: Vec<&str> = results.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "finetune",
            "lwf",
            "finetune+replay-10",
            "lwf+replay-10",
            "joint"
        ]
    );
    let first = stage(&results, "finetune", 1);
    assert!(first.old.is_none() && first.forgetting.is_none());
    assert!(first.new.mean > 0.9, "stage 1 learns digits 0-4");
    for variant in &results.variants {
        // One stage-1 model, shared.
        assert_eq!(variant.stages[0], first, "{}", variant.name);
        let after = &variant.stages[1];
        let old = after
            .old
            .as_ref()
            .expect("old-class accuracy after stage 2");
        let forgetting = after.forgetting.as_ref().expect("forgetting");
        assert!((0.0..=1.0).contains(&old.mean), "{}", variant.name);
        // Forgetting of one old group is its stage-1 accuracy minus its accuracy now.
        assert!(
            (forgetting.mean - (first.new.mean - old.mean)).abs() < 1e-12,
            "{}",
            variant.name
        );
        assert!(after.new.mean > 0.8, "{} learns digits 5-9", variant.name);
    }
    let finetune = stage(&results, "finetune", 2);
    let replay = stage(&results, "finetune+replay-10", 2);
    let joint = stage(&results, "joint", 2);
    // Plain fine-tuning forgets much of digits 0-4; replay and joint training keep more.
    assert!(finetune.forgetting.as_ref().unwrap().mean > 0.2);
    assert!(replay.old.as_ref().unwrap().mean > finetune.old.as_ref().unwrap().mean);
    assert!(joint.old.as_ref().unwrap().mean > replay.old.as_ref().unwrap().mean);
    // The training sets: new data, plus 10 per old class, plus everything for joint.
    let stage_one_train = results.stages[0].train;
    assert_eq!(replay.train_samples, finetune.train_samples + 5 * 10);
    assert_eq!(
        joint.train_samples,
        finetune.train_samples + stage_one_train
    );

    let json = std::fs::read_to_string(folder.path().join("continual.json")).unwrap();
    let written: ContinualResults = serde_json::from_str(&json).expect("continual.json parses");
    assert_eq!(written.schema_version, 1);
    assert_eq!(without_times(&written), without_times(&results));
    for name in [
        "stage-1",
        "stage-2-lwf",
        "stage-2-lwf-replay-10",
        "stage-2-joint",
    ] {
        let path = folder.path().join(format!("seed-0/{name}.safetensors"));
        let (_, meta) = apprentice::checkpoint::load(&path, &ComputeDevice::cpu())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meta.name, name);
    }

    let again = tempfile::tempdir().unwrap();
    let repeated = run(TINY, again.path(), false);
    assert_eq!(without_times(&repeated), without_times(&results));
}

#[test]
fn lwf_with_zero_weight_is_finetuning_and_with_weight_is_not() {
    let base = format!(
        "joint = false\n{}",
        TINY.replace("replay = [0, 10]", "replay = [0]")
    );
    let folder = tempfile::tempdir().unwrap();
    let zero = run(
        &base.replace("weight = 1.0", "weight = 0.0"),
        folder.path(),
        false,
    );
    assert_eq!(
        zero.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["finetune", "lwf"]
    );
    let finetune = stage(&zero, "finetune", 2);
    let lwf = stage(&zero, "lwf", 2);
    assert_eq!(lwf.old, finetune.old);
    assert_eq!(lwf.new, finetune.new);

    let weighted = run(
        &base.replace("weight = 1.0", "weight = 5.0"),
        folder.path(),
        false,
    );
    let lwf = stage(&weighted, "lwf", 2);
    assert_eq!(stage(&weighted, "finetune", 2).old, finetune.old);
    assert_ne!(lwf.old, finetune.old);
    // The distillation term holds on to the old classes' relative outputs.
    assert!(
        lwf.forgetting_task_aware.as_ref().unwrap().mean
            < finetune.forgetting_task_aware.as_ref().unwrap().mean
    );
}

#[test]
fn a_shifted_stage_repeats_the_classes_with_permuted_inputs() {
    let shifted = TINY
        .replace(
            "classes = [0, 1, 2, 3, 4]",
            "classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
        )
        .replace(
            "classes = [5, 6, 7, 8, 9]",
            "classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\npermute_features = 1",
        )
        .replace("replay = [0, 10]", "replay = [0]");
    let folder = tempfile::tempdir().unwrap();
    let results = run(&shifted, folder.path(), false);
    assert_eq!(results.stages[1].permute_features, Some(1));
    assert_eq!(results.stages[0].test, results.stages[1].test);
    for variant in &results.variants {
        let after = &variant.stages[1];
        // The same classes in both stages: being told the stage changes nothing.
        assert_eq!(after.old, after.old_task_aware, "{}", variant.name);
        // LwF trades some of the new stage for the old one (about 75% here, 95% without it).
        assert!(
            after.new.mean > 0.6,
            "{} learns the permuted digits",
            variant.name
        );
    }
    // With every class old, LwF distils the whole output and keeps more of the original task.
    let forgetting = |name: &str| stage(&results, name, 2).forgetting.unwrap().mean;
    assert!(forgetting("finetune") > 0.05);
    assert!(forgetting("lwf") < forgetting("finetune"));
}

#[test]
fn a_class_the_data_does_not_have_is_named() {
    let text = TINY.replace("classes = [5, 6, 7, 8, 9]", "classes = [5, 6, 12]");
    let config = ContinualConfig::from_toml(&text, "tiny.toml").expect("parses");
    let folder = tempfile::tempdir().unwrap();
    let options = ContinualOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    let error = run_continual(&config, &options, &mut Silent::default())
        .expect_err("class 12 is not a digit");
    assert_eq!(
        error.to_string(),
        "stages[1].classes: class 12 is not in the data, which has classes 0 to 9"
    );
}

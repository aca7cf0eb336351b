//! The logit objectives a distilled student trains on, as selected by `distill.method`, and the
//! experiments that use them.

use apprentice::backend::{ComputeDevice, class_indices, matrix, scalar};
use apprentice::config::ExperimentConfig;
use apprentice::distill::loss::{KdWeights, LogitLoss, cross_entropy, kd_loss};
use apprentice::distill::methods::{DistSettings, DkdSettings, dist_loss, dkd_loss};
use apprentice::distill::train::Silent;
use apprentice::experiment::{RunOptions, run_experiment};

fn logits() -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let student = vec![
        0.5, -1.0, 2.0, 0.1, 1.5, 0.3, -0.7, 0.2, -2.0, 1.0, 0.0, 0.4,
    ];
    let teacher = vec![
        1.0, -0.5, 3.0, 0.0, 2.5, -1.0, -1.5, 0.5, -1.0, 2.0, 0.5, 0.0,
    ];
    (student, teacher, vec![2, 1, 3])
}

fn value(objective: impl LogitLoss, rows: usize, epoch: usize) -> f32 {
    let device = ComputeDevice::cpu().training();
    let (s, t, y) = logits();
    let s = matrix(s[..rows * 4].to_vec(), rows, 4, &device);
    let t = matrix(t[..rows * 4].to_vec(), rows, 4, &device);
    let y = class_indices(&y[..rows], &device);
    scalar(objective.loss(s, t, y, None, epoch).unwrap())
}

#[test]
fn each_objective_is_cross_entropy_plus_its_verified_term() {
    let device = ComputeDevice::cpu().training();
    let (s, t, y) = logits();
    let s = || matrix(s.clone(), 3, 4, &device);
    let t = || matrix(t.clone(), 3, 4, &device);
    let y = || class_indices(&y, &device);
    let ce = scalar(cross_entropy(s(), y(), None));

    let weights = KdWeights {
        temperature: 2.0,
        alpha: 0.3,
    };
    let kd = scalar(kd_loss(s(), t(), y(), None, weights));
    assert_eq!(value(weights, 3, 1), kd);

    let dkd = DkdSettings {
        warmup_epochs: 4,
        ..DkdSettings::default()
    };
    let term = scalar(dkd_loss(s(), t(), y(), &dkd).unwrap());
    // Linear warm-up: a quarter of the term in epoch 1, all of it from epoch 4 on.
    assert!((value(dkd, 3, 1) - (ce + 0.25 * term)).abs() < 1e-5);
    assert!((value(dkd, 3, 9) - (ce + term)).abs() < 1e-5);

    let dist = DistSettings::default();
    let term = scalar(dist_loss(s(), t(), &dist).unwrap());
    assert!((value(dist, 3, 1) - (ce + term)).abs() < 1e-5);
}

#[test]
fn dist_on_a_batch_of_one_trains_on_the_labels_alone() {
    let device = ComputeDevice::cpu().training();
    let (s, _, y) = logits();
    let ce = scalar(cross_entropy(
        matrix(s[..4].to_vec(), 1, 4, &device),
        class_indices(&y[..1], &device),
        None,
    ));
    assert_eq!(value(DistSettings::default(), 1, 1), ce);
}

const TINY: &str = r#"
name = "methods"
seeds = [0]

[data]
source = "digits"
label_fractions = [1.0, 0.1]

[teacher.model]
kind = "mlp"
hidden = [128]

[teacher.train]
epochs = 6

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 4
batch_size = 50
"#;

fn run(text: &str) -> apprentice::report::results::Results {
    let config = ExperimentConfig::from_toml(text, "methods.toml").expect("valid config");
    let folder = tempfile::tempdir().unwrap();
    let options = RunOptions {
        run_dir: folder.path().to_path_buf(),
        data_path: None,
        device: ComputeDevice::cpu(),
        save_checkpoints: false,
    };
    run_experiment(&config, &options, &mut Silent::default()).expect("the run succeeds")
}

#[test]
fn dkd_and_dist_runs_name_and_train_their_students() {
    let dkd = run(&format!(
        "{TINY}\n[distill]\nmethod = \"dkd\"\ntransfer = [\"labelled\"]\n\n[distill.dkd]\nwarmup_epochs = 2\n"
    ));
    let names: Vec<&str> = dkd.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "teacher",
            "scratch",
            "dkd",
            "scratch@10%",
            "dkd-labelled@10%"
        ]
    );
    // batch_size 50 leaves a final batch of one in some epochs: DIST must still run.
    let dist = run(&format!(
        "{TINY}\n[distill]\nmethod = \"dist\"\ntransfer = [\"all\", \"labelled\"]\n"
    ));
    for model in dist.models.iter().filter(|m| m.method == "dist") {
        // Chance is 0.1; four short epochs of a tiny student are far from converged.
        assert!(
            model.test.accuracy.mean > 0.3,
            "{} learned nothing: {}",
            model.name,
            model.test.accuracy.mean
        );
    }
}

#[test]
fn dkd_refuses_inputs_without_labels() {
    let text = format!("{TINY}\n[distill]\nmethod = \"dkd\"\ntransfer = [\"all\"]\n");
    let error = ExperimentConfig::from_toml(&text, "methods.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("distill.method") && error.contains("labelled"),
        "{error}"
    );
    let error = ExperimentConfig::from_toml(
        &format!("{TINY}\n[distill]\nmethod = \"dkd\"\n[distill.dkd]\nbeta = -1.0\n"),
        "methods.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("distill.dkd") && error.contains("beta"),
        "{error}"
    );
}

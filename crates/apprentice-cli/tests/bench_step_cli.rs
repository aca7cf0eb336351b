//! `apprentice bench-step`: the KD-step benchmark runs each workload through the training path,
//! writes its JSON, gives the same losses whatever the thread count (the teacher thread and
//! the convolution kernels' batch chunks must not change a bit), and refuses bad arguments.

use std::path::Path;
use std::process::{Command, Output};

fn bench_step(args: &[&str], json: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args([
            "bench-step",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
        ])
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap()
}

/// The one measurement of a single-workload run's JSON.
fn measurement(json: &Path) -> serde_json::Value {
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{document}");
    results[0].clone()
}

#[test]
fn every_step_workload_gives_the_same_losses_on_one_and_two_threads() {
    let folder = tempfile::tempdir().unwrap();
    for workload in ["mlp-adam", "mlp-sgd", "cnn-adam", "cnn-sgd"] {
        let mut losses = Vec::new();
        for threads in ["1", "2"] {
            let json = folder.path().join(format!("{workload}-{threads}.json"));
            let output = bench_step(&["--workload", workload, "--threads", threads], &json);
            assert!(
                output.status.success(),
                "{workload} on {threads} threads: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let result = measurement(&json);
            assert_eq!(result["workload"], workload);
            assert_eq!(result["steps"], 2);
            let steps_per_s = result["steps_per_s"].as_f64().unwrap();
            assert!(steps_per_s > 0.0 && steps_per_s.is_finite(), "{result}");
            let loss = result["final_loss"].as_f64().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{result}");
            losses.push(loss);
        }
        assert_eq!(
            losses[0].to_bits(),
            losses[1].to_bits(),
            "{workload}: the loss after 5 steps differs between 1 and 2 threads: {losses:?}"
        );
    }
}

#[test]
fn the_unfused_optimiser_and_the_inline_teacher_give_the_same_losses() {
    let folder = tempfile::tempdir().unwrap();
    let mut losses = Vec::new();
    for extra in [
        &[][..],
        &["--unfused-optimizer"],
        &["--teacher-thread", "off"],
    ] {
        let json = folder.path().join(format!("variant-{}.json", losses.len()));
        let mut args = vec!["--workload", "mlp-adam", "--threads", "2"];
        args.extend_from_slice(extra);
        let output = bench_step(&args, &json);
        assert!(
            output.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        losses.push(measurement(&json)["final_loss"].as_f64().unwrap());
    }
    assert!(
        losses.iter().all(|l| l.to_bits() == losses[0].to_bits()),
        "default, unfused optimiser and inline teacher: {losses:?}"
    );
}

#[test]
fn bad_arguments_are_refused_in_one_line() {
    let folder = tempfile::tempdir().unwrap();
    let json = folder.path().join("never.json");
    for (args, expected) in [
        (&["--workload", "resnet"][..], "--workload"),
        (&["--workload", "mlp-sgd", "--threads", "0"], "--threads"),
    ] {
        let output = bench_step(args, &json);
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!json.exists(), "{args:?} wrote its JSON");
    }
}

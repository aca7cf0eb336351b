//! The HTML report: every chart when the results hold everything, a reduced report when
//! they do not (one seed, missing optional sections, odd numbers), and a clear one-line
//! error for files it cannot read (unknown schema versions, damaged JSON, missing files).
//!
//! Results are written as JSON text, as a run would leave them, so that the tests go through
//! the same reading path as `apprentice report`.

use std::path::Path;
use std::time::Duration;

use apprentice::backend::ComputeDevice;
use apprentice::data::SampleShape;
use apprentice::eval::efficiency::{BenchSettings, measure};
use apprentice::models::{MlpSpec, ModelSpec, Network};
use apprentice::report::render::{CHART_IDS, PLOTS_DIR, REPORT_HTML, SUMMARY_MD};
use apprentice::report::{
    EfficiencySection, ModelEfficiency, ReportOptions, load_run, render_report, write_report,
};
use serde_json::{Value, json};

fn summary(values: &[f64]) -> Value {
    let n = values.len() as f64;
    let mean = if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / n
    };
    let std = if values.len() < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    json!({"mean": mean, "std": std, "per_seed": values})
}

/// A model whose final accuracy per seed is `accuracy`, with a validation curve rising to it
/// over `epochs` epochs (faster for larger `speed`).
fn model(
    role: &str,
    name: &str,
    fraction: f64,
    params: u64,
    accuracy: &[f64],
    epochs: usize,
    speed: f64,
) -> Value {
    let seeds = accuracy.len();
    let same = |v: f64| summary(&vec![v; seeds]);
    let teacher = role == "teacher";
    let curves: Vec<Value> = accuracy
        .iter()
        .enumerate()
        .map(|(seed, &final_accuracy)| {
            let validation: Vec<f64> = (1..=epochs)
                .map(|e| final_accuracy * (1.0 - (-(e as f64) * speed).exp()))
                .collect();
            json!({
                "seed": seed,
                "train_loss": vec![0.5; epochs],
                "validation_accuracy": validation,
                "learning_rate": vec![0.001; epochs],
            })
        })
        .collect();
    let mut test = json!({
        "accuracy": summary(accuracy),
        "nll": same(0.2),
        "ece": same(0.03),
    });
    if !teacher {
        let agreement: Vec<f64> = accuracy.iter().map(|a| (a + 0.02).min(1.0)).collect();
        test["agreement"] = summary(&agreement);
        test["kl_from_teacher"] = same(0.1);
    }
    json!({
        "role": role,
        "name": name,
        "method": if role == "distilled" { "kd" } else { "ce" },
        "label_fraction": fraction,
        "transfer": if role == "distilled" { json!("all") } else { Value::Null },
        "architecture": if teacher { "mlp 64-256-256-10" } else { "mlp 64-32-10" },
        "params": params,
        "test": test,
        "validation_accuracy": summary(accuracy),
        "train_time_s": same(1.5),
        "epochs_run": same(epochs as f64),
        "curves": curves,
    })
}

/// A quickstart-like result with `seeds` seeds (accuracies vary a little per seed).
fn results(seeds: usize) -> Value {
    let jitter = |base: f64| -> Vec<f64> { (0..seeds).map(|s| base + 0.005 * s as f64).collect() };
    json!({
        "schema_version": 1,
        "experiment": "report-test",
        "created_unix_s": 1_767_225_600u64,
        "apprentice_version": "0.1.0",
        "seeds": (0..seeds as u64).collect::<Vec<_>>(),
        "data": {"name": "digits", "num_classes": 10, "train": 1078, "validation": 359,
                 "test": 360, "sample_shape": [1, 8, 8]},
        "models": [
            model("teacher", "teacher", 1.0, 85_002, &jitter(0.975), 30, 0.3),
            model("scratch", "scratch", 1.0, 2_410, &jitter(0.96), 20, 0.25),
            model("distilled", "kd", 1.0, 2_410, &jitter(0.957), 20, 0.2),
            model("scratch", "scratch@5%", 0.05, 2_410, &jitter(0.84), 20, 0.3),
            model("distilled", "kd-all@5%", 0.05, 2_410, &jitter(0.955), 20, 0.2),
        ],
        "config": {"name": "report-test"},
    })
}

fn write_run(dir: &Path, document: &Value) {
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(document).unwrap(),
    )
    .unwrap();
}

/// Real measurements of two small networks, as an `efficiency` section.
fn efficiency_section() -> Value {
    let device = ComputeDevice::cpu();
    let settings = BenchSettings {
        warmup: Duration::ZERO,
        latency_budget: Duration::ZERO,
        throughput_budget: Duration::ZERO,
        min_runs: 3,
        max_runs: 3,
        throughput_batch: 16,
    };
    let network = |hidden: Vec<usize>| {
        let spec = ModelSpec::Mlp(MlpSpec {
            hidden,
            activation: Default::default(),
            dropout: 0.0,
        });
        Network::new(
            &spec,
            SampleShape::image(1, 8, 8),
            10,
            0,
            &device.inference(),
        )
        .unwrap()
    };
    let teacher = measure(
        &network(vec![256, 256]),
        "teacher",
        "mlp 64-256-256-10",
        &device,
        &settings,
    )
    .unwrap();
    let student = measure(
        &network(vec![32]),
        "kd-all@5%",
        "mlp 64-32-10",
        &device,
        &settings,
    )
    .unwrap();
    let section = EfficiencySection {
        seed: 0,
        bench: "test".to_string(),
        models: vec![
            ModelEfficiency {
                ratio_to_teacher: None,
                measured: teacher.clone(),
            },
            ModelEfficiency {
                ratio_to_teacher: Some(student.ratios_to(&teacher)),
                measured: student,
            },
        ],
    };
    serde_json::to_value(section).unwrap()
}

fn confusion(agreeing: u64, off: u64) -> Vec<Vec<u64>> {
    (0..10)
        .map(|t| {
            (0..10)
                .map(|s| {
                    if s == t {
                        agreeing
                    } else if s == (t + 1) % 10 {
                        off
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect()
}

/// Everything a report can show: efficiency, confusion and supervision complexity too.
fn full_results() -> Value {
    let mut document = results(3);
    document["efficiency"] = efficiency_section();
    document["teacher_agreement"] = json!({
        "seed": 0, "split": "test", "samples": 360,
        "models": [
            {"name": "scratch@5%", "agreement": 0.85, "matrix": confusion(30, 6)},
            {"name": "kd-all@5%", "agreement": 0.97, "matrix": confusion(35, 1)},
        ]
    });
    for model in document["models"].as_array_mut().unwrap() {
        if model["role"] == "teacher" {
            continue;
        }
        for curve in model["curves"].as_array_mut().unwrap() {
            let values: Vec<Value> = (0..20)
                .map(|e| {
                    if e % 5 == 4 {
                        Value::Null
                    } else {
                        json!(3.0 / (1.0 + e as f64))
                    }
                })
                .collect();
            curve["supervision_complexity"] = Value::Array(values);
        }
    }
    document
}

fn chart_ids(html: &str) -> Vec<&'static str> {
    CHART_IDS
        .iter()
        .copied()
        .filter(|id| html.contains(&format!("data-chart=\"{id}\"")))
        .collect()
}

#[test]
fn a_full_run_gets_every_chart_as_svg_and_png() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &full_results());
    let run = load_run(dir.path()).unwrap();
    assert!(run.warnings.is_empty(), "{:?}", run.warnings);
    let files = write_report(&run, &ReportOptions::default()).unwrap();
    assert!(files.omitted.is_empty(), "{:?}", files.omitted);
    // Every chart but the language-model one (tests/report_lm.rs).
    let image_charts: Vec<&str> = CHART_IDS
        .iter()
        .copied()
        .filter(|id| *id != "perplexity")
        .collect();
    assert_eq!(files.pngs.len(), image_charts.len());

    let html = std::fs::read_to_string(dir.path().join(REPORT_HTML)).unwrap();
    assert_eq!(chart_ids(&html), image_charts);
    assert_eq!(html.matches("<svg").count(), image_charts.len());
    // Self-contained: nothing is fetched from anywhere.
    assert!(!html.contains("<script") && !html.contains("<link"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    // The headline numbers and the efficiency table.
    assert!(html.contains("kd-all@5% reaches 96.0 ± 0.5%") && html.contains("for scratch@5%"));
    assert!(html.contains("recovering"), "gap closed is reported");
    assert!(html.contains("Each student against the teacher"));
    assert!(html.contains("35.3× fewer"), "parameter ratio 85002 / 2410");
    assert!(html.contains("FLOPs per example by layer type"));
    assert!(
        html.contains("169,994"),
        "teacher FLOPs counted analytically"
    );
    assert!(html.contains("Supervision complexity"));
    assert!(!html.contains("Not in this report"));

    for &id in &image_charts {
        let png = std::fs::read(dir.path().join(PLOTS_DIR).join(format!("{id}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{id}.png");
    }
    let summary = std::fs::read_to_string(dir.path().join(SUMMARY_MD)).unwrap();
    assert!(summary.starts_with("# report-test: distillation report"));
    assert!(summary.contains("![Knowledge levels](plots/knowledge.png)"));
    assert!(summary.contains("| kd-all@5% |"));
    assert!(summary.contains("## Efficiency") && summary.contains("35.3× fewer params"));
}

#[test]
fn one_seed_has_no_error_bars() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &results(1));
    let run = load_run(dir.path()).unwrap();
    let report = render_report(&run, &ReportOptions::default()).unwrap();
    let knowledge = report.charts.iter().find(|c| c.id == "knowledge").unwrap();
    assert!(knowledge.svg.contains("1 seed, no error bars"));
    // Single-seed values are means alone, never "± 0.0".
    assert!(
        !report.html.contains(" ± "),
        "no spread is shown for one seed"
    );
    assert!(!report.summary.contains(" ± "));
    assert!(report.html.contains("One seed only"));
}

#[test]
fn missing_optional_sections_give_a_reduced_report() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &results(2));
    let run = load_run(dir.path()).unwrap();
    let files = write_report(&run, &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert_eq!(
        chart_ids(&html),
        vec!["knowledge", "learning", "cost", "agreement"]
    );
    // The supervision-complexity section appears only when recorded.
    assert!(!html.contains("id=\"complexity\""));
    let omitted: Vec<&str> = files.omitted.iter().map(|o| o.chart).collect();
    assert_eq!(omitted, vec!["complexity", "confusion"]);
    assert!(html.contains("Not in this report"));
    assert!(
        html.contains("no checkpoints"),
        "says why efficiency is missing"
    );
    assert!(!dir.path().join(PLOTS_DIR).join("complexity.png").exists());

    // With checkpoints on disk, the page says how to measure them instead.
    std::fs::create_dir(dir.path().join("seed-0")).unwrap();
    std::fs::write(dir.path().join("seed-0/teacher.safetensors"), b"x").unwrap();
    let report = render_report(&run, &ReportOptions::default()).unwrap();
    assert!(report.html.contains("--measure"));
}

#[test]
fn charts_that_are_gone_leave_no_stale_png() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &full_results());
    write_report(&load_run(dir.path()).unwrap(), &ReportOptions::default()).unwrap();
    let complexity = dir.path().join(PLOTS_DIR).join("complexity.png");
    assert!(complexity.exists());
    write_run(dir.path(), &results(3));
    write_report(&load_run(dir.path()).unwrap(), &ReportOptions::default()).unwrap();
    assert!(!complexity.exists());
}

#[test]
fn unreadable_optional_sections_are_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut document = results(2);
    document["efficiency"] = json!({"seed": "zero", "models": 3});
    document["teacher_agreement"] = json!("garbage");
    write_run(dir.path(), &document);
    let run = load_run(dir.path()).unwrap();
    assert_eq!(run.warnings.len(), 2, "{:?}", run.warnings);
    let files = write_report(&run, &ReportOptions::default()).unwrap();
    assert_eq!(files.warnings.len(), 2);
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("the efficiency section is not in a form this apprentice reads"));
}

#[test]
fn unknown_schema_versions_and_damaged_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let results_path = dir.path().join("results.json");
    let mut document = results(2);
    document["schema_version"] = json!(2);
    write_run(dir.path(), &document);
    let error = load_run(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("results.json") && error.contains("newer"),
        "{error}"
    );
    assert!(!error.contains('\n'));

    document["schema_version"] = json!(0);
    write_run(dir.path(), &document);
    let error = load_run(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("results.json") && error.contains("unknown"),
        "{error}"
    );

    std::fs::write(&results_path, "{\"schema_version\": 1, oops").unwrap();
    let error = load_run(dir.path()).unwrap_err().to_string();
    assert!(error.starts_with("cannot read results from "), "{error}");
    assert!(
        error.contains("results.json") && !error.contains('\n'),
        "{error}"
    );

    std::fs::write(&results_path, [0xff, 0xfe, 0x00]).unwrap();
    let error = load_run(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("results.json") && !error.contains('\n'),
        "{error}"
    );

    std::fs::remove_file(&results_path).unwrap();
    let error = load_run(dir.path()).unwrap_err().to_string();
    assert!(error.contains("no results file"), "{error}");
    let error = load_run(&dir.path().join("nowhere"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no such run folder"), "{error}");
}

#[test]
fn a_results_file_can_be_named_directly_and_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &results(2));
    let run = load_run(&dir.path().join("results.json")).unwrap();
    assert_eq!(run.run_dir, dir.path());
    for threshold in [0.0, 1.5, f64::NAN, -1.0] {
        let options = ReportOptions {
            threshold,
            ..ReportOptions::default()
        };
        let error = render_report(&run, &options).unwrap_err().to_string();
        assert!(error.contains("threshold"), "{error}");
    }
    let out = dir.path().join("elsewhere");
    let options = ReportOptions {
        out_dir: Some(out.clone()),
        threshold: 0.9,
    };
    let files = write_report(&run, &options).unwrap();
    assert!(files.html.starts_with(&out) && out.join(SUMMARY_MD).is_file());
}

#[test]
fn odd_results_render_without_panicking() {
    let cases: Vec<(&str, Value)> = vec![
        ("no models and no seeds", {
            let mut d = results(1);
            d["models"] = json!([]);
            d["seeds"] = json!([]);
            d
        }),
        ("teacher only", {
            let mut d = results(2);
            d["models"].as_array_mut().unwrap().truncate(1);
            d
        }),
        ("no teacher", {
            let mut d = results(2);
            d["models"].as_array_mut().unwrap().remove(0);
            for m in d["models"].as_array_mut().unwrap() {
                m["test"].as_object_mut().unwrap().remove("agreement");
                m["test"].as_object_mut().unwrap().remove("kl_from_teacher");
            }
            d
        }),
        ("non-finite numbers and empty curves", {
            let mut d = results(2);
            for m in d["models"].as_array_mut().unwrap() {
                m["test"]["accuracy"] = json!({"mean": null, "std": null, "per_seed": [null, 0.5]});
                m["curves"] = json!([]);
                m["params"] = json!(0);
            }
            d
        }),
        ("curves of one epoch and a loaded teacher", {
            let mut d = results(2);
            for m in d["models"].as_array_mut().unwrap() {
                let keep = if m["role"] == "teacher" { 0 } else { 1 };
                for c in m["curves"].as_array_mut().unwrap() {
                    for key in ["train_loss", "validation_accuracy", "learning_rate"] {
                        c[key].as_array_mut().unwrap().truncate(keep);
                    }
                }
            }
            d
        }),
        ("flat vectors and many classes", {
            let mut d = results(2);
            d["data"]["sample_shape"] = json!([1, 1, 20]);
            d["data"]["num_classes"] = json!(40);
            d["teacher_agreement"] = json!({
                "seed": 0, "split": "test", "samples": 5,
                "models": [{"name": "kd-all@5%", "agreement": 0.5,
                            "matrix": vec![vec![1u64; 40]; 40]}]
            });
            d
        }),
    ];
    for (name, document) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), &document);
        let run = load_run(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let files =
            write_report(&run, &ReportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let html = std::fs::read_to_string(&files.html).unwrap();
        assert!(html.ends_with("</html>\n"), "{name}");
        for chart in &files.omitted {
            assert!(!chart.reason.is_empty(), "{name}: {}", chart.chart);
        }
    }
}

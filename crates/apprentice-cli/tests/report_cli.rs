//! `apprentice run` writes the report and the efficiency of its models; `apprentice report`
//! and `apprentice bench-model` produce them on demand; bad input gets a one-line error.

mod report_common;

use std::path::Path;

use apprentice::report::Results;
use report_common::{apprentice, stderr, stdout, tiny_run};
use serde_json::Value;

fn results_json(run: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap()
}

fn charts(html: &str) -> Vec<&'static str> {
    apprentice::report::render::CHART_IDS
        .iter()
        .copied()
        .filter(|id| html.contains(&format!("data-chart=\"{id}\"")))
        .collect()
}

/// Exit status 2 and exactly one line on stderr, starting `error: `.
fn one_line_error(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", stderr(output));
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    lines[0].to_string()
}

#[test]
fn a_run_writes_its_report_and_the_commands_redo_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_run(dir.path(), &[]);
    for file in ["report.html", "summary.md", "results.json", "config.toml"] {
        assert!(run.join(file).is_file(), "{file}");
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(
        charts(&html),
        vec!["knowledge", "learning", "cost", "agreement", "confusion"]
    );
    for id in charts(&html) {
        assert!(
            run.join("plots").join(format!("{id}.png")).is_file(),
            "{id}"
        );
    }

    // The efficiency of every model is in results.json, which still reads as schema 1.
    let document = results_json(&run);
    let text = std::fs::read_to_string(run.join("results.json")).unwrap();
    let results = Results::from_json(&text, "results.json").unwrap();
    let efficiency = &document["efficiency"];
    assert_eq!(efficiency["seed"], 0);
    assert_eq!(efficiency["bench"], "quick");
    let measured = efficiency["models"].as_array().unwrap();
    assert_eq!(measured.len(), results.models.len());
    for (entry, model) in measured.iter().zip(&results.models) {
        assert_eq!(entry["name"], model.name.as_str());
        assert_eq!(entry["params"], model.params);
        assert!(entry["latency"]["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(
            entry["memory"]["inference_peak_batch1_bytes"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert!(entry["cpu"].is_object() || cfg!(not(unix)));
        // Energy is measured or marked unavailable, never both.
        assert_ne!(
            entry["energy"].is_object(),
            entry["energy_unavailable"].is_string()
        );
        let is_teacher = model.name == "teacher";
        assert_eq!(
            entry["ratio_to_teacher"].is_null(),
            is_teacher,
            "{}",
            model.name
        );
    }
    let student = measured.iter().find(|m| m["name"] == "kd-all@10%").unwrap();
    let ratio = student["ratio_to_teacher"]["params"].as_f64().unwrap();
    // 64-16-10 against 64-64-10: 1,210 parameters against 4,810.
    assert!((ratio - 1_210.0 / 4_810.0).abs() < 1e-12, "{ratio}");
    assert!(
        document["teacher_agreement"]["models"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(summary.contains("## Efficiency") && summary.contains("| kd-all@10% |"));

    // `apprentice report` rewrites it, with another threshold.
    let run_arg = run.to_str().unwrap();
    let output = apprentice(&["report", run_arg, "--threshold", "0.9"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(
        printed.contains("report: ") && printed.contains("report.html"),
        "{printed}"
    );
    assert!(printed.contains("left out: complexity chart"), "{printed}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("90% of the teacher's validation accuracy"));

    // `--measure` measures again and stores the new numbers.
    let output = apprentice(&["report", run_arg, "--measure", "--quick"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("measuring teacher"));

    // `apprentice bench-model` on the teacher and a student: the efficiency table.
    let teacher = run.join("seed-0/teacher.safetensors");
    let student = run.join("seed-0/kd-all-at-10pct.safetensors");
    let (teacher, student) = (teacher.to_str().unwrap(), student.to_str().unwrap());
    let output = apprentice(&["bench-model", "--quick", teacher, student]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    for row in [
        "architecture",
        "parameters",
        "checkpoint file",
        "FLOPs / example",
        "latency p50, batch 1",
        "latency p95, batch 1",
        "throughput",
        "peak memory, batch 1",
        "CPU time / example",
        "energy / example",
        "kd-all@10% vs teacher",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    assert!(table.contains("× fewer"), "{table}");
    let output = apprentice(&["bench-model", "--quick", "--json", teacher, student]);
    assert!(output.status.success(), "{}", stderr(&output));
    let entries: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["name"], "teacher");
    assert!(entries[0]["memory"]["model_bytes"].as_u64().unwrap() > 0);
    assert!(entries[1]["ratio_to_first"]["flops"].as_f64().unwrap() < 1.0);
}

#[test]
fn a_run_without_checkpoints_and_with_one_seed_gets_a_reduced_report() {
    let dir = tempfile::tempdir().unwrap();
    let run = tiny_run(dir.path(), &["--no-checkpoints", "--seeds", "0"]);
    let document = results_json(&run);
    assert!(document.get("efficiency").is_none());
    assert!(document.get("teacher_agreement").is_none());
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(
        charts(&html),
        vec!["knowledge", "learning", "cost", "agreement"]
    );
    assert!(html.contains("no checkpoints"));
    assert!(!html.contains(" ± "), "one seed: no spread anywhere");

    // `--measure` on such a run says there is nothing to measure, and still reports.
    let output = apprentice(&["report", run.to_str().unwrap(), "--measure", "--quick"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("note: no checkpoints"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_report_and_bench_input_gives_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let line = one_line_error(&apprentice(&["report", missing.to_str().unwrap()]));
    assert!(
        line.contains("missing") && line.contains("no such run folder"),
        "{line}"
    );

    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let line = one_line_error(&apprentice(&["report", run.to_str().unwrap()]));
    assert!(line.contains("no results file"), "{line}");

    std::fs::write(
        run.join("results.json"),
        r#"{"schema_version": 7, "models": "whatever"}"#,
    )
    .unwrap();
    let line = one_line_error(&apprentice(&["report", run.to_str().unwrap()]));
    assert!(
        line.contains("results.json") && line.contains("newer"),
        "{line}"
    );

    std::fs::write(run.join("results.json"), "{\"schema_version\": 1,").unwrap();
    let line = one_line_error(&apprentice(&["report", run.to_str().unwrap()]));
    assert!(line.contains("results.json"), "{line}");

    let line = one_line_error(&apprentice(&[
        "report",
        run.to_str().unwrap(),
        "--threshold",
        "95",
    ]));
    assert!(line.contains("--threshold"), "{line}");
    one_line_error(&apprentice(&["report", run.to_str().unwrap(), "--quick"]));

    let line = one_line_error(&apprentice(&["bench-model", missing.to_str().unwrap()]));
    assert!(line.contains("missing"), "{line}");
    let not_a_checkpoint = dir.path().join("notes.safetensors");
    std::fs::write(&not_a_checkpoint, "hello").unwrap();
    let line = one_line_error(&apprentice(&[
        "bench-model",
        not_a_checkpoint.to_str().unwrap(),
    ]));
    assert!(line.contains("notes.safetensors"), "{line}");
    one_line_error(&apprentice(&["bench-model"]));
    let line = one_line_error(&apprentice(&[
        "bench-model",
        "--device",
        "abacus",
        not_a_checkpoint.to_str().unwrap(),
    ]));
    assert!(line.contains("--device"), "{line}");
}

#[test]
fn report_markdown_prints_the_table_the_readme_block_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let raw = root.join("docs/results/data/quickstart.json");
    let output = apprentice(&["report", "--markdown", raw.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    // The README's generated block of the same raw file holds exactly this table.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let opening =
        "<!-- generated: apprentice report --markdown docs/results/data/quickstart.json -->";
    let start = readme.find(opening).expect("the quickstart block") + opening.len();
    let end = start + readme[start..].find("<!-- end generated -->").unwrap();
    assert_eq!(readme[start..end].trim(), printed.trim());
    assert!(printed.contains("| model |"), "{printed}");

    let fractions = apprentice(&["report", "--markdown=fractions", raw.to_str().unwrap()]);
    assert!(fractions.status.success(), "{}", stderr(&fractions));
    assert_ne!(stdout(&fractions), printed);

    let message = one_line_error(&apprentice(&[
        "report",
        "--markdown=pie",
        raw.to_str().unwrap(),
    ]));
    assert!(
        message.contains("--markdown") && message.contains("pie"),
        "{message}"
    );
}

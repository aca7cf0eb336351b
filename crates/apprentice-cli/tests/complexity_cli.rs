//! `apprentice complexity` end to end on the embedded digits: the table, a valid
//! `complexity.json` and `complexity.png`, the teacher and its snapshots saved for reuse, the
//! same numbers from the saved teacher, and one-line errors with exit status 2 for bad input.
//!
//! A tiny teacher (one hidden layer of 16, three epochs) keeps every case under a few seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apprentice::complexity::study::dump::read_kernel_dump;
use apprentice::complexity::study::report::{StudyReport, TargetSource};

/// The quickstart's data and student with a teacher that trains in well under a second.
const TINY: &str = r#"
name = "tiny"
seeds = [0]

[data]
source = "digits"
validation_fraction = 0.15
test_fraction = 0.25
normalization = "feature"

[teacher.model]
kind = "mlp"
hidden = [16]

[teacher.train]
epochs = 3

[teacher.optimizer]
lr = 0.01

[student.model]
kind = "mlp"
hidden = [32]

[student.train]
epochs = 1

[distill]
temperature = 4.0
alpha = 0.5
"#;

fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("cannot start the apprentice binary")
}

fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stderr ---\n{}--- stdout ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

fn assert_success(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
}

/// Exit status 2 and exactly one line on stderr, starting with `error: ` and naming `needle`.
fn assert_one_line_error(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{}", describe(output));
    assert!(!stderr.contains("panicked"), "{}", describe(output));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", describe(output));
    assert!(lines[0].starts_with("error: "), "{}", describe(output));
    assert!(
        lines[0].contains(needle),
        "{needle:?}: {}",
        describe(output)
    );
}

fn read_report(dir: &Path) -> StudyReport {
    let path = dir.join("complexity.json");
    let text = std::fs::read_to_string(&path).unwrap();
    StudyReport::from_json(&text, "complexity.json").unwrap()
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a valid PNG");
    let info = reader.info();
    assert!(
        info.width > 400 && info.height > 200,
        "{}×{}",
        info.width,
        info.height
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_study_with_a_trained_teacher_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = tmp.path().join("study");
    let dump = tmp.path().join("kernel.safetensors");
    let output = apprentice(&[
        "complexity",
        path_str(&config),
        "--subset",
        "100",
        "--targets",
        "labels,random,uniform,teacher:T=1,2,8,kd,teacher-checkpoints",
        "--out",
        path_str(&out),
        "--dump-kernel",
        path_str(&dump),
        "--quiet",
    ]);
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "targets",
        "teacher T=8",
        "kd α=0.5 T=4",
        "teacher epoch-0003",
    ] {
        assert!(stdout.contains(needle), "{needle}: {}", describe(&output));
    }

    let report = read_report(&out);
    assert_eq!(report.data.subset_size, 100);
    assert_eq!(report.data.subset_indices.len(), 100);
    assert_eq!(report.student.parameters, 64 * 32 + 32 + 32 * 10 + 10);
    let teacher = report.teacher.as_ref().expect("a teacher");
    assert!(teacher.subset_accuracy.unwrap() > 0.8, "{teacher:?}");
    let names: Vec<&str> = report
        .targets
        .iter()
        .map(|r| r.measured.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "labels",
            "random",
            "uniform",
            "teacher T=1",
            "teacher T=2",
            "teacher T=8",
            "kd α=0.5 T=4",
            "teacher epoch-0001",
            "teacher epoch-0002",
            "teacher epoch-0003",
        ]
    );
    for row in &report.targets {
        assert!(
            row.measured.complexity.is_finite() && row.measured.complexity > 0.0,
            "{row:?}"
        );
    }
    let adjusted = |name: &str| {
        report
            .targets
            .iter()
            .find(|r| r.measured.name == name)
            .unwrap()
            .measured
            .adjusted
    };
    // Softening can only pull the targets toward the uniform distribution.
    assert!(adjusted("teacher T=8") < adjusted("teacher T=1"));
    assert!(adjusted("random") > adjusted("labels"));
    let last = &report.targets[9];
    assert_eq!(last.source, TargetSource::TeacherCheckpoint);
    assert_eq!(last.epoch, Some(3));
    // The last snapshot is the teacher itself.
    assert_eq!(
        last.measured.complexity,
        report.targets[3].measured.complexity
    );
    assert_png(&out.join("complexity.png"));
    // The teacher trained here is kept as a run keeps it.
    assert!(out.join("seed-0/teacher.safetensors").is_file());
    assert!(
        out.join("seed-0/teacher.epochs/epoch-0003.safetensors")
            .is_file()
    );

    // The kernel file holds the student's inputs and the kernel the numbers came from.
    let kernel = read_kernel_dump(&dump).unwrap();
    assert_eq!(kernel.features, 64);
    assert_eq!(kernel.kernel.examples(), 100);
    assert!((kernel.kernel.trace() - report.kernel.trace).abs() <= 1e-9 * report.kernel.trace);
    let student = PathBuf::from(kernel.info.checkpoint.unwrap());
    assert!(student.is_file(), "{}", student.display());

    // The saved teacher and student give the same numbers again.
    let again = tmp.path().join("again");
    let output = apprentice(&[
        "complexity",
        path_str(&config),
        "--subset",
        "100",
        "--targets",
        "teacher:T=2",
        "--teacher",
        path_str(&out.join("seed-0/teacher.safetensors")),
        "--student",
        path_str(&student),
        "--out",
        path_str(&again),
        "--quiet",
    ]);
    assert_success(&output);
    let second = read_report(&again);
    assert_eq!(second.targets[0].measured, report.targets[4].measured);
}

#[test]
fn the_quickstart_without_a_teacher_needs_no_training() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let output = apprentice(&[
        "complexity",
        "--subset",
        "60",
        "--targets",
        "labels,random",
        "--kernel",
        "block",
        "--out",
        path_str(&out),
        "--quiet",
    ]);
    assert_success(&output);
    let report = read_report(&out);
    assert!(report.teacher.is_none());
    assert_eq!(report.experiment, "quickstart");
    assert_eq!(report.kernel.examples, 60);
    assert!(!out.join("seed-0").exists());
    assert_png(&out.join("complexity.png"));
}

#[test]
fn bad_input_gives_one_line_and_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let out = path_str(&out);
    let cases: [(&[&str], &str); 7] = [
        (&["--targets", "labels,bogus"], "\"bogus\""),
        (&["--targets", "teacher:T=0"], "temperature"),
        (&["--targets", ""], "--targets"),
        (&["--kernel", "diagonal"], "--kernel"),
        (
            &["--subset", "5000", "--targets", "labels"],
            "--subset 5000",
        ),
        (
            &[
                "--teacher",
                "no-such-teacher.safetensors",
                "--targets",
                "teacher",
            ],
            "no-such-teacher.safetensors",
        ),
        (
            &["--targets", "teacher-checkpoints:no-such-folder"],
            "no-such-folder",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["complexity", "--quiet", "--out", out];
        args.extend_from_slice(extra);
        assert_one_line_error(&apprentice(&args), needle);
    }
}

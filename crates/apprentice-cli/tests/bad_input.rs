//! Bad input to the `apprentice` binary: every case must end with a one-line error.
//!
//! The standard tested here: a missing or malformed config file, data folder, IDX file, CSV
//! file or checkpoint, or a bad command-line argument, makes `apprentice` exit with status 2
//! and print exactly one non-empty line on stderr, starting with `error: `, that names the file
//! (with the line for text files) or the config key path at fault, and never a panic.
//!
//! Each case runs the real binary (`CARGO_BIN_EXE_apprentice`) on tiny inputs in a temporary
//! folder, with `--out <tempdir> --quiet`, so nothing is written in the repository and every
//! case takes well under a second. The valid CSV and IDX configs are checked to run (exit 0)
//! first, so that the bad cases fail for the reason they are meant to.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// A teacher, a student and one epoch each: trains in well under a second on tiny data.
const MODELS: &str = r#"
[teacher.model]
kind = "mlp"
hidden = [16]

[teacher.train]
epochs = 1

[student.model]
kind = "mlp"
hidden = [8]

[student.train]
epochs = 1
"#;

/// The minimal valid config on the embedded digits.
fn digits_config() -> String {
    format!("name = \"tiny\"\nseeds = [0]\n\n[data]\nsource = \"digits\"\n{MODELS}")
}

/// A valid CSV config reading `csv`.
fn csv_config(csv: &Path) -> String {
    format!(
        "name = \"tiny-csv\"\nseeds = [0]\n\n[data]\nsource = \"csv\"\npath = '{}'\n\
         label_fractions = [1.0]\n{MODELS}",
        csv.display()
    )
}

/// A valid IDX config; the folder comes from `--data`.
fn idx_config() -> String {
    format!("name = \"tiny-idx\"\nseeds = [0]\n\n[data]\nsource = \"idx\"\n{MODELS}")
}

/// 40 rows of 4 numeric features and a label 0 or 1 (last), no header.
fn csv_rows() -> Vec<String> {
    (0..40)
        .map(|i| {
            let label = i % 2;
            let base = label as f32 * 2.0;
            format!(
                "{:.2},{:.2},{:.2},{:.2},{label}",
                base + 0.01 * i as f32,
                base - 0.02 * i as f32,
                0.5 * i as f32 / 40.0,
                base * 0.5 + 0.1,
            )
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes the CSV rows, one per line, and returns its path.
fn write_csv(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    write(dir, name, rows.join("\n") + "\n")
}

/// An IDX file of unsigned bytes.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// An MNIST-style folder with 20 training and 10 test images of 4 × 4 pixels, 2 classes.
fn write_idx_dir(dir: &Path) -> PathBuf {
    let root = dir.join("tiny-idx");
    std::fs::create_dir(&root).unwrap();
    for (prefix, n) in [("train", 20u32), ("t10k", 10u32)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
        let pixels: Vec<u8> = (0..n * 16)
            .map(|v| {
                if labels[(v / 16) as usize] == 1 {
                    200
                } else {
                    (v % 7) as u8 * 10
                }
            })
            .collect();
        write(
            &root,
            &format!("{prefix}-images-idx3-ubyte"),
            idx_bytes(&[n, 4, 4], &pixels),
        );
        write(
            &root,
            &format!("{prefix}-labels-idx1-ubyte"),
            idx_bytes(&[n], &labels),
        );
    }
    root
}

/// Runs the binary with `args`.
fn apprentice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(args)
        .output()
        .expect("cannot start the apprentice binary")
}

/// `apprentice run <config> --out <tmp>/runs --quiet <extra...>`.
fn run(tmp: &TempDir, config: &Path, extra: &[&str]) -> Output {
    let out = tmp.path().join("runs");
    let mut args = vec![
        "run",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    apprentice(&args)
}

/// Writes `text` as a config file named `name` and runs it.
fn run_text(tmp: &TempDir, name: &str, text: &str, extra: &[&str]) -> Output {
    let config = write(tmp.path(), name, text);
    run(tmp, &config, extra)
}

/// The 1-based line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
        + 1
}

fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stderr ---\n{}--- stdout ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

/// Asserts a successful run.
fn assert_success(output: &Output) {
    assert_eq!(output.status.code(), Some(0), "{}", describe(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{}", describe(output));
}

/// Asserts the standard: exit code 2, no panic, exactly one non-empty line on stderr that
/// starts with `error: ` and contains every one of `needles`. Returns that line.
fn assert_bad_input(output: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = describe(output);
    assert!(!stderr.contains("panicked"), "a panic:\n{report}");
    assert_eq!(output.status.code(), Some(2), "exit code:\n{report}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr:\n{report}");
    let line = lines[0];
    assert!(
        line.starts_with("error: "),
        "no `error: ` prefix:\n{report}"
    );
    for needle in needles {
        assert!(
            line.contains(needle),
            "the message lacks {needle:?}:\n{report}"
        );
    }
    line.to_owned()
}

#[test]
fn valid_digits_config_runs() {
    let tmp = tempfile::tempdir().unwrap();
    assert_success(&run_text(&tmp, "ok.toml", &digits_config(), &[]));
}

#[test]
fn valid_csv_config_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = write_csv(tmp.path(), "ok.csv", &csv_rows());
    assert_success(&run_text(&tmp, "ok.toml", &csv_config(&csv), &[]));
}

#[test]
fn valid_idx_config_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_idx_dir(tmp.path());
    let output = run_text(
        &tmp,
        "ok.toml",
        &idx_config(),
        &["--data", dir.to_str().unwrap()],
    );
    assert_success(&output);
}

/// 1. A config file that does not exist.
#[test]
fn missing_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run(&tmp, Path::new("/nonexistent/x.toml"), &[]);
    assert_bad_input(&output, &["/nonexistent/x.toml"]);
}

/// 2. An idx config whose `--data` folder does not exist.
#[test]
fn missing_idx_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let output = run_text(
        &tmp,
        "idx.toml",
        &idx_config(),
        &["--data", "/nonexistent/dir"],
    );
    assert_bad_input(&output, &["/nonexistent/dir"]);
}

/// 3. An IDX file with a wrong magic number (a ZIP header); the message names that file.
#[test]
fn idx_wrong_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_idx_dir(tmp.path());
    write(
        &dir,
        "t10k-labels-idx1-ubyte",
        b"PK\x03\x04 not an idx file",
    );
    let output = run_text(
        &tmp,
        "idx.toml",
        &idx_config(),
        &["--data", dir.to_str().unwrap()],
    );
    assert_bad_input(&output, &["t10k-labels-idx1-ubyte"]);
}

/// 4. A truncated IDX file: its header declares 20 images, it holds fewer.
#[test]
fn idx_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_idx_dir(tmp.path());
    write(
        &dir,
        "train-images-idx3-ubyte",
        idx_bytes(&[20, 4, 4], &[0u8; 5 * 16 + 3]),
    );
    let output = run_text(
        &tmp,
        "idx.toml",
        &idx_config(),
        &["--data", dir.to_str().unwrap()],
    );
    assert_bad_input(&output, &["train-images-idx3-ubyte"]);
}

/// 5. A CSV row with one field too few: file and line.
#[test]
fn csv_ragged_row() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = csv_rows();
    rows[6] = "1.0,2.0,3.0,1".to_owned();
    let csv = write_csv(tmp.path(), "ragged.csv", &rows);
    let output = run_text(&tmp, "csv.toml", &csv_config(&csv), &[]);
    assert_bad_input(&output, &["ragged.csv:7"]);
}

/// 6. A CSV cell that is not a number: file, line and column.
#[test]
fn csv_non_numeric_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = csv_rows();
    rows[11] = "1.0,2.0,abc,4.0,1".to_owned();
    let csv = write_csv(tmp.path(), "cell.csv", &rows);
    let output = run_text(&tmp, "csv.toml", &csv_config(&csv), &[]);
    assert_bad_input(&output, &["cell.csv:12", "column 3", "abc"]);
}

/// 7a. A negative CSV label: file and line.
#[test]
fn csv_negative_label() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = csv_rows();
    rows[3] = "1.0,2.0,3.0,4.0,-1".to_owned();
    let csv = write_csv(tmp.path(), "negative.csv", &rows);
    let output = run_text(&tmp, "csv.toml", &csv_config(&csv), &[]);
    assert_bad_input(&output, &["negative.csv:4", "-1"]);
}

/// 7b. A fractional CSV label: file and line.
#[test]
fn csv_fractional_label() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = csv_rows();
    rows[20] = "1.0,2.0,3.0,4.0,2.5".to_owned();
    let csv = write_csv(tmp.path(), "fraction.csv", &rows);
    let output = run_text(&tmp, "csv.toml", &csv_config(&csv), &[]);
    assert_bad_input(&output, &["fraction.csv:21", "2.5"]);
}

/// 8. An unknown key in `[student.train]`: the table's key path and the line.
#[test]
fn config_unknown_key() {
    let tmp = tempfile::tempdir().unwrap();
    let text = digits_config().replace(
        "[student.train]\nepochs = 1",
        "[student.train]\nepochs = 1\nepochz = 3",
    );
    let line = line_of(&text, "epochz");
    let output = run_text(&tmp, "unknown-key.toml", &text, &[]);
    let location = format!("unknown-key.toml:{line}");
    assert_bad_input(&output, &[&location, "student.train", "epochz"]);
}

/// 9. A value of the wrong type: the full key path and the line.
#[test]
fn config_mistyped_value() {
    let tmp = tempfile::tempdir().unwrap();
    let text = digits_config().replace(
        "[student.train]\nepochs = 1",
        "[student.train]\nepochs = \"ten\"",
    );
    let line = line_of(&text, "\"ten\"");
    let output = run_text(&tmp, "mistyped.toml", &text, &[]);
    let location = format!("mistyped.toml:{line}");
    assert_bad_input(&output, &[&location, "student.train.epochs"]);
}

/// 10. A value out of range: the file and the key path.
#[test]
fn config_invalid_alpha() {
    let tmp = tempfile::tempdir().unwrap();
    let text = digits_config() + "\n[distill]\nalpha = 2.0\n";
    let output = run_text(&tmp, "alpha.toml", &text, &[]);
    assert_bad_input(&output, &["alpha.toml", "distill.alpha"]);
}

/// 11. An unknown distillation method: the file, the key path and the name.
#[test]
fn config_unknown_method() {
    let tmp = tempfile::tempdir().unwrap();
    let text = digits_config() + "\n[distill]\nmethod = \"foo\"\n";
    let output = run_text(&tmp, "method.toml", &text, &[]);
    assert_bad_input(&output, &["method.toml", "distill.method", "foo"]);
}

/// 12a. A teacher checkpoint that does not exist: the file.
#[test]
fn teacher_checkpoint_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-teacher.safetensors");
    let text = digits_config().replace(
        "[teacher.model]",
        &format!(
            "[teacher]\ncheckpoint = '{}'\n\n[teacher.model]",
            missing.display()
        ),
    );
    let output = run_text(&tmp, "teacher.toml", &text, &[]);
    assert_bad_input(&output, &["no-such-teacher.safetensors"]);
}

/// 12b. A teacher checkpoint that is not a safetensors file: the file.
#[test]
fn teacher_checkpoint_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = write(
        tmp.path(),
        "garbage-teacher.safetensors",
        b"\xde\xad\xbe\xef this is not a safetensors file \x00\x01\x02",
    );
    let text = digits_config().replace(
        "[teacher.model]",
        &format!(
            "[teacher]\ncheckpoint = '{}'\n\n[teacher.model]",
            garbage.display()
        ),
    );
    let output = run_text(&tmp, "teacher.toml", &text, &[]);
    assert_bad_input(&output, &["garbage-teacher.safetensors"]);
}

/// 13. `apprentice eval` on a garbage checkpoint: the file.
#[test]
fn eval_garbage_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = write(
        tmp.path(),
        "garbage.safetensors",
        b"\xff\xff\xff\xff\xff\xff\xff\x7f{\"not\": \"a checkpoint\"}",
    );
    let output = apprentice(&["eval", garbage.to_str().unwrap()]);
    assert_bad_input(&output, &["garbage.safetensors"]);
}

/// 13b. `apprentice eval` on a checkpoint that does not exist: the file.
#[test]
fn eval_missing_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("absent.safetensors");
    let output = apprentice(&["eval", missing.to_str().unwrap()]);
    assert_bad_input(&output, &["absent.safetensors"]);
}

/// 14. `--seeds` with a value that is not a number (a command-line error, exit 2).
#[test]
fn seeds_not_a_number() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(tmp.path(), "ok.toml", digits_config());
    let output = run(&tmp, &config, &["--seeds", "0,x"]);
    assert_bad_input(&output, &["--seeds", "'x'"]);
}

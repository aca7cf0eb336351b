//! `apprentice docs` rewrites a page's generated numbers from its raw file, `--check` only
//! reports stale pages, and bad pages are one-line errors naming the page and line.

use std::path::Path;
use std::process::{Command, Output};

fn apprentice(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .arg("docs")
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

/// A folder with a raw file and a page quoting it, the page's number typed wrongly.
fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("raw.json"),
        r#"{"models": [{"name": "kd", "accuracy": 0.9571}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("page.md"),
        "<!-- values: r = raw.json -->\nKD reaches <!-- value: r:models/name=kd/accuracy %.1 -->99.0<!-- end value -->%.\n",
    )
    .unwrap();
    dir
}

#[test]
fn check_fails_on_a_stale_page_and_a_rewrite_fixes_it() {
    let dir = folder();
    let page = dir.path().join("page.md");
    let page_arg = page.to_str().unwrap();
    let check = apprentice(&[page_arg, "--check"], dir.path());
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("page.md") && stderr.lines().count() == 1,
        "{stderr}"
    );
    // --check rewrote nothing.
    assert!(std::fs::read_to_string(&page).unwrap().contains("99.0"));

    assert!(apprentice(&[page_arg], dir.path()).status.success());
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.contains("-->95.7<!-- end value -->%."), "{text}");
    assert!(
        apprentice(&[page_arg, "--check"], dir.path())
            .status
            .success()
    );
}

#[test]
fn a_bad_path_is_one_line_naming_page_line_and_file() {
    let dir = folder();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "<!-- values: r = raw.json -->\n<!-- value: r:models/name=dkd/accuracy %.1 -->1<!-- end value -->\n",
    )
    .unwrap();
    let output = apprentice(&[page.to_str().unwrap()], dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "page.md, line 2: raw.json: models/name=dkd/accuracy: no element with name = dkd"
        ),
        "{stderr}"
    );
}

#[test]
fn the_committed_readme_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = root.join("README.md");
    let output = apprentice(&[readme.to_str().unwrap(), "--check"], &root);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

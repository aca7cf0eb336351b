//! The folder of real data sets, for the command-line tests that need it.

use std::path::PathBuf;

/// `APPRENTICE_SHARED_DATA`, defaulting to `../shared/data` beside the repository. `None` (with
/// a note on stderr) when it is absent, unless `APPRENTICE_REQUIRE_SHARED_DATA=1` (as in CI),
/// where its absence fails the test.
pub fn shared_data(test: &str) -> Option<PathBuf> {
    let folder = std::env::var_os("APPRENTICE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if folder.is_dir() {
        return Some(folder);
    }
    if std::env::var("APPRENTICE_REQUIRE_SHARED_DATA").as_deref() == Ok("1") {
        panic!(
            "{test}: the shared data folder {} is required but absent",
            folder.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: shared data not found at {} (set APPRENTICE_SHARED_DATA)",
        folder.display()
    );
    None
}

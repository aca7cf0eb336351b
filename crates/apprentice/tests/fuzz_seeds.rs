//! The committed seed corpus of the fuzz targets (fuzz/corpus, written by fuzz/make_corpus.py):
//! every seed meant to be valid is read as valid by the reader its target fuzzes, and the
//! near-valid ones are refused, so that the seeds start libFuzzer past the readers' first
//! checks rather than at their error paths.

use std::path::{Path, PathBuf};

use apprentice::backend::ComputeDevice;
use apprentice::data::csv::{CsvOptions, LabelColumn, parse_csv};
use apprentice::distill::state::Checkpointing;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Every seed of `target`, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let folder = corpus(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    seeds
}

#[test]
fn every_fuzz_target_has_seeds() {
    let targets: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
    assert!(targets.len() >= 6);
    for target in targets {
        assert!(!seeds(&target).is_empty());
    }
}

#[test]
fn idx_seeds_parse_except_the_truncated_one() {
    let folder = tempfile::tempdir().unwrap();
    for (name, bytes) in seeds("idx") {
        let path = folder.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let read = apprentice::data::idx::read_idx(&path);
        assert_eq!(
            read.is_ok(),
            name != "truncated",
            "{name}: {:?}",
            read.err()
        );
    }
}

#[test]
fn csv_seeds_parse_with_the_options_their_first_byte_chooses() {
    for (name, bytes) in seeds("csv") {
        // The same choice as fuzz_targets/csv.rs.
        let choice = bytes[0];
        let options = CsvOptions {
            label_column: match choice % 4 {
                0 => LabelColumn::Last,
                1 => LabelColumn::First,
                2 => LabelColumn::Index(1),
                _ => LabelColumn::Name("label".into()),
            },
            has_header: choice & 0x10 != 0 || choice % 4 == 3,
            ..CsvOptions::default()
        };
        let data =
            parse_csv(&bytes[1..], "seed.csv", &options).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(data.len() >= 2, "{name}");
    }
}

#[test]
fn config_seeds_parse() {
    for (name, bytes) in seeds("config") {
        let text = String::from_utf8(bytes).unwrap();
        apprentice::config::ExperimentConfig::from_toml(&text, &name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn checkpoint_seeds_load() {
    let folder = tempfile::tempdir().unwrap();
    for (name, bytes) in seeds("checkpoint") {
        let path = folder.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        apprentice::checkpoint::load(&path, &ComputeDevice::cpu())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn results_seeds_parse() {
    for (name, bytes) in seeds("results") {
        let text = String::from_utf8(bytes).unwrap();
        apprentice::report::results::Results::from_json(&text, &name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn run_state_seeds_verify_except_the_damaged_one() {
    for (name, bytes) in seeds("run_state") {
        // The same folder as fuzz_targets/run_state.rs builds.
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("state-000000001.json"), &bytes).unwrap();
        std::fs::write(
            folder.path().join("model-000000001.safetensors"),
            b"weights",
        )
        .unwrap();
        std::fs::write(folder.path().join("optimizer-000000001.bin"), b"moments").unwrap();
        let checkpointing = Checkpointing {
            dir: folder.path().to_path_buf(),
            every_steps: 0,
            keep_last: 2,
            identity: "fuzz".into(),
        };
        let (restored, warnings) = checkpointing.load_latest();
        assert_eq!(
            restored.is_some(),
            name != "bad-checksum",
            "{name}: {warnings:?}"
        );
    }
}

#[test]
fn gguf_seeds_reach_past_the_header() {
    let seeds = seeds("gguf");
    let (_, tiny) = seeds
        .iter()
        .find(|(name, _)| name == "tiny-llama.gguf")
        .expect("the valid seed");
    let file =
        apprentice::lm::gguf::GgufFile::from_bytes(tiny.clone(), Path::new("tiny-llama.gguf"))
            .expect("the valid seed is read as valid");
    assert!(!file.tensors().is_empty());
}

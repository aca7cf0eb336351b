//! The language-model experiment file: the committed config reads, its student is at most a
//! tenth of the teacher outside the embeddings, and bad files get one line naming the key.

use std::path::Path;

use apprentice::lm::config::LmExperimentConfig;
use apprentice::lm::llama::LlamaConfig;
use apprentice::lm::student_init::StudentInit;
use apprentice::task::TaskKind;

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/lm-rotten-tomatoes.toml");
    std::fs::read_to_string(path).unwrap()
}

/// SmolLM2-135M's shape (its GGUF metadata; `lm_gguf.rs` checks it against the file).
fn smollm2() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 49_152,
        hidden: 576,
        layers: 30,
        heads: 9,
        kv_heads: 3,
        ffn: 1536,
        rope_theta: 100_000.0,
        rms_eps: 1e-5,
        max_len: 8192,
        tied: true,
    }
}

#[test]
fn the_committed_config_reads_with_a_student_under_a_tenth_of_the_teacher() {
    let text = committed();
    assert_eq!(TaskKind::of_toml(&text), TaskKind::Language);
    let config = LmExperimentConfig::from_toml(&text, "lm-rotten-tomatoes.toml").unwrap();
    assert_eq!(config.seeds, [0, 1, 2]);
    let student = config.student.config(&smollm2()).unwrap();
    let ratio =
        student.non_embedding_parameters() as f64 / smollm2().non_embedding_parameters() as f64;
    assert!(ratio <= 0.1, "the student is {ratio:.3} of the teacher");
    assert!(
        config
            .objectives
            .iter()
            .any(|o| o.loss(0).unwrap().is_none())
    );
    // Other experiment files are not language-model ones.
    let text_config =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/rotten-tomatoes.toml");
    assert_eq!(
        TaskKind::of_toml(&std::fs::read_to_string(text_config).unwrap()),
        TaskKind::Text
    );
}

#[test]
fn the_student_init_defaults_to_random_and_survives_the_saved_config() {
    let base = committed();
    let config = LmExperimentConfig::from_toml(&base, "lm.toml").unwrap();
    assert_eq!(config.student.init, StudentInit::Random);
    assert_eq!(config.student.layers_from, None);
    // A resumed run reads the config the run saved, so the students start the same way.
    for (to, init, layers) in [
        (
            "init = \"pca-embeddings\"",
            StudentInit::PcaEmbeddings,
            None,
        ),
        (
            "init = \"teacher-layers\"",
            StudentInit::TeacherLayers,
            None,
        ),
        (
            "init = \"teacher-layers\"\nlayers_from = [0, 9, 20, 29]",
            StudentInit::TeacherLayers,
            Some(vec![0, 9, 20, 29]),
        ),
    ] {
        let text = base.replacen("hidden = 128\n", &format!("hidden = 128\n{to}\n"), 1);
        let config = LmExperimentConfig::from_toml(&text, "lm.toml").unwrap();
        assert_eq!(config.student.init, init);
        assert_eq!(config.student.layers_from, layers);
        let saved = toml::to_string(&config).unwrap();
        assert_eq!(
            LmExperimentConfig::from_toml(&saved, "config.toml").unwrap(),
            config
        );
    }
}

#[test]
fn bad_files_get_one_line_naming_the_key() {
    let base = committed();
    for (from, to, expected) in [
        ("max_len = 24", "max_len = 24\nmax_length = 3", "max_length"),
        ("max_len = 24", "max_len = 1", "lm.max_len"),
        ("steps = 60", "steps = 0", "train.steps"),
        (
            "held_out_fraction = 0.1",
            "held_out_fraction = 1.5",
            "lm.held_out_fraction",
        ),
        (
            "kind = \"jsd\"\nbeta = 0.5",
            "kind = \"jsd\"",
            "beta: required",
        ),
        (
            "kind = \"reverse_kl\"",
            "kind = \"reverse_kl\"\nbeta = 0.3",
            "beta: not a setting",
        ),
        (
            "kind = \"jsd\"\nbeta = 0.5",
            "kind = \"skew_kl\"\nalpha = 1.0",
            "alpha",
        ),
        ("kind = \"reverse_kl\"", "kind = \"tv\"", "kind"),
        (
            "name = \"reverse-kl\"",
            "name = \"forward-kl\"",
            "used twice",
        ),
        (
            "name = \"scratch\"",
            "name = \"teacher\"",
            "names the teacher",
        ),
        (
            "kind = \"forward_kl\"",
            "kind = \"forward_kl\"\nce_weight = 2.0",
            "ce_weight",
        ),
        ("max_texts = 300", "max_texts = 0", "corpus.max_texts"),
        ("filter_column = \"category\"\n", "", "corpus.filter_column"),
        ("hidden = 128\n", "hidden = 128\nwidth = 3\n", "width"),
        (
            "hidden = 128\n",
            "hidden = 128\ninit = \"pca\"\n",
            "student.init",
        ),
        (
            "hidden = 128\n",
            "hidden = 128\nlayers_from = [0, 1, 2, 3]\n",
            "student.layers_from: not a setting of init = \"random\"",
        ),
        (
            "hidden = 128\n",
            "hidden = 128\ninit = \"teacher-layers\"\nlayers_from = [0, 29]\n",
            "student.layers_from: expected 4 teacher layers",
        ),
    ] {
        assert!(base.contains(from), "{from:?} not in the config");
        let text = base.replacen(from, to, 1);
        let message = LmExperimentConfig::from_toml(&text, "lm.toml")
            .expect_err(to)
            .to_string();
        assert!(!message.contains('\n'), "not one line: {message}");
        assert!(message.starts_with("lm.toml"), "{message}");
        assert!(message.contains(expected), "{to:?}: {message}");
    }
}

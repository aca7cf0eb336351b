//! `apprentice methods` lists every method and scheme the experiment file accepts, with defaults.

use apprentice::config::METHOD_NAMES;

#[test]
fn methods_lists_every_selectable_method_with_its_defaults() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .arg("methods")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    // Every name the config accepts is listed, and nothing the config would refuse.
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    for name in METHOD_NAMES {
        assert!(listed.contains(name), "{name} missing:\n{text}");
    }
    for name in &listed {
        assert!(
            METHOD_NAMES.contains(name),
            "{name} is listed but not selectable"
        );
    }
    assert!(text.contains("distill.methods"));
    assert!(text.contains("warmup_epochs") && text.contains("20"));
    assert!(text.contains("born_again.generations"));
}

//! `apprentice methods` lists every method with its defaults and says which can be selected.

#[test]
fn methods_lists_every_method_and_its_status() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .arg("methods")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for name in ["kd", "dkd", "dist", "fitnet", "at", "rkd", "pkt", "sp"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("distill.method = \"dkd\""));
    assert!(text.contains("not yet selectable"));
    assert!(text.contains("warmup_epochs") && text.contains("20"));
}

//! `apprentice tune` on the embedded quickstart: one table per seed with the chosen temperature.

use std::process::Command;

#[test]
fn tune_prints_each_seeds_table_with_one_choice() {
    let output = Command::new(env!("CARGO_BIN_EXE_apprentice"))
        .args(["tune", "--seeds", "0,1"])
        .output()
        .expect("cannot start the apprentice binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for seed in [0, 1] {
        assert!(stdout.contains(&format!("seed {seed}: ")), "{stdout}");
    }
    let chosen: Vec<&str> = stdout.lines().filter(|l| l.ends_with("← chosen")).collect();
    assert_eq!(chosen.len(), 2, "one choice per seed:\n{stdout}");
    for line in chosen {
        let temperature: f64 = line.split_whitespace().next().unwrap().parse().unwrap();
        assert!([1.0, 2.0, 4.0, 8.0, 16.0].contains(&temperature), "{line}");
    }
}

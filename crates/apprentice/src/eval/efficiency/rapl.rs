//! Energy from RAPL: [`Rapl`] finds the package-level counters of Linux's powercap interface,
//! reads them and turns two readings into joules, allowing for wrap-around. Separate because it
//! is the one part that reads the operating system's files, and is absent on most machines.

use std::path::{Path, PathBuf};

/// Where Linux exposes RAPL energy counters.
pub const RAPL_ROOT: &str = "/sys/class/powercap";

/// One package-level RAPL counter.
#[derive(Debug, Clone)]
struct RaplDomain {
    label: String,
    energy_file: PathBuf,
    /// The counter wraps to 0 after this many microjoules.
    range_uj: u64,
}

/// The package-level RAPL counters of the machine, read together.
///
/// Only top-level domains (`intel-rapl:N`, one per processor package) are summed: their
/// sub-domains (cores, uncore, DRAM) are parts of them, and adding them would count energy
/// twice. AMD processors expose the same interface under the same names.
#[derive(Debug, Clone)]
pub struct Rapl {
    domains: Vec<RaplDomain>,
}

impl Rapl {
    /// Finds and tries the counters under `root` (normally [`RAPL_ROOT`]).
    ///
    /// # Errors
    ///
    /// A one-line reason when there are no package counters, or they cannot be read (reading
    /// them usually needs root since Linux 5.10).
    pub fn open(root: &Path) -> Result<Rapl, String> {
        let entries = std::fs::read_dir(root)
            .map_err(|_| "no RAPL energy counters on this machine (no powercap interface)")?;
        let mut domains = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(index) = file_name.strip_prefix("intel-rapl:") else {
                continue;
            };
            if index.contains(':') || index.parse::<u32>().is_err() {
                continue;
            }
            let dir = entry.path();
            let label = std::fs::read_to_string(dir.join("name"))
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| file_name.clone());
            let range_uj = std::fs::read_to_string(dir.join("max_energy_range_uj"))
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            domains.push(RaplDomain {
                label,
                energy_file: dir.join("energy_uj"),
                range_uj,
            });
        }
        if domains.is_empty() {
            return Err("no RAPL package energy counters on this machine".into());
        }
        domains.sort_by(|a, b| a.label.cmp(&b.label));
        let meter = Rapl { domains };
        meter.read().map_err(|error| {
            format!("RAPL energy counters exist but cannot be read ({error}); reading them usually needs root")
        })?;
        Ok(meter)
    }

    /// The counters' names, e.g. `rapl package-0, package-1`.
    pub fn describe(&self) -> String {
        let labels: Vec<&str> = self.domains.iter().map(|d| d.label.as_str()).collect();
        format!("rapl {}", labels.join(", "))
    }

    /// Current value of each counter, in microjoules.
    pub(super) fn read(&self) -> Result<Vec<u64>, String> {
        self.domains
            .iter()
            .map(|domain| {
                let text = std::fs::read_to_string(&domain.energy_file)
                    .map_err(|error| format!("{}: {error}", domain.energy_file.display()))?;
                text.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "{}: not a counter value: {:?}",
                        domain.energy_file.display(),
                        text.trim()
                    )
                })
            })
            .collect()
    }

    /// Joules spent between two readings, allowing each counter to have wrapped once.
    pub(super) fn joules_between(&self, before: &[u64], after: &[u64]) -> f64 {
        let microjoules: u64 = self
            .domains
            .iter()
            .zip(before.iter().zip(after))
            .map(|(domain, (&start, &end))| {
                if end >= start {
                    end - start
                } else {
                    domain.range_uj.saturating_sub(start).saturating_add(end)
                }
            })
            .sum();
        microjoules as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rapl_reads_packages_and_survives_wrap_around() {
        let root = tempfile::tempdir().unwrap();
        let write = |dir: &str, name: &str, energy: u64| {
            let path = root.path().join(dir);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(path.join("energy_uj"), format!("{energy}\n")).unwrap();
            std::fs::write(path.join("max_energy_range_uj"), "1000000\n").unwrap();
        };
        write("intel-rapl:0", "package-0", 999_000);
        write("intel-rapl:0:0", "core", 5);
        write("intel-rapl:1", "package-1", 10);
        let meter = Rapl::open(root.path()).unwrap();
        assert_eq!(meter.describe(), "rapl package-0, package-1");
        let before = meter.read().unwrap();
        assert_eq!(before, vec![999_000, 10]);
        // Package 0 wrapped past its range; package 1 moved on normally.
        let joules = meter.joules_between(&before, &[500, 2_010]);
        assert!((joules - (0.0015 + 0.002)).abs() < 1e-12, "{joules}");
    }

    #[test]
    fn rapl_absence_is_a_reason_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let missing = Rapl::open(&root.path().join("nothing")).unwrap_err();
        assert!(missing.contains("no RAPL"), "{missing}");
        let empty = Rapl::open(root.path()).unwrap_err();
        assert!(empty.contains("no RAPL"), "{empty}");
        let dir = root.path().join("intel-rapl:0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("energy_uj"), "garbage").unwrap();
        let unreadable = Rapl::open(root.path()).unwrap_err();
        assert!(unreadable.contains("cannot be read"), "{unreadable}");
    }
}

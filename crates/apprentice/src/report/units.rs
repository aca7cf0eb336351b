//! Numbers as people read them: thousands separators, SI suffixes, binary sizes, durations,
//! energies and cost ratios. Shared by the report and the command line's tables.

/// `1234567` as `"1,234,567"`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A count with an SI suffix and three significant digits: `169994` → `"170k"`.
pub fn si(value: f64) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e12 => (value / 1e12, "T"),
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    format!("{}{suffix}", significant(scaled, 3))
}

/// `value` with `digits` significant digits, without trailing zeros after the point.
pub fn significant(value: f64, digits: i32) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).clamp(0, 12) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Bytes in binary units: `341512` → `"334 KiB"`.
pub fn bytes(value: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = value as f64;
    let mut unit = 0;
    while scaled >= 1024.0 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{} {}", significant(scaled, 3), UNITS[unit])
    }
}

/// Seconds in the unit that suits them: `0.000042` → `"42 µs"`.
pub fn duration(seconds: f64) -> String {
    with_prefix(seconds, "s")
}

/// Joules in the unit that suits them: `0.0021` → `"2.1 mJ"`.
pub fn energy(joules: f64) -> String {
    with_prefix(joules, "J")
}

/// A physical quantity with the SI sub-unit prefix that keeps it between 1 and 1000.
fn with_prefix(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "—".to_string();
    }
    let (scaled, prefix) = match value.abs() {
        v if v >= 1.0 => (value, ""),
        v if v >= 1e-3 => (value * 1e3, "m"),
        v if v >= 1e-6 => (value * 1e6, "µ"),
        _ => (value * 1e9, "n"),
    };
    format!("{} {prefix}{unit}", significant(scaled, 3))
}

/// A cost ratio (student / teacher) in words: `0.028` → `"36× less"`, `2.0` → `"2× more"`,
/// with `less`/`more` replaced by the given words.
pub fn times(ratio: f64, less: &str, more: &str) -> String {
    if !ratio.is_finite() || ratio <= 0.0 {
        return "—".to_string();
    }
    if (ratio - 1.0).abs() < 0.005 {
        return "same".to_string();
    }
    if ratio < 1.0 {
        format!("{}× {less}", significant(1.0 / ratio, 3))
    } else {
        format!("{}× {more}", significant(ratio, 3))
    }
}

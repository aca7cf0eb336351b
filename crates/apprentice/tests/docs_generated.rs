//! Every results table and every number in the prose of README.md, bench/RESULTS.md and docs/
//! that is marked as generated equals what its committed raw file generates
//! (`apprentice::report::markdown` for tables, `apprentice::report::inline_values` for
//! numbers): a figure edited by hand, or a raw file replaced without regenerating the page,
//! fails here. A figure that looks measured (a decimal with `%`, `×` or a time unit, or a `±`
//! spread) typed into the prose outside such markers fails here too.
//!
//! After a rerun, write the pages again with
//! `APPRENTICE_BLESS=1 cargo test --release --workspace --test docs_generated`.

use std::path::{Path, PathBuf};

use apprentice::report::inline_values::{VALUE_START, regenerate_values};
use apprentice::report::markdown::{BLOCK_END, BLOCK_START, regenerate_blocks};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md, bench/RESULTS.md and every Markdown file under docs/, sorted.
fn pages() -> Vec<PathBuf> {
    fn walk(folder: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut pages = vec![root().join("README.md"), root().join("bench/RESULTS.md")];
    walk(&root().join("docs"), &mut pages);
    pages.sort();
    pages
}

fn name(page: &Path) -> String {
    page.strip_prefix(root())
        .unwrap_or(page)
        .display()
        .to_string()
}

#[test]
fn committed_pages_equal_what_their_raw_files_generate() {
    let bless = std::env::var("APPRENTICE_BLESS").is_ok_and(|v| v == "1");
    let mut blocks = 0;
    let mut values = 0;
    let mut stale = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        blocks += text
            .lines()
            .filter(|l| l.trim_start().starts_with(BLOCK_START))
            .count();
        values += text.matches(VALUE_START).count();
        let generated = regenerate_page(&text, &name(&page));
        if generated != text {
            if bless {
                std::fs::write(&page, &generated).unwrap();
                eprintln!("rewrote {}", name(&page));
            } else {
                let line = text
                    .lines()
                    .zip(generated.lines())
                    .position(|(a, b)| a != b)
                    .map_or(text.lines().count().min(generated.lines().count()), |i| i)
                    + 1;
                stale.push(format!("{} (first difference at line {line})", name(&page)));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "pages differ from what their raw files generate: {}; regenerate them with \
         APPRENTICE_BLESS=1 cargo test --release --workspace --test docs_generated",
        stale.join(", ")
    );
    // The README's quickstart, Fashion-MNIST and efficiency tables at least.
    assert!(blocks >= 3, "only {blocks} generated blocks found");
    // The README's prose quotes the quickstart and Fashion-MNIST runs.
    assert!(values >= 10, "only {values} generated values found");
}

/// A page with its tables and then its values regenerated.
fn regenerate_page(text: &str, page: &str) -> String {
    let text = regenerate_blocks(text, page, &root()).unwrap_or_else(|e| panic!("{e}"));
    regenerate_values(&text, page, &root()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_digit_edited_by_hand_is_caught() {
    let page = root().join("README.md");
    let text = std::fs::read_to_string(&page).unwrap();
    let start = text
        .find(BLOCK_START)
        .expect("README has a generated block");
    // The first digit inside the first block's table.
    let body = start + text[start..].find('\n').unwrap();
    let end = body + text[body..].find(BLOCK_END).unwrap();
    let offset = body
        + text[body..end]
            .find(|c: char| c.is_ascii_digit())
            .expect("a digit in the block");
    let digit = text.as_bytes()[offset];
    let replacement = if digit == b'9' {
        '0'
    } else {
        (digit + 1) as char
    };
    let mut edited = text.clone();
    edited.replace_range(offset..offset + 1, &replacement.to_string());
    let regenerated = regenerate_blocks(&edited, "README.md", &root()).unwrap();
    assert_ne!(regenerated, edited);
    assert_eq!(
        regenerated,
        regenerate_blocks(&text, "README.md", &root()).unwrap()
    );
}

#[test]
fn malformed_blocks_are_named() {
    let unclosed = "intro\n<!-- generated: apprentice report --markdown docs/results/data/quickstart.json -->\n| a |\n";
    let error = regenerate_blocks(unclosed, "page.md", &root())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("page.md, line 2") && error.contains("end generated"),
        "{error}"
    );
    let unknown =
        "<!-- generated: apprentice report --markdown=pie x.json -->\n<!-- end generated -->\n";
    let error = regenerate_blocks(unknown, "page.md", &root())
        .unwrap_err()
        .to_string();
    assert!(error.contains("pie"), "{error}");
    let missing = "<!-- generated: apprentice report --markdown no/such/results.json -->\n<!-- end generated -->\n";
    let error = regenerate_blocks(missing, "page.md", &root())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no/such/results.json"), "{error}");
    // A page without blocks is left alone.
    assert_eq!(
        regenerate_blocks("plain\n", "p.md", &root()).unwrap(),
        "plain\n"
    );
}

const QUICK: &str = "<!-- values: q = docs/results/data/quickstart.json -->\n";

#[test]
fn a_value_typed_by_hand_is_caught_and_regenerated() {
    let value = "<!-- value: q:models/name=kd-all@5%/test/accuracy/mean %.1 -->";
    let typed = format!("{QUICK}reaches {value}99.9<!-- end value -->% here\n");
    let generated = regenerate_values(&typed, "page.md", &root()).unwrap();
    assert_ne!(generated, typed);
    // Regenerating is idempotent, and only the text between the comments changes.
    assert_eq!(
        regenerate_values(&generated, "page.md", &root()).unwrap(),
        generated
    );
    let text = generated
        .split(value)
        .nth(1)
        .and_then(|rest| rest.split("<!-- end value -->").next())
        .unwrap();
    assert!(
        text.parse::<f64>().is_ok_and(|v| v > 50.0 && v < 100.0),
        "{text}"
    );
    assert!(
        generated.ends_with("<!-- end value -->% here\n"),
        "{generated}"
    );
}

#[test]
fn differences_of_two_values_are_generated() {
    let page = format!(
        "{QUICK}<!-- value: q:models/name=kd-all@5%/test/accuracy/mean - q:models/name=scratch@5%/test/accuracy/mean +%.2 -->x<!-- end value -->\n\
         <!-- value: q:models/name=teacher/params / q:models/name=scratch/params sig3 -->x<!-- end value -->\n"
    );
    let generated = regenerate_values(&page, "page.md", &root()).unwrap();
    let texts: Vec<&str> = generated
        .lines()
        .skip(1)
        .map(|l| l.split("-->").nth(1).unwrap().split("<!--").next().unwrap())
        .collect();
    assert!(texts[0].starts_with('+'), "{generated}");
    assert!(
        texts[1].parse::<f64>().is_ok_and(|r| r > 1.0),
        "{generated}"
    );
}

#[test]
fn malformed_values_are_named_with_their_line() {
    // (page, what the error must say); every error names the page and the line.
    let no_source = "<!-- value: q:models/0/params , -->1<!-- end value -->\n".to_string();
    let cases = [
        (
            no_source,
            "line 1: \"q:models/0/params\": no raw file named \"q\"",
        ),
        (
            "<!-- values: q = no/such.json -->\n".to_string(),
            "line 1: no/such.json",
        ),
        (
            format!("{QUICK}<!-- value: q:models/name=nobody/params , -->1<!-- end value -->\n"),
            "line 2: docs/results/data/quickstart.json: models/name=nobody/params: no element with name = nobody",
        ),
        (
            format!("{QUICK}<!-- value: q:models/0/name , -->1<!-- end value -->\n"),
            "line 2: docs/results/data/quickstart.json: models/0/name: \"teacher\" is not a number",
        ),
        (
            format!("{QUICK}<!-- value: q:models/0/params %d -->1<!-- end value -->\n"),
            "line 2: unknown format \"%d\"",
        ),
        (
            format!("{QUICK}<!-- value: q:models/0/params , -->1\n"),
            "line 2: `<!-- value: q:models/0/params , -->` without `<!-- end value -->`",
        ),
    ];
    for (page, expected) in cases {
        let error = regenerate_values(&page, "page.md", &root()).unwrap_err();
        assert!(
            error.starts_with("page.md, ") && error.contains(expected),
            "{page}: {error}"
        );
    }
}

/// `line` without generated values, inline code spans and HTML comments.
fn prose(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    loop {
        let next = [VALUE_START, "`", "<!--"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            // At one place, a value's opening comment before the plain comment it starts with.
            .min_by_key(|(i, m)| (*i, std::cmp::Reverse(m.len())));
        let Some((at, marker)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let close = match marker {
            VALUE_START => "<!-- end value -->",
            "`" => "`",
            _ => "-->",
        };
        let after = &rest[at + marker.len()..];
        rest = after.find(close).map_or("", |i| &after[i + close.len()..]);
    }
}

/// Figures in `text` that look measured: a decimal number followed by `%`, `×` or a time
/// unit, or a `±` spread.
fn measured_figures(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '±'
            && chars[i + 1..]
                .iter()
                .find(|c| **c != ' ')
                .is_some_and(char::is_ascii_digit)
        {
            found.push(chars[i..(i + 8).min(chars.len())].iter().collect());
        }
        let starts_number = chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit());
        if starts_number {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let number: String = chars[i..j].iter().collect();
            let number = number.trim_end_matches('.');
            let after: String = chars[j..].iter().take(4).collect();
            let unit = after.trim_start();
            let time_unit = ["s", "ms", "µs", "min"].iter().any(|u| {
                unit.strip_prefix(u)
                    .is_some_and(|r| r.chars().next().is_none_or(|c| !c.is_alphanumeric()))
            });
            if number.contains('.') && (unit.starts_with('%') || unit.starts_with('×') || time_unit)
            {
                found.push(format!("{number}{after}"));
            }
            i = j;
            continue;
        }
        i += 1;
    }
    found
}

#[test]
fn the_prose_types_no_measured_figure() {
    let mut typed = Vec::new();
    for page in pages() {
        // A run's own summary, written by `apprentice report`, is generated as a whole.
        if page.starts_with(root().join("docs/examples")) {
            continue;
        }
        let text = std::fs::read_to_string(&page).unwrap();
        let (mut in_block, mut in_code) = (false, false);
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with(BLOCK_START) {
                in_block = true;
            } else if trimmed.starts_with(BLOCK_END) {
                in_block = false;
            } else if trimmed.starts_with("```") {
                in_code = !in_code;
            } else if !in_block && !in_code && !line.contains("goal") {
                for figure in measured_figures(&prose(line)) {
                    typed.push(format!("{}:{}: {figure}", name(&page), index + 1));
                }
            }
        }
    }
    assert!(
        typed.is_empty(),
        "figures typed into the prose; generate them from their raw files \
         (<!-- value: ... -->):\n{}",
        typed.join("\n")
    );
}

#[test]
fn typed_figures_are_recognised() {
    assert_eq!(measured_figures("reaches 95.5% against"), ["95.5% ag"]);
    assert_eq!(
        measured_figures("1.86× faster, 8.47 µs"),
        ["1.86× fa", "8.47 µs"]
    );
    assert_eq!(measured_figures("51.0 ± 2.9"), ["± 2.9"]);
    // Settings, counts and versions are not measurements.
    assert!(measured_figures("T = 4, lr 0.001, 5% of labels, burn 0.22.1, 3 s").is_empty());
    assert!(
        measured_figures(&prose(
            "`95.5%` <!-- value: q:x %.1 -->95.5<!-- end value -->%"
        ))
        .is_empty()
    );
}

//! The report in a real browser: headless Chromium opens `report.html` from disk, with the
//! network features that could fetch anything turned off; its screenshot must not be blank
//! and must show the charts' colours, and its DOM must hold every chart as an SVG drawing.
//!
//! Without Chromium the test prints a SKIPPED line and passes, unless
//! `APPRENTICE_REQUIRE_BROWSER=1` (as in CI), where a missing browser fails it.
//! `APPRENTICE_CHROMIUM` names the browser binary when it is not `chromium` on the `PATH`;
//! `APPRENTICE_SCREENSHOT_DIR`, when set, receives a copy of each screenshot to look at.

mod report_common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use report_common::tiny_run;

/// The browser to use, if there is one.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("APPRENTICE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for folder in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = folder.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Runs the browser headless on `page` with `extra` arguments and a fresh profile, killing
/// it if it hangs.
fn browse(browser: &Path, page: &Path, profile: &Path, extra: &[String]) -> Output {
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the browser starts");
    // Read both pipes while waiting: a page's DOM is larger than a pipe's buffer, and a
    // browser blocked on a full pipe would never exit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the browser can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within 120 s", browser.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout is read"),
        stderr: stderr.join().expect("stderr is read"),
    }
}

/// Decoded RGB pixels of a PNG file.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the screenshot exists"),
    ));
    let mut reader = decoder.read_info().expect("the screenshot is a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane PNG size")];
    let frame = reader
        .next_frame(&mut buffer)
        .expect("the screenshot decodes");
    let bytes = &buffer[..frame.buffer_size()];
    let channels = match frame.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    let rgb = bytes
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (frame.width, frame.height, rgb)
}

fn near(pixel: [u8; 3], colour: [u8; 3]) -> bool {
    pixel
        .iter()
        .zip(colour)
        .all(|(&a, b)| (i32::from(a) - i32::from(b)).abs() <= 24)
}

/// Screenshots `page` and reads its DOM; checks that it is not blank and holds `charts`.
fn check_page(browser: &Path, page: &Path, charts: &[&str], work: &Path, label: &str) {
    let shot = work.join(format!("{label}.png"));
    let output = browse(
        browser,
        page,
        &work.join(format!("profile-{label}-shot")),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600".to_string(),
        ],
    );
    assert!(
        output.status.success() && shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if let Some(folder) = std::env::var_os("APPRENTICE_SCREENSHOT_DIR") {
        let folder = PathBuf::from(folder);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(&shot, folder.join(format!("report-{label}.png"))).unwrap();
    }
    let (width, height, rgb) = pixels(&shot);
    assert!(width >= 1000 && height >= 2000, "{width}×{height}");
    // Ink: neither the page's background nor the white of its sections (a blank page has
    // none; the reduced report has about 3% of its pixels inked, the full one 6%).
    let background = rgb[0];
    let painted = rgb
        .iter()
        .filter(|&&p| !near(p, background) && !near(p, [255, 255, 255]))
        .count();
    let share = painted as f64 / rgb.len() as f64;
    assert!(
        share > 0.01,
        "{label}: the screenshot is nearly blank ({share:.4})"
    );
    let mut colours: Vec<[u8; 3]> = rgb.iter().map(|p| p.map(|c| c & 0xf0)).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 30,
        "{label}: only {} colours",
        colours.len()
    );
    // The teacher's grey, the scratch student's orange and the distilled student's blue.
    for (name, colour) in [
        ("teacher grey", [68, 68, 68]),
        ("scratch orange", [230, 159, 0]),
        ("distilled blue", [0, 114, 178]),
    ] {
        let count = rgb.iter().filter(|&&p| near(p, colour)).count();
        assert!(count > 200, "{label}: {name} shows on {count} pixels only");
    }

    let output = browse(
        browser,
        page,
        &work.join(format!("profile-{label}-dom")),
        &["--dump-dom".to_string()],
    );
    assert!(output.status.success(), "no DOM");
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(dom.contains("</html>"), "the DOM is cut short");
    for id in apprentice::report::render::CHART_IDS {
        let marker = format!("id=\"chart-{id}\"");
        let Some(start) = dom.find(&marker) else {
            assert!(
                !charts.contains(&id),
                "{label}: chart {id} missing from the DOM"
            );
            continue;
        };
        assert!(charts.contains(&id), "{label}: unexpected chart {id}");
        let figure = &dom[start..];
        let figure = &figure[..figure.find("</figure>").expect("the figure closes")];
        assert!(figure.contains("data-chart=\"{id}\"".replace("{id}", id).as_str()));
        assert!(
            figure.contains("<svg") && figure.contains("</svg>"),
            "{id}: no SVG"
        );
        assert!(figure.contains("<text"), "{id}: no text in the chart");
        assert!(
            figure.contains("<circle") || figure.contains("<polyline") || figure.contains("<rect"),
            "{id}: nothing drawn"
        );
    }
}

#[test]
fn the_report_renders_in_a_real_browser() {
    let Some(browser) = chromium() else {
        if std::env::var("APPRENTICE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "APPRENTICE_REQUIRE_BROWSER=1 but no chromium on the PATH (install Debian's \
                 chromium, or set APPRENTICE_CHROMIUM)"
            );
        }
        println!(
            "SKIPPED the_report_renders_in_a_real_browser: chromium not found \
             (install it, or set APPRENTICE_CHROMIUM)"
        );
        return;
    };
    let full = tempfile::tempdir().unwrap();
    let run = tiny_run(full.path(), &[]);
    check_page(
        &browser,
        &run.join("report.html"),
        &["knowledge", "learning", "cost", "agreement", "confusion"],
        full.path(),
        "full",
    );

    // One seed and no checkpoints: a reduced page, still complete as far as it goes.
    let reduced = tempfile::tempdir().unwrap();
    let run = tiny_run(reduced.path(), &["--no-checkpoints", "--seeds", "0"]);
    check_page(
        &browser,
        &run.join("report.html"),
        &["knowledge", "learning", "cost", "agreement"],
        reduced.path(),
        "reduced",
    );
}

//! Runs the browser benchmarks, gathers the core (criterion) figures and the package sizes, and
//! writes `BENCHMARKS.md`. Called by `./build.sh bench` after `cargo bench`.
//!
//! Usage: `bench-report <workspace root>`

use e2e::report::{self, Figure};
use std::path::{Path, PathBuf};
use std::process::Command;

const CORE: &str = "Core (native, criterion medians)";
const SIZES: &str = "Package sizes";

fn core_figures(root: &Path) -> Vec<Figure> {
    report::criterion_figures(&root.join("target/criterion"))
        .into_iter()
        .map(|(name, ns)| Figure::plain(CORE, name, report::duration_ns(ns)))
        .collect()
}

fn gzip_size(path: &Path) -> Option<u64> {
    let out = Command::new("gzip").arg("-9c").arg(path).output().ok()?;
    Some(out.stdout.len() as u64)
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB ({bytes} bytes)", bytes as f64 / 1024.0)
}

fn size_figures(root: &Path) -> Vec<Figure> {
    let mut figures = Vec::new();
    let wasm = root.join("www/pkg/koha_offline_circ_bg.wasm");
    if let Ok(meta) = std::fs::metadata(&wasm) {
        figures.push(Figure::plain(SIZES, ".wasm (raw)", kb(meta.len())));
        if let Some(gz) = gzip_size(&wasm) {
            figures.push(Figure::plain(SIZES, ".wasm (gzip -9)", kb(gz)));
        }
    }
    let xpi = std::fs::read_dir(root.join("dist"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "xpi"));
    if let Some(xpi) = xpi {
        let bytes = std::fs::metadata(&xpi).map(|m| m.len()).unwrap_or(0);
        figures.push(Figure::against(
            SIZES,
            ".xpi",
            kb(bytes),
            "≤ 200 KB",
            bytes <= 200 * 1024,
        ));
    }
    figures
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let firefox = command_output("firefox-esr", &["--version"]);
    format!("{cpu}, {cores} cores; {firefox}")
}

#[tokio::main]
async fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut figures = Vec::new();
    figures.extend(size_figures(&root));
    figures.extend(core_figures(&root));
    // The browser benchmarks drive the test build; the sizes above are the shipped add-on's.
    let addon = root.join("www-test");
    figures.extend(e2e::bench::run_all(&addon).await);
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = command_output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let text = report::render(&machine(), &date, &commit, &figures);
    let out = root.join("BENCHMARKS.md");
    std::fs::write(&out, &text).expect("BENCHMARKS.md written");
    println!("{text}");
    println!("wrote {}", out.display());
}

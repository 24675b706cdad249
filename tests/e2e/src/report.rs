//! The benchmark report: figures from every area, each beside its target, written as
//! `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The table it belongs to, e.g. `Desk (Firefox)`.
    pub area: &'static str,
    /// What was measured.
    pub name: String,
    /// The figure, already formatted with its unit (e.g. `12.3 ms`, `2.9×`).
    pub value: String,
    /// The goal and whether it was met; `None` when the figure has no target.
    pub target: Option<Target>,
}

/// A goal to report against (goals, not test assertions).
#[derive(Debug, Clone)]
pub struct Target {
    /// The goal in words, e.g. `< 500 ms`.
    pub goal: String,
    /// Whether the figure meets it.
    pub met: bool,
}

impl Figure {
    /// One line for a benchmark run on its own: area, name, value and the target, if any.
    pub fn line(&self) -> String {
        let target = self
            .target
            .as_ref()
            .map(|t| {
                format!(
                    " (target {}: {})",
                    t.goal,
                    if t.met { "met" } else { "MISSED" }
                )
            })
            .unwrap_or_default();
        format!("{} | {} | {}{target}", self.area, self.name, self.value)
    }

    /// A figure without a target.
    pub fn plain(area: &'static str, name: impl Into<String>, value: impl Into<String>) -> Self {
        Figure {
            area,
            name: name.into(),
            value: value.into(),
            target: None,
        }
    }

    /// A figure with a target.
    pub fn against(
        area: &'static str,
        name: impl Into<String>,
        value: impl Into<String>,
        goal: impl Into<String>,
        met: bool,
    ) -> Self {
        Figure {
            area,
            name: name.into(),
            value: value.into(),
            target: Some(Target {
                goal: goal.into(),
                met,
            }),
        }
    }
}

/// Milliseconds with a sensible number of decimals.
pub fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} ms")
    } else if value >= 1.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.3} ms")
    }
}

/// Nanoseconds, as criterion reports them, in the largest fitting unit.
pub fn duration_ns(ns: f64) -> String {
    match ns {
        n if n >= 1e6 => ms(n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.1} ns"),
    }
}

/// The median of a sample (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    percentile(samples, 50.0)
}

/// The p-th percentile (nearest rank) of a sample (sorted in place).
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Reads criterion's median estimates (`target/criterion/<name>/new/estimates.json`).
pub fn criterion_figures(dir: &Path) -> Vec<(String, f64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, f64)> = entries
        .flatten()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path().join("new/estimates.json")).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            let median = json["median"]["point_estimate"].as_f64()?;
            Some((entry.file_name().to_string_lossy().into_owned(), median))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Renders the report: a header naming machine, date and commit, then one table per area in
/// the order the areas first appear.
pub fn render(machine: &str, date: &str, commit: &str, figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `./build.sh bench`; do not edit by hand.\n\n- machine: {machine}\n- date: {date}\n- commit: {commit}\n"
    );
    let mut areas: Vec<&str> = Vec::new();
    for figure in figures {
        if !areas.contains(&figure.area) {
            areas.push(figure.area);
        }
    }
    for area in areas {
        let _ = writeln!(out, "## {area}\n");
        let _ = writeln!(
            out,
            "| measure | figure | target | met |\n|---|---|---|---|"
        );
        for f in figures.iter().filter(|f| f.area == area) {
            let (goal, met) = match &f.target {
                Some(t) => (t.goal.as_str(), if t.met { "yes" } else { "**NO**" }),
                None => ("–", "–"),
            };
            let _ = writeln!(out, "| {} | {} | {goal} | {met} |", f.name, f.value);
        }
        let _ = writeln!(out);
    }
    let missed: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.target.as_ref().is_some_and(|t| !t.met))
        .collect();
    if missed.is_empty() {
        let _ = writeln!(out, "Every figure with a target meets it.");
    } else {
        let _ = writeln!(out, "Missed targets:\n");
        for f in missed {
            let goal = f.target.as_ref().map_or("", |t| t.goal.as_str());
            let _ = writeln!(
                out,
                "- {} / {}: {} (target {goal})",
                f.area, f.name, f.value
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut xs, 99.0), 99.0);
        assert_eq!(median(&mut xs), 50.0);
        assert_eq!(percentile(&mut [7.0], 99.0), 7.0);
    }

    #[test]
    fn report_says_plainly_what_missed() {
        let figures = vec![
            Figure::against("Sizes", ".xpi", "160 KB", "< 150 KB", false),
            Figure::plain("Core", "koc write 100k", "31 ms"),
        ];
        let text = render("m", "d", "c", &figures);
        assert!(text.contains("| .xpi | 160 KB | < 150 KB | **NO** |"));
        assert!(text.contains("- Sizes / .xpi: 160 KB (target < 150 KB)"));
        assert!(text.find("## Sizes").unwrap() < text.find("## Core").unwrap());
    }
}

//! What a run writes: `acceptance-<run>.json` for scripts and `acceptance-<run>.md` for a
//! maintainer to commit under docs/acceptance/ (scenario, pass or fail, wall time, AWS calls, and
//! for a failure the error text AWS gave).

use std::path::{Path, PathBuf};

/// One scenario's outcome.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub passed: bool,
    pub wall_s: f64,
    /// AWS requests of the `cargo fixedip` runs, as their `--json` reports count them.
    pub calls: u64,
    pub mutating_calls: u64,
    /// What went wrong: the CLI's last lines (AWS's error text) or the probe's finding.
    pub error: Option<String>,
    /// What was seen, e.g. the IPs or the probe's answer.
    pub detail: String,
}

/// A whole run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub format_version: u32,
    pub run: String,
    /// `emulator` or `aws`.
    pub target: String,
    pub region: String,
    /// fixedip's version (the workspace's), and the commit when git knows it.
    pub fixedip: String,
    pub started_unix: u64,
    pub wall_s: f64,
    pub scenarios: Vec<ScenarioResult>,
    /// What the closing sweep removed, and what it could not.
    pub swept: Vec<String>,
    pub sweep_errors: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.scenarios.is_empty()
            && self.scenarios.iter().all(|s| s.passed)
            && self.sweep_errors.is_empty()
    }

    /// Writes the JSON and the markdown into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let json = dir.join(format!("acceptance-{}.json", self.run));
        let markdown = dir.join(format!("acceptance-{}.md", self.run));
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        std::fs::write(&json, text + "\n").map_err(|e| format!("{}: {e}", json.display()))?;
        std::fs::write(&markdown, self.markdown())
            .map_err(|e| format!("{}: {e}", markdown.display()))?;
        Ok((json, markdown))
    }

    pub fn markdown(&self) -> String {
        let mut text = format!(
            "# Acceptance run {} ({}, {})\n\n{}: {} of {} scenarios passed in {:.0} s; fixedip {}.\n\n\
             | scenario | result | wall | calls (mutating) | detail |\n|---|---|---|---|---|\n",
            self.run,
            self.target,
            self.region,
            if self.passed() { "PASSED" } else { "FAILED" },
            self.scenarios.iter().filter(|s| s.passed).count(),
            self.scenarios.len(),
            self.wall_s,
            self.fixedip,
        );
        for s in &self.scenarios {
            let detail = s.error.as_deref().unwrap_or(&s.detail);
            text.push_str(&format!(
                "| {} | {} | {:.1} s | {} ({}) | {} |\n",
                s.scenario,
                if s.passed { "pass" } else { "**FAIL**" },
                s.wall_s,
                s.calls,
                s.mutating_calls,
                one_line(detail)
            ));
        }
        text.push_str(&format!(
            "\nSweep: {} resources removed{}.\n",
            self.swept.len(),
            match self.sweep_errors.is_empty() {
                true => String::new(),
                false => format!(
                    "; left behind (run `fixedip-acceptance sweep`): {}",
                    self.sweep_errors.join("; ")
                ),
            }
        ));
        text
    }
}

/// A table cell: one line, no pipes.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_has_a_row_per_scenario_and_says_why_one_failed() {
        let report = Report {
            format_version: 1,
            run: "0a1b2c3d".into(),
            target: "emulator".into(),
            region: "us-east-1".into(),
            fixedip: "0.1.0".into(),
            started_unix: 0,
            wall_s: 12.0,
            scenarios: vec![
                ScenarioResult {
                    scenario: "deploy: gateway per AZ".into(),
                    passed: true,
                    wall_s: 3.0,
                    calls: 40,
                    mutating_calls: 20,
                    error: None,
                    detail: "2 IPs".into(),
                },
                ScenarioResult {
                    scenario: "no-op redeploy".into(),
                    passed: false,
                    wall_s: 1.0,
                    calls: 9,
                    mutating_calls: 1,
                    error: Some("UnauthorizedOperation: no\nsecond | line".into()),
                    detail: String::new(),
                },
            ],
            swept: vec!["vpc-1".into()],
            sweep_errors: vec![],
        };
        let text = report.markdown();
        assert!(text.contains("FAILED: 1 of 2 scenarios passed"), "{text}");
        assert!(text.contains("| no-op redeploy | **FAIL** | 1.0 s | 9 (1) | UnauthorizedOperation: no / second \\| line |"), "{text}");
        assert!(!report.passed());
    }
}

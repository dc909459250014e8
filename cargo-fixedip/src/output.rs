//! Where things are printed. Results go to stdout (text, or one JSON document with `--json`);
//! progress, cargo's output, warnings and errors go to stderr, so that `cargo fixedip ips > ips.txt`
//! captures only the IPs.
//!
//! Text is written with `anstyle` styles and printed through `anstream`, which strips them when
//! color is off: `--color`, else `CARGO_TERM_COLOR`, else auto (a terminal, and no `NO_COLOR`).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Effects, Style};
use serde::Serialize;

use crate::cli::{ColorWhen, GlobalOptions};

/// Styles shared by every command's text output.
pub mod style {
    use super::*;

    /// Cargo's status verbs ("Building", "Planning").
    pub const STATUS: Style = AnsiColor::Green.on_default().effects(Effects::BOLD);
    pub const WARNING: Style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
    pub const HEADER: Style = Style::new().effects(Effects::BOLD);
    /// Something that will be created.
    pub const CREATE: Style = AnsiColor::Green.on_default();
    /// Something that exists and will be changed.
    pub const CHANGE: Style = AnsiColor::Yellow.on_default();
    /// Something that exists and stays as it is.
    pub const KEEP: Style = Style::new().effects(Effects::DIMMED);
    /// Tree lines, notes and other secondary text.
    pub const DIM: Style = Style::new().effects(Effects::DIMMED);
    /// An IP address, an id, a figure the user will copy.
    pub const VALUE: Style = AnsiColor::Cyan.on_default();
}

/// "1 step", "2 steps": a count and its noun, plural when it is not one.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The user's choice of color, before looking at the terminal.
pub fn color_when(flag: Option<ColorWhen>) -> ColorWhen {
    flag.or_else(|| match std::env::var("CARGO_TERM_COLOR").ok()?.as_str() {
        "always" => Some(ColorWhen::Always),
        "never" => Some(ColorWhen::Never),
        "auto" => Some(ColorWhen::Auto),
        _ => None,
    })
    .unwrap_or(ColorWhen::Auto)
}

/// How much to say, and in which form. One per run, handed to every command.
#[derive(Debug, Clone)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub color: ColorWhen,
}

impl Output {
    /// Also sets anstream's global color choice, so that every `anstream::stdout()`/`stderr()` in
    /// the program follows `--color` and `CARGO_TERM_COLOR`.
    pub fn new(global: &GlobalOptions) -> Output {
        let color = color_when(global.color);
        let choice = match color {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        };
        choice.write_global();
        Output {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            color,
        }
    }

    /// Whether stderr shows colors (for error reports rendered outside anstream).
    pub fn stderr_has_color(&self) -> bool {
        anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
    }

    /// The `--color` to hand to cargo, when the user chose one: cargo applies `CARGO_TERM_COLOR`
    /// and the terminal check itself.
    pub fn cargo_color_flag(&self) -> Option<&'static str> {
        match self.color {
            ColorWhen::Auto => None,
            ColorWhen::Always => Some("always"),
            ColorWhen::Never => Some("never"),
        }
    }

    /// The result of a command: its JSON form with `--json`, else its text. Rendered whole, then
    /// written at once: one write rather than one per token, and nothing half-written when it fails.
    ///
    /// A reader that went away (`| head -1`) makes the write fail with `BrokenPipe`; the caller
    /// returns it as [`crate::error::CliError::Stdout`], which `run` turns into a quiet success.
    pub fn result<T: Serialize + Display>(&self, result: &T) -> std::io::Result<()> {
        if self.json {
            self.json(result)
        } else {
            self.text(&result.to_string())
        }
    }

    /// A result's JSON form, whatever `--json` says (`ips --format json`).
    pub fn json<T: Serialize>(&self, result: &T) -> std::io::Result<()> {
        let mut document = serde_json::to_string_pretty(result)?;
        document.push('\n');
        self.text(&document)
    }

    /// Plain text to stdout (a diagram, a list of IPs), not subject to `--json`.
    pub fn text(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = anstream::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// A progress line in cargo's form, `    Planning stack default`; silent with `--quiet`.
    pub fn status(&self, verb: &str, message: impl Display) {
        if !self.quiet {
            let _ = writeln!(
                anstream::stderr(),
                "{:>12} {message}",
                styled(style::STATUS, verb)
            );
        }
    }

    /// Detail for `-v`.
    pub fn verbose(&self, message: impl Display) {
        if self.verbose > 0 {
            let _ = writeln!(anstream::stderr(), "{}", styled(style::DIM, message));
        }
    }

    /// Something the user should know although the command goes on; shown even with `--quiet`.
    pub fn warning(&self, message: impl Display) {
        let _ = writeln!(
            anstream::stderr(),
            "{}: {message}",
            styled(style::WARNING, "warning")
        );
    }

    /// A fact about the result that is not a problem (an isolated stack has no IP); shown even
    /// with `--quiet`, on stderr so that stdout stays the result.
    pub fn note(&self, message: impl Display) {
        let _ = writeln!(
            anstream::stderr(),
            "{}: {message}",
            styled(style::STATUS, "note")
        );
    }

    /// A spinner on stderr while waiting, only on a terminal and never with `--quiet`: logs and CI
    /// get the `status` lines instead. Cleared when dropped, before results print.
    pub fn spinner(&self, message: impl Into<String>) -> Spinner {
        let message = message.into();
        let bar = if self.quiet || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        };
        bar.set_message(message);
        Spinner { bar }
    }
}

/// A spinner on stderr; see [`Output::spinner`].
pub struct Spinner {
    bar: indicatif::ProgressBar,
}

impl Spinner {
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// Print a line above the spinner without tearing it.
    pub fn println(&self, line: impl AsRef<str>) {
        if self.bar.is_hidden() {
            let _ = writeln!(anstream::stderr(), "{}", line.as_ref());
        } else {
            self.bar.println(line);
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// `value` in `style`, for `format!` and `write!`.
pub fn styled(style: Style, value: impl Display) -> impl Display {
    StyledDisplay(style, value)
}

struct StyledDisplay<D>(Style, D);

impl<D: Display> Display for StyledDisplay<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.0.render(), self.1, self.0.render_reset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_color_beats_the_environment() {
        assert_eq!(color_when(Some(ColorWhen::Never)), ColorWhen::Never);
        assert_eq!(color_when(Some(ColorWhen::Always)), ColorWhen::Always);
    }

    #[test]
    fn styled_text_resets() {
        let text = styled(style::CREATE, "create").to_string();
        assert!(
            text.starts_with("\u{1b}[") && text.ends_with("\u{1b}[0m"),
            "{text:?}"
        );
        let mut stripped = Vec::new();
        anstream::StripStream::new(&mut stripped)
            .write_all(text.as_bytes())
            .unwrap();
        assert_eq!(stripped, b"create");
    }
}

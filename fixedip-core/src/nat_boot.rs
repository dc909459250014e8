//! What a NAT instance says about its own boot: the lines its user data writes to the console
//! (`cargo-fixedip/src/aws/nat_instance.rs`), read back with EC2's GetConsoleOutput.
//!
//! Why the console: it needs nothing on the instance (no instance profile, no IAM role that could
//! tag the instance, no agent) and one more read-only permission for the deployer
//! (`ec2:GetConsoleOutput`, scoped to the stack's instances). AWS keeps the output after the
//! instance's boot, and with `Latest=true` (Nitro instances, which every NAT instance type is)
//! returns the most recent output rather than a snapshot taken at boot (EC2 API Reference,
//! GetConsoleOutput). The deployer, the chaos proxy that models the boot, `status` and `verify`
//! all read it through [`readiness`], so they cannot disagree about what "ready" means.

/// Every line the user data writes starts with this.
pub const PREFIX: &str = "fixedip-nat:";
/// The last line of a boot that turned forwarding and masquerading on.
pub const READY: &str = "fixedip-nat: ready";
/// The last line of a boot that could not (the line says why).
pub const FAILED: &str = "fixedip-nat: FAILED";

/// The systemd unit the user data installs to report on the console at every boot, not only at
/// the first (when cloud-init runs the user data): after a reboot, a stop and start, or EC2's
/// automatic recovery (a reboot on another host), the instance says again whether forwarding and
/// masquerading are on, so that a deploy that starts a stopped instance, `status` and `verify`
/// can tell.
pub const EVERY_BOOT: &str = "fixedip-nat-ready.service";

/// The start of the kernel's first line at every boot ("[    0.000000] Linux version 6.1…"): a
/// console may hold the end of the previous boot before the latest one's (AWS's `Latest=true`
/// returns the most recent output, not only this boot's), and only the latest boot's verdict
/// counts. A stale `ready` from before a stop would otherwise end the wait for a restarted
/// instance at once.
pub const BOOT_BANNER: &str = "Linux version ";

/// How many of the instance's own lines a report quotes.
const QUOTED_LINES: usize = 5;

/// What the console says of a NAT instance's boot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "readiness", content = "lines", rename_all = "snake_case")]
pub enum Readiness {
    /// Forwarding and masquerading are on: traffic may be routed through it.
    Ready,
    /// The boot script gave up; its last lines (the `FAILED` line last).
    Failed(Vec<String>),
    /// Neither yet: still booting (or the console is empty). Its last lines so far.
    Booting(Vec<String>),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    /// The instance's own last lines, for a message: "(nothing on the console yet)" when none.
    pub fn reported(&self) -> String {
        let lines = match self {
            Readiness::Ready => return READY.to_owned(),
            Readiness::Failed(lines) | Readiness::Booting(lines) => lines,
        };
        if lines.is_empty() {
            "(nothing from fixedip on the console yet)".to_owned()
        } else {
            lines.join(" | ")
        }
    }

    /// One word for a table: `ready`, `FAILED`, `booting`.
    pub fn word(&self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Failed(_) => "FAILED",
            Readiness::Booting(_) => "booting",
        }
    }
}

/// Reads a console output (decoded text): the last `fixedip-nat:` line decides. The first boot
/// writes the user data's steps and its verdict; every later boot writes its verdict again
/// ([`EVERY_BOOT`]), from the files the first boot wrote.
pub fn readiness(console: &str) -> Readiness {
    let console = console
        .rfind(BOOT_BANNER)
        .map_or(console, |latest_boot| &console[latest_boot..]);
    // The script writes through `tee /dev/console`: a line may carry the kernel's prefix or a
    // carriage return, so the marker is searched within each line.
    let ours: Vec<&str> = console
        .lines()
        .filter_map(|line| line.find(PREFIX).map(|at| line[at..].trim_end()))
        .collect();
    let last = |n: usize| -> Vec<String> {
        ours[ours.len().saturating_sub(n)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect()
    };
    match ours.last() {
        Some(line) if line.starts_with(READY) => Readiness::Ready,
        Some(line) if line.starts_with(FAILED) => Readiness::Failed(last(QUOTED_LINES)),
        _ => Readiness::Booting(last(QUOTED_LINES)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_of_ours_decides() {
        let console = "[   12.3] cloud-init: running\nfixedip-nat: installing nftables failed (attempt 1 of 60): retrying in 10 s\r\n[  15.0] fixedip-nat: ready: forwarding and masquerading out of ens5\n";
        assert_eq!(readiness(console), Readiness::Ready);
        let failed = "fixedip-nat: installing nftables failed (attempt 60 of 60): retrying in 10 s\nfixedip-nat: FAILED: nftables could not be installed; this instance forwards nothing\n";
        let Readiness::Failed(lines) = readiness(failed) else {
            panic!("failed")
        };
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with(FAILED));
        assert!(readiness(failed)
            .reported()
            .contains("could not be installed"));
    }

    #[test]
    fn a_console_without_our_lines_is_still_booting() {
        let moto = "Linux version 2.6.16-xenU\nBIOS-provided physical RAM map:\n";
        assert_eq!(readiness(moto), Readiness::Booting(Vec::new()));
        assert_eq!(readiness(""), Readiness::Booting(Vec::new()));
        assert!(readiness("").reported().contains("nothing"));
    }

    /// A console that holds a previous boot's verdict and the start of a new boot reads as the
    /// new boot: still booting, until that boot writes its own verdict.
    #[test]
    fn only_the_latest_boot_counts() {
        let first = "[    0.000000] Linux version 6.1.112 #1 SMP\nfixedip-nat: ready: forwarding and masquerading out of ens5\n";
        let restarted = format!(
            "{first}[    0.000000] Linux version 6.1.112 #1 SMP\n[    3.2] systemd: starting\n"
        );
        assert_eq!(readiness(first), Readiness::Ready);
        assert_eq!(readiness(&restarted), Readiness::Booting(Vec::new()));
        let again = format!(
            "{restarted}[   11.4] fixedip-nat: ready: forwarding and masquerading out of ens5\n"
        );
        assert_eq!(readiness(&again), Readiness::Ready);
        let failed = format!("{restarted}fixedip-nat: FAILED: forwarding or the masquerade rule is off after this boot\n");
        assert!(matches!(readiness(&failed), Readiness::Failed(lines) if lines.len() == 1));
    }

    /// "ready" in a message that is not the final line must not count: only a line that starts
    /// with the marker does.
    #[test]
    fn only_the_marker_line_is_ready() {
        let console = "fixedip-nat: no swap file: continuing without; ready soon\n";
        assert!(!readiness(console).is_ready());
    }
}

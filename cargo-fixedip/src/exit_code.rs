//! The process exit codes of `cargo fixedip`, one per kind of failure, so that scripts and CI can
//! tell "fix your Cargo.toml" from "AWS said no" without parsing messages. `--help` prints them
//! from [`ALL`]; docs/cli.md lists them too, and a test (tests/docs.rs) keeps it in step.

/// Everything asked for was done.
pub const SUCCESS: i32 = 0;
/// A failure with no more specific code: a bug, or an I/O error on the local machine.
pub const FAILURE: i32 = 1;
/// The command line is wrong (clap's own code for usage errors); also no region, a region that is no
/// region name, and a profile no file defines, in every command, since that is where they are fixed.
pub const USAGE: i32 = 2;
/// `[package.metadata.fixedip]` (or cargo-lambda's deploy table) holds an unknown key or a bad value.
pub const SETTINGS: i32 = 3;
/// No function to work on: a selected package has no binary carrying `#[fixed_egress]`, a binary has
/// two, or a record in a binary cannot be read.
pub const NO_FUNCTION: i32 = 4;
/// `cargo build` (or `cargo lambda build`) failed, or cannot run for the function's architecture.
pub const BUILD: i32 = 5;
/// The workspace cannot be read: no Cargo.toml, `cargo metadata` failed, an unknown `-p` package.
pub const WORKSPACE: i32 = 6;
/// The requirements cannot be planned: functions of one stack disagree, too few AZs, a quota too
/// small, a function fixedip did not create. (A region without prices is a warning, not this.)
pub const PLAN: i32 = 7;
/// AWS refused or failed: missing credentials, an unknown region, a denied or failed call.
pub const AWS: i32 = 8;
/// `verify` found an egress path that does not leave through the listed IPs.
pub const VERIFY: i32 = 9;
/// `deploy` allocated (or still holds) new Elastic IPs that carry no traffic yet: add them to the
/// partner's allowlist, then run `deploy --allow-new-ips`. Everything else was deployed.
pub const NEW_IPS_HELD_BACK: i32 = 10;
/// Another run holds the stack's lease (it is deploying or destroying the stack) and did not let
/// go within `--lock-timeout`, or the lease was taken away while this run held it. Nothing was
/// changed in the first case; wait and run again, or `cargo fixedip unlock --stack NAME` if no run
/// is going on.
pub const LEASE_HELD: i32 = 11;
/// The stack has nothing in the region: never deployed there, or destroyed with its IPs released.
/// `ips`, `status` and `verify` say so instead of answering with an empty list: an empty allowlist
/// must never look like a real one.
pub const NOT_DEPLOYED: i32 = 12;
/// The user answered no when asked to confirm (`destroy` on a terminal): nothing was changed.
pub const CANCELLED: i32 = 13;

/// Every code with its name and a one-line meaning: `--help` prints this table (see [`table`]),
/// and a test keeps docs/cli.md and the README in step with it.
pub const ALL: &[(&str, i32, &str)] = &[
    ("SUCCESS", SUCCESS, "everything asked for was done"),
    (
        "FAILURE",
        FAILURE,
        "a failure with no more specific code: a bug, or a local I/O error",
    ),
    (
        "USAGE",
        USAGE,
        "bad command line, no region or a bad one, an unknown profile",
    ),
    (
        "SETTINGS",
        SETTINGS,
        "[package.metadata.fixedip] holds an unknown key or a bad value",
    ),
    (
        "NO_FUNCTION",
        NO_FUNCTION,
        "no binary with #[fixed_egress], two in one, or an unreadable record",
    ),
    (
        "BUILD",
        BUILD,
        "the build failed or cannot run here, or the zip cannot run on Lambda",
    ),
    (
        "WORKSPACE",
        WORKSPACE,
        "no Cargo.toml, `cargo metadata` failed, or an unknown package",
    ),
    (
        "PLAN",
        PLAN,
        "cannot be planned: functions of a stack disagree, too few AZs, a quota",
    ),
    (
        "AWS",
        AWS,
        "AWS refused or failed: credentials, region, a denied or failed call",
    ),
    (
        "VERIFY",
        VERIFY,
        "an egress path does not leave through the listed IPs",
    ),
    (
        "NEW_IPS_HELD_BACK",
        NEW_IPS_HELD_BACK,
        "new Elastic IPs carry no traffic until `deploy --allow-new-ips`",
    ),
    (
        "LEASE_HELD",
        LEASE_HELD,
        "another deploy or destroy holds the stack's lease",
    ),
    (
        "NOT_DEPLOYED",
        NOT_DEPLOYED,
        "the stack has nothing in the region",
    ),
    (
        "CANCELLED",
        CANCELLED,
        "the user answered no: nothing was changed",
    ),
];

/// [`ALL`] as aligned text lines, for `--help` and the man page.
pub fn table() -> String {
    let width = ALL.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    ALL.iter()
        .map(|(name, code, meaning)| format!("  {code:>2}  {name:<width$}  {meaning}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<i32> = ALL.iter().map(|(_, code, _)| *code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }

    #[test]
    fn the_table_has_a_line_per_code() {
        let table = table();
        assert_eq!(table.lines().count(), ALL.len());
        assert!(table.contains(" 5  BUILD "), "{table}");
        assert!(table.contains("11  LEASE_HELD "), "{table}");
        // clap wraps help at 100 columns: a wrapped line would split a row.
        for line in table.lines() {
            assert!(line.len() < 100, "{line}");
        }
    }
}

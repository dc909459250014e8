//! The process exit codes of `cargo fixedip`, one per kind of failure, so that scripts and CI can
//! tell "fix your Cargo.toml" from "AWS said no" without parsing messages. docs/cli.md lists them;
//! a test (tests/docs.rs) keeps that list and this file in step.

/// Everything asked for was done.
pub const SUCCESS: i32 = 0;
/// A failure with no more specific code: a bug, or an I/O error on the local machine.
pub const FAILURE: i32 = 1;
/// The command line is wrong (clap's own code for usage errors).
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
/// The requirements cannot be planned: functions of one stack disagree, too few AZs, a region with
/// no price table, no region given.
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

/// Every code with its name, for documentation and its test.
pub const ALL: &[(&str, i32)] = &[
    ("SUCCESS", SUCCESS),
    ("FAILURE", FAILURE),
    ("USAGE", USAGE),
    ("SETTINGS", SETTINGS),
    ("NO_FUNCTION", NO_FUNCTION),
    ("BUILD", BUILD),
    ("WORKSPACE", WORKSPACE),
    ("PLAN", PLAN),
    ("AWS", AWS),
    ("VERIFY", VERIFY),
    ("NEW_IPS_HELD_BACK", NEW_IPS_HELD_BACK),
    ("LEASE_HELD", LEASE_HELD),
    ("NOT_DEPLOYED", NOT_DEPLOYED),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<i32> = ALL.iter().map(|(_, code)| *code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
    }
}

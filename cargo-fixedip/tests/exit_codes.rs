//! One exit code per condition, the same in every command: a table of (condition × command →
//! code), each cell run as a user runs it, from a function's directory. Every condition is met
//! before the first AWS call (and before any build), so no cell reaches the network: AWS is
//! pointed at a closed loopback port in case one did.

use std::path::{Path, PathBuf};
use std::process::Command;

use cargo_fixedip::exit_code;

/// Every command that acts on a stack, as a user types it.
const COMMANDS: &[&[&str]] = &[
    &["plan"],
    &["plan", "--offline"],
    &["deploy"],
    &["ips"],
    &["status"],
    &["verify"],
    &["unlock"],
    &["destroy", "--yes"],
];

/// A condition: how to meet it, and the code every command must exit with.
struct Condition {
    name: &'static str,
    code: i32,
    /// Extra arguments after the command.
    args: &'static [&'static str],
    /// Environment changes on top of [`base_env`]: `(name, Some(value))` sets, `None` removes.
    env: &'static [(&'static str, Option<&'static str>)],
    /// Where to run: a function's directory by default.
    cwd: Cwd,
    /// Commands the condition does not apply to (e.g. no AWS offline).
    except: &'static [&'static str],
}

#[derive(Clone, Copy)]
enum Cwd {
    Function,
    Nowhere,
    BadSettings,
}

const CONDITIONS: &[Condition] = &[
    Condition {
        name: "a region that is no region name",
        code: exit_code::USAGE,
        args: &["--region", "nowhere"],
        env: &[],
        cwd: Cwd::Function,
        except: &[],
    },
    Condition {
        name: "no region at all",
        code: exit_code::USAGE,
        args: &[],
        env: &[("AWS_REGION", None), ("AWS_DEFAULT_REGION", None)],
        cwd: Cwd::Function,
        except: &[],
    },
    Condition {
        name: "a profile no file defines",
        code: exit_code::USAGE,
        args: &["--profile", "nope"],
        env: &[],
        cwd: Cwd::Function,
        except: &["plan --offline"],
    },
    Condition {
        name: "no credentials",
        code: exit_code::AWS,
        args: &[],
        env: &[("AWS_ACCESS_KEY_ID", None), ("AWS_SECRET_ACCESS_KEY", None)],
        cwd: Cwd::Function,
        except: &["plan --offline"],
    },
    Condition {
        name: "a package that is no member",
        code: exit_code::WORKSPACE,
        args: &["-p", "nope"],
        env: &[],
        cwd: Cwd::Function,
        except: &[],
    },
    Condition {
        name: "no Cargo.toml here or above",
        code: exit_code::WORKSPACE,
        args: &[],
        env: &[],
        cwd: Cwd::Nowhere,
        except: &[],
    },
    Condition {
        name: "a bad value in [package.metadata.fixedip]",
        code: exit_code::SETTINGS,
        args: &[],
        env: &[],
        cwd: Cwd::BadSettings,
        except: &[],
    },
    Condition {
        name: "a stack name the attribute would refuse",
        code: exit_code::USAGE,
        args: &["--stack", "Not A Stack"],
        env: &[],
        cwd: Cwd::Function,
        except: &["plan", "plan --offline", "deploy"],
    },
    Condition {
        name: "a zip that does not exist",
        code: exit_code::NO_FUNCTION,
        args: &["--zip", "/nonexistent/function.zip"],
        env: &[],
        cwd: Cwd::Function,
        except: &[
            "plan",
            "plan --offline",
            "ips",
            "status",
            "verify",
            "unlock",
        ],
    },
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Dummy keys and a region, every AWS file pointed nowhere, and AWS itself at a closed loopback
/// port: nothing here may reach a real endpoint.
fn base_env(command: &mut Command, nowhere: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    let missing = nowhere.join("no-such-aws-file");
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("NO_COLOR", "1");
}

#[test]
fn every_condition_has_one_exit_code_in_every_command() {
    let nowhere = tempfile::tempdir().unwrap();
    let bad_settings = tempfile::tempdir().unwrap();
    std::fs::create_dir(bad_settings.path().join("src")).unwrap();
    std::fs::write(
        bad_settings.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"bad-settings\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nfixedip-macros = {{ path = {:?} }}\n\n\
             [package.metadata.fixedip]\nmemory = 1\n\n[workspace]\n",
            repo().join("fixedip-macros")
        ),
    )
    .unwrap();
    std::fs::write(
        bad_settings.path().join("src/main.rs"),
        "#[fixedip_macros::fixed_egress] fn main() {}\n",
    )
    .unwrap();

    let mut wrong = Vec::new();
    for condition in CONDITIONS {
        for command in COMMANDS {
            let shown = command
                .iter()
                .filter(|a| !a.starts_with("--yes"))
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            if condition.except.contains(&shown.as_str()) {
                continue;
            }
            let cwd = match condition.cwd {
                Cwd::Function => repo().join("tests/fixtures/scope/alpha"),
                Cwd::Nowhere => nowhere.path().to_owned(),
                Cwd::BadSettings => bad_settings.path().to_owned(),
            };
            let mut process = Command::new(env!("CARGO_BIN_EXE_cargo-fixedip"));
            base_env(&mut process, nowhere.path());
            for (key, value) in condition.env {
                match value {
                    Some(value) => process.env(key, value),
                    None => process.env_remove(key),
                };
            }
            let output = process
                .arg("fixedip")
                .args(*command)
                .args(condition.args)
                .current_dir(&cwd)
                .stdin(std::process::Stdio::null())
                .output()
                .expect("cargo-fixedip runs");
            let code = output.status.code();
            if code != Some(condition.code) {
                wrong.push(format!(
                    "{} / `cargo fixedip {shown}`: exit {code:?}, expected {}\n{}",
                    condition.name,
                    condition.code,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

//! The documents users read agree with the code: every exit code and every settings key is
//! documented where the README and docs/cli.md say it is.

use std::path::PathBuf;

use cargo_fixedip::exit_code;
use fixedip_core::settings;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_exit_code_is_documented() {
    for document in ["docs/cli.md", "README.md"] {
        let text = read(document);
        for (name, code, _) in exit_code::ALL {
            let row = format!("| {code} | `{name}` |");
            assert!(text.contains(&row), "{document} lacks the row {row:?}");
        }
    }
}

#[test]
fn every_settings_key_is_documented() {
    for document in ["docs/cli.md", "README.md"] {
        let text = read(document);
        for key in settings::KEYS {
            let row = format!("| `{key}` |");
            assert!(
                text.contains(&row),
                "{document} lacks the settings row {row:?}"
            );
        }
    }
}

#[test]
fn documented_ranges_are_the_enforced_ones() {
    let text = read("docs/cli.md");
    let memory = format!(
        "MB, {} to {}",
        settings::MEMORY_MB.start(),
        settings::MEMORY_MB.end()
    );
    let timeout = format!(
        "seconds, {} to {}",
        settings::TIMEOUT_S.start(),
        settings::TIMEOUT_S.end()
    );
    assert!(text.contains(&memory), "docs/cli.md should say {memory:?}");
    assert!(
        text.contains(&timeout),
        "docs/cli.md should say {timeout:?}"
    );
    assert!(text.contains(&format!("| {} |", settings::DEFAULT_MEMORY_MB)));
    assert!(text.contains(&format!(
        "| {} (cargo-lambda's",
        settings::DEFAULT_TIMEOUT_S
    )));
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = read(".ci/run");
    assert!(
        ci.lines()
            .any(|line| line.trim() == "exec bash scripts/test.sh"),
        "{ci}"
    );
    assert!(read("README.md").contains("scripts/test.sh"));
}

//! Package specs as cargo reads them in `-p SPEC` and `--exclude SPEC`: a member's name, the name
//! with a version (`billing@0.1.0`), or a glob over members' names (`'fn-*'`, `fn-?`, `fn-[ab]`),
//! matched with the `glob` crate as cargo matches them.

use cargo_metadata::Package;

/// Whether cargo would read `spec` as a glob: it holds one of glob's special characters.
pub fn is_glob(spec: &str) -> bool {
    spec.contains(['*', '?', '[', ']'])
}

/// The members `spec` names: at most one for a name, any number for a glob. A glob that is not
/// a valid pattern (an unclosed `[`) matches nothing.
pub fn matching<'m>(members: &[&'m Package], spec: &str) -> Vec<&'m Package> {
    if is_glob(spec) {
        let Ok(pattern) = glob::Pattern::new(spec) else {
            return Vec::new();
        };
        members
            .iter()
            .copied()
            .filter(|p| pattern.matches(p.name.as_str()))
            .collect()
    } else {
        // `name@version` is how cargo spells a package id spec; members are unique by name.
        let name = spec.split_once('@').map_or(spec, |(name, _)| name);
        members
            .iter()
            .copied()
            .filter(|p| p.name.as_str() == name)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<Package> {
        names
            .iter()
            .map(|name| {
                serde_json::from_value(serde_json::json!({
                    "name": name,
                    "version": "0.1.0",
                    "id": format!("path+file:///w/{name}#0.1.0"),
                    "dependencies": [],
                    "targets": [],
                    "features": {},
                    "manifest_path": format!("/w/{name}/Cargo.toml"),
                    "authors": [],
                    "categories": [],
                    "keywords": [],
                    "edition": "2021",
                    "metadata": null,
                    "publish": null,
                }))
                .expect("a package")
            })
            .collect()
    }

    fn names(members: &[Package], spec: &str) -> Vec<String> {
        let refs: Vec<&Package> = members.iter().collect();
        matching(&refs, spec)
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    }

    #[test]
    fn names_and_versions_match_one_member() {
        let ws = members(&["fn-a", "fn-b", "shared"]);
        assert_eq!(names(&ws, "fn-a"), ["fn-a"]);
        assert_eq!(names(&ws, "fn-a@0.1.0"), ["fn-a"]);
        assert!(names(&ws, "fn").is_empty());
    }

    #[test]
    fn globs_match_as_cargos_do() {
        let ws = members(&["fn-a", "fn-b", "fn-cd", "shared"]);
        assert_eq!(names(&ws, "fn-*"), ["fn-a", "fn-b", "fn-cd"]);
        assert_eq!(names(&ws, "fn-?"), ["fn-a", "fn-b"]);
        assert_eq!(names(&ws, "fn-[ac]*"), ["fn-a", "fn-cd"]);
        assert_eq!(names(&ws, "*"), ["fn-a", "fn-b", "fn-cd", "shared"]);
        assert!(names(&ws, "api-*").is_empty());
        assert!(names(&ws, "fn-[").is_empty(), "an invalid pattern");
        assert!(is_glob("fn-*") && !is_glob("fn-a@0.1.0"));
    }
}

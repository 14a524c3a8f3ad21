//! The engine's layers, checked: every module imports only from modules below it (tests included),
//! so that the primitives (time, ids, codes) sit under the parts that use them and no two modules
//! depend on each other. A new module gets a rank here, or this test fails.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The engine's modules, each with its rank: a module may import from lower ranks only.
const RANKS: &[(&str, u8)] = &[
    ("time", 0),
    ("hash", 0),
    ("backoff", 0),
    ("sort", 1),
    ("event", 1),
    ("code", 1),
    ("relays", 1),
    ("limiter", 1),
    ("limits", 1),
    ("filter", 2),
    ("http", 2),
    ("registry", 3),
    ("coalesce", 4),
    ("simple", 4),
    ("session", 5),
    ("igniter", 6),
    ("options", 7),
    ("layers", 8),
];

/// What `engine/mod.rs` re-exports, by the module it comes from: `use crate::engine::Session` is an
/// import from `session`.
const REEXPORTS: &[(&str, &str)] = &[
    ("Backoff", "backoff"),
    ("Code", "code"),
    ("number_to_id", "event"),
    ("payload_ids", "event"),
    ("Event", "event"),
    ("EventKeys", "event"),
    ("RecordId", "event"),
    ("Filter", "filter"),
    ("TypeFilter", "filter"),
    ("Registry", "registry"),
    ("SubId", "registry"),
    ("Relay", "relays"),
    ("Relays", "relays"),
    ("ChannelStatus", "session"),
    ("ConnectionState", "session"),
    ("Output", "session"),
    ("PublishError", "session"),
    ("PublishId", "session"),
    ("Session", "session"),
    ("SessionConfig", "session"),
    ("SessionStats", "session"),
];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// Every `.rs` file under `dir`, with the engine module it belongs to.
fn files(dir: &Path, module: Option<&str>, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).expect("src/engine").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let owner = module.unwrap_or(stem).to_owned();
        if path.is_dir() {
            files(&path, Some(&owner), out);
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "mod" {
            out.push((owner, path));
        }
    }
}

/// The engine modules `text` imports: paths after `engine::`, and after `super::` in a file
/// directly under `src/engine/` (where `super` is the engine), single or in `{…}` groups.
fn imports(text: &str, super_is_engine: bool) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut prefixes = vec!["engine::"];
    if super_is_engine {
        prefixes.push("super::");
    }
    let mut found = BTreeSet::new();
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `my_engine::`
            }
            let rest = &code[at + prefix.len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap_or_default())
                    .collect()
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                vec![&rest[..end]]
            };
            for name in names {
                let name = name.trim();
                let module = REEXPORTS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(name, |(_, m)| m);
                if rank(module).is_some() {
                    found.insert(module.to_owned());
                }
            }
        }
    }
    found
}

#[test]
fn every_import_inside_the_engine_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut all = Vec::new();
    files(&root, None, &mut all);
    assert!(all.len() > 20, "read the engine's files: {}", all.len());
    let mut wrong = Vec::new();
    for (module, path) in &all {
        let Some(own) = rank(module) else {
            wrong.push(format!("{}: module `{module}` has no rank", path.display()));
            continue;
        };
        let text = fs::read_to_string(path).expect("a source file");
        let super_is_engine = path.parent() == Some(root.as_path());
        for imported in imports(&text, super_is_engine) {
            let theirs = rank(&imported).expect("ranked");
            if imported != *module && theirs >= own {
                wrong.push(format!(
                    "{} (`{module}`, rank {own}) imports from `{imported}` (rank {theirs})",
                    path.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that do not point down:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_imports_in_every_form() {
    let text = "use super::session::config::Millis;\nuse crate::engine::{ChannelStatus, hash::Map};\n// use super::igniter;\nlet x = my_engine::simple;";
    let found: Vec<_> = imports(text, true).into_iter().collect();
    assert_eq!(found, ["hash", "session"]);
    assert!(imports("use super::session::X;", false).is_empty());
}

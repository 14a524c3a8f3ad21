//! The `--config relay.toml` file: the same settings as the flags, named like them with `_` for
//! `-` (`history_size = 500`, `api_key = ["…", "…"]`, `demo = true`). A flag or a `LIVE_RELAY_*`
//! variable beats the file.

use super::Config;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

/// The configuration from the command line, the environment and the `--config` file (if any).
/// The error is what to print, naming the file and key at fault.
pub fn load<I, T>(args: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let matches = Config::command().try_get_matches_from(&args)?;
    let config = Config::from_arg_matches(&matches)?;
    let Some(path) = config.config.clone() else {
        return Ok(config);
    };
    let injected = file_args(&path, &matches).map_err(|message| {
        Config::command().error(clap::error::ErrorKind::InvalidValue, message)
    })?;
    let mut all = Vec::with_capacity(args.len() + injected.len());
    all.extend(args.first().cloned());
    all.extend(injected.into_iter().map(OsString::from));
    all.extend(args.iter().skip(1).cloned());
    let matches = Config::command().try_get_matches_from(&all)?;
    Config::from_arg_matches(&matches)
}

/// The file's settings as flags, for the keys not given as flags or variables.
fn file_args(path: &Path, given: &clap::ArgMatches) -> Result<Vec<String>, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {name}: {e}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{name}: not valid TOML: {}", e.message()))?;
    let command = Config::command();
    let mut out = Vec::new();
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_id() == key.as_str() && a.get_long().is_some() && key != "config")
            .ok_or_else(|| {
                let known: Vec<&str> = command
                    .get_arguments()
                    .filter(|a| a.get_long().is_some() && a.get_id() != "config")
                    .map(|a| a.get_id().as_str())
                    .collect();
                format!(
                    "{name}: unknown key `{key}` (known keys: {})",
                    known.join(", ")
                )
            })?;
        if matches!(
            given.value_source(key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{}", arg.get_long().unwrap_or(key));
        let one = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(format!(
                    "{name}: `{key}` must be a string, a number or a boolean, not {}",
                    other.type_str()
                )),
            }
        };
        let mut pair = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => vec![flag],
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => vec![],
            (ArgAction::SetTrue, other) => {
                return Err(format!(
                    "{name}: `{key}` must be true or false, not {}",
                    other.type_str()
                ))
            }
            (ArgAction::Append, toml::Value::Array(items)) => {
                let mut pair = Vec::new();
                for item in items {
                    pair.push(flag.clone());
                    pair.push(one(item)?);
                }
                pair
            }
            // `--flag=value`: also for flags that take their value only so
            // (`--postgres-notify=false`).
            (_, value) => vec![format!("{flag}={}", one(value)?)],
        };
        // Check the value alone, so the error names the key in the file.
        let mut probe = vec!["live-relay".to_owned()];
        probe.append(&mut pair.clone());
        if let Err(e) = Config::command().try_get_matches_from(&probe) {
            let why = e.to_string();
            let why = why
                .lines()
                .next()
                .unwrap_or("invalid value")
                .trim_start_matches("error: ");
            return Err(format!("{name}: `{key}`: {why}"));
        }
        out.append(&mut pair);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("live-relay-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write the test file");
        path
    }

    fn load_file(path: &Path, flags: &[&str]) -> Result<Config, String> {
        let mut args = vec!["live-relay", "--config", path.to_str().expect("utf-8 path")];
        args.extend_from_slice(flags);
        load(args).map_err(|e| e.to_string())
    }

    #[test]
    fn the_file_sets_what_flags_do_not() {
        if std::env::vars().any(|(k, _)| k.starts_with("LIVE_RELAY_")) {
            return; // the environment would take precedence over the file
        }
        let path = with_file(
            "good",
            "history_size = 5\nmax_frame_bytes = 100\napi_key = [\"0123456789abcdef\", \"fedcba9876543210\"]\ndemo = true\naddr = \"127.0.0.1:0\"\n",
        );
        let config = load_file(&path, &["--max-frame-bytes", "1000"]).expect("loads");
        assert_eq!(config.history_size, 5);
        assert_eq!(config.max_frame_bytes, 1000, "a flag beats the file");
        assert_eq!(config.api_key.len(), 2);
        assert!(config.demo);
        assert_eq!(config.addr.port(), 0);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_file_sets_the_postgres_feed() {
        if std::env::vars().any(|(k, _)| k.starts_with("LIVE_RELAY_")) {
            return; // the environment would take precedence over the file
        }
        let path = with_file(
            "postgres",
            "postgres = \"postgres://relay@db.internal/app\"\npostgres_notify = false\n\
             postgres_partitions = 4\npostgres_poll_ms = 100\n",
        );
        let config = load_file(&path, &[]).expect("loads");
        assert_eq!(
            config.postgres.as_deref(),
            Some("postgres://relay@db.internal/app")
        );
        assert!(!config.postgres_notify);
        assert_eq!(
            (config.postgres_partitions, config.postgres_poll_ms),
            (4, 100)
        );
        let config = load_file(&path, &["--postgres-notify"]).expect("loads");
        assert!(config.postgres_notify, "a flag beats the file");
        let _ = std::fs::remove_file(&path);
        let path = with_file("postgres-bad", "postgres_partitions = 0\n");
        let e = load_file(&path, &[]).expect_err("0 partitions");
        assert!(e.contains("`postgres_partitions`"), "{e}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_file_sets_presence() {
        if std::env::vars().any(|(k, _)| k.starts_with("LIVE_RELAY_")) {
            return; // the environment would take precedence over the file
        }
        let path = with_file(
            "presence",
            "presence = false\npresence_grace_ms = 800\npresence_max_members = 3\n",
        );
        let config = load_file(&path, &[]).expect("loads");
        assert!(!config.presence);
        assert_eq!(
            (config.presence_grace_ms, config.presence_max_members),
            (800, 3)
        );
        let config = load_file(&path, &["--presence"]).expect("loads");
        assert!(config.presence, "a flag beats the file");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn the_file_sets_the_redis_ca() {
        if std::env::vars().any(|(k, _)| k.starts_with("LIVE_RELAY_")) {
            return; // the environment would take precedence over the file
        }
        let path = with_file(
            "redis-ca",
            "redis = \"rediss://cache.internal:6380\"\nredis_ca = \"/etc/live-relay/redis-ca.pem\"\n",
        );
        let config = load_file(&path, &[]).expect("loads");
        assert_eq!(
            config.redis.as_deref(),
            Some("rediss://cache.internal:6380")
        );
        assert_eq!(
            config.redis_ca.as_deref(),
            Some(Path::new("/etc/live-relay/redis-ca.pem"))
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let path = with_file("typo", "histroy_size = 5\n");
        let e = load_file(&path, &[]).expect_err("unknown key");
        assert!(
            e.contains("unknown key `histroy_size`") && e.contains("history_size"),
            "{e}"
        );
        let path = with_file("type", "history_size = \"lots\"\n");
        let e = load_file(&path, &[]).expect_err("bad value");
        assert!(e.contains("`history_size`") && e.contains("lots"), "{e}");
        let path = with_file("range", "ping_ms = 0\n");
        let e = load_file(&path, &[]).expect_err("out of range");
        assert!(e.contains("`ping_ms`"), "{e}");
        let path = with_file("table", "[limits]\nx = 1\n");
        let e = load_file(&path, &[]).expect_err("a table");
        assert!(e.contains("unknown key `limits`"), "{e}");
        let path = with_file("syntax", "history_size = \n");
        let e = load_file(&path, &[]).expect_err("not TOML");
        assert!(e.contains("not valid TOML"), "{e}");
        let e = load_file(Path::new("/nonexistent/relay.toml"), &[]).expect_err("missing");
        assert!(e.contains("/nonexistent/relay.toml"), "{e}");
    }
}

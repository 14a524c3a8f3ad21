//! The `--config relay.toml` file: the same settings as the flags, named like them with `_` for
//! `-` (`history_size = 500`, `api_key = ["…", "…"]`, `demo = true`). A flag or a `LIVE_RELAY_*`
//! variable beats the file.

use super::Config;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

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
            (_, value) => vec![flag, one(value)?],
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

//! The `live-relay` binary as a child process on 127.0.0.1:0, for the tests that need a process of
//! their own (a pid to kill or to read `/proc` of, a relay under attack): the others run it in-process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// The flags that give a relay `config` (those that differ from the defaults), for a relay
/// process started by [`RelayProcess::start`] (which adds `--addr`).
pub fn flags_of(config: &live_relay::Config) -> Vec<String> {
    let default = live_relay::Config::default();
    let mut flags: Vec<String> = Vec::new();
    let mut flag = |name: &str, value: String| {
        flags.push(format!("--{name}"));
        flags.push(value);
    };
    macro_rules! differing {
        ($($field:ident => $name:literal),* $(,)?) => {
            $(if config.$field != default.$field {
                flag($name, config.$field.to_string());
            })*
        };
    }
    differing!(
        ping_ms => "ping-ms", max_frame_bytes => "max-frame-bytes", max_channels => "max-channels",
        max_channel_len => "max-channel-len", outbound_queue => "outbound-queue",
        history_size => "history-size", history_ttl_ms => "history-ttl-ms",
        publish_key_ttl_ms => "publish-key-ttl-ms", publish_rate => "publish-rate",
        publish_burst => "publish-burst", key_publish_rate => "key-publish-rate",
        key_publish_burst => "key-publish-burst", max_connections_per_ip => "max-connections-per-ip",
        max_connections => "max-connections", request_timeout_ms => "request-timeout-ms",
        shutdown_grace_ms => "shutdown-grace-ms", redis_prefix => "redis-prefix",
        presence_grace_ms => "presence-grace-ms", presence_max_members => "presence-max-members",
        presence_max_per_connection => "presence-max-per-connection",
        presence_max_data_bytes => "presence-max-data-bytes",
        presence_max_updates => "presence-max-updates",
    );
    for (value, name) in [
        (&config.jwt_secret, "jwt-secret"),
        (&config.jwt_audience, "jwt-audience"),
        (&config.jwt_issuer, "jwt-issuer"),
        (&config.redis, "redis"),
    ] {
        if let Some(value) = value {
            flag(name, value.clone());
        }
    }
    for (path, name) in [
        (&config.jwt_public_key, "jwt-public-key"),
        (&config.static_dir, "static-dir"),
    ] {
        if let Some(path) = path {
            flag(name, path.display().to_string());
        }
    }
    if !config.api_key.is_empty() {
        flag("api-key", config.api_key.join(","));
    }
    if !config.allowed_origins.is_empty() {
        flag("allowed-origins", config.allowed_origins.join(","));
    }
    for (on, name) in [
        (config.demo, "--demo"),
        (config.insecure_no_auth, "--insecure-no-auth"),
    ] {
        if on {
            flags.push(name.to_owned());
        }
    }
    if !config.presence {
        flags.push("--presence=false".to_owned());
    }
    flags
}

/// `live-relay --addr 127.0.0.1:0 ARGS`, without the `LIVE_RELAY_*` variables of the test's
/// environment, logging errors only. The binary is the test build's, or `RELAY_BINARY_UNDER_TEST`
/// when set.
pub fn relay_command(args: &[&str]) -> Command {
    relay_command_at("127.0.0.1:0", args)
}

/// [`relay_command`] listening on `addr`.
pub fn relay_command_at(addr: &str, args: &[&str]) -> Command {
    let binary = std::env::var_os("RELAY_BINARY_UNDER_TEST")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_live-relay").into());
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars() {
        if key.starts_with("LIVE_RELAY_") {
            command.env_remove(key);
        }
    }
    command
        .args(["--addr", addr])
        .args(args)
        .env("RUST_LOG", "error");
    command
}

/// A running `live-relay`; killed (and reaped) when dropped.
pub struct RelayProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl RelayProcess {
    /// Starts `live-relay --addr 127.0.0.1:0 ARGS` with no `LIVE_RELAY_*` variable of the test's
    /// environment, and waits for its listening line.
    pub fn start(args: &[&str]) -> RelayProcess {
        RelayProcess::start_with_env(args, &[])
    }

    /// [`RelayProcess::start`] with these environment variables set too. The binary is the test
    /// build's, or `RELAY_BINARY_UNDER_TEST` when set (the Makefile points it at the server
    /// profile's build, `target/server/live-relay`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> RelayProcess {
        RelayProcess::start_at("127.0.0.1:0", args, env)
    }

    /// [`RelayProcess::start_with_env`] listening on `addr` (a relay started again where another
    /// was, say).
    pub fn start_at(addr: &str, args: &[&str], env: &[(&str, &str)]) -> RelayProcess {
        let mut child = relay_command_at(addr, args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start live-relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        let addr = line
            .trim_end()
            .strip_prefix("live-relay listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("an address");
        RelayProcess { child, addr }
    }

    /// Sends SIGTERM and waits (at most 10 s) for the process to exit; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Kills the process (SIGKILL, by pid): its connections drop without a close frame.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

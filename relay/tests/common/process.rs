//! The `live-relay` binary as a child process on 127.0.0.1:0, for the tests that need a process of
//! their own (a pid to kill or to read `/proc` of, a relay under attack): the others run it in-process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

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
        let binary = std::env::var_os("RELAY_BINARY_UNDER_TEST")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_live-relay").into());
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("LIVE_RELAY_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "error")
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

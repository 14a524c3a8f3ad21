//! The `live-relay` binary: flags, the listening line, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn relay() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_live-relay"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LIVE_RELAY_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn");
    command
}

/// Kills the child if the test fails midway.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prints_the_bound_address_serves_and_stops_on_sigterm() {
    let child = relay()
        .args(["--addr", "127.0.0.1:0", "--ping-ms", "1000"])
        .env("LIVE_RELAY_MAX_CHANNELS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start live-relay");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let url = line
        .trim_end()
        .strip_prefix("live-relay listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: std::net::SocketAddr = url.parse().expect("an address");
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the real port is printed");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let health: serde_json::Value = runtime.block_on(async {
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .expect("GET /healthz")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(health["status"], "ok");

    let status = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = running.0.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live-relay did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_flags_are_refused_by_clap() {
    let output = relay()
        .args(["--ping-ms", "soon"])
        .output()
        .expect("run live-relay");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--ping-ms"), "{stderr}");

    let output = relay()
        .env("LIVE_RELAY_OUTBOUND_QUEUE", "0")
        .output()
        .expect("run live-relay");
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = relay()
        .arg("--help")
        .output()
        .expect("run live-relay --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--addr",
        "--ping-ms",
        "--max-frame-bytes",
        "--max-channels",
        "--max-channel-len",
        "--outbound-queue",
        "--history-size",
        "--history-ttl-ms",
        "--publish-key-ttl-ms",
        "--static-dir",
        "--demo",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    assert!(help.contains("LIVE_RELAY_ADDR"), "{help}");
    assert!(help.contains("LIVE_RELAY_HISTORY_SIZE"), "{help}");
    assert!(help.contains("LIVE_RELAY_DEMO"), "{help}");

    let output = relay()
        .env("LIVE_RELAY_DEMO", "maybe")
        .output()
        .expect("run live-relay");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--demo"), "{stderr}");
}

#[test]
fn demo_mode_can_be_turned_on_from_the_environment() {
    for (value, demo) in [("1", true), ("true", true), ("0", false), ("false", false)] {
        let child = relay()
            .args(["--addr", "127.0.0.1:0"])
            .env("LIVE_RELAY_DEMO", value)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start live-relay");
        let mut running = Running(child);
        let stdout = running.0.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim_end()
            .strip_prefix("live-relay listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (status, total) = runtime.block_on(async {
            let response = reqwest::get(format!("{url}/api/posts"))
                .await
                .expect("GET /api/posts");
            let total = response
                .headers()
                .get("x-total-count")
                .map(|v| v.to_str().expect("ascii").to_owned());
            (response.status().as_u16(), total)
        });
        if demo {
            assert_eq!((status, total.as_deref()), (200, Some("12")), "{value}");
        } else {
            assert_eq!((status, total), (404, None), "{value}");
        }
    }
}

#[test]
fn refuses_to_serve_the_network_without_authentication() {
    let output = relay()
        .args(["--addr", "0.0.0.0:0"])
        .output()
        .expect("run live-relay");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(
        stderr.contains("without authentication") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );

    // The same with a key, or with the explicit opt-out, starts.
    for flags in [
        &["--jwt-secret", "0123456789abcdef0123456789abcdef"][..],
        &["--insecure-no-auth"][..],
    ] {
        let child = relay()
            .args(["--addr", "0.0.0.0:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start live-relay");
        let mut running = Running(child);
        let mut line = String::new();
        BufReader::new(running.0.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the listening line");
        assert!(
            line.starts_with("live-relay listening on"),
            "{flags:?}: {line:?}"
        );
    }
}

#[test]
fn bad_credentials_and_config_files_are_named() {
    // Refused before the port is bound: nothing on stdout, so a supervisor (or a test) waiting
    // for `listening on` never sees a relay that is about to die.
    let secret_31 = "0123456789abcdef0123456789abcde";
    let key_15 = "0123456789abcde";
    for (flags, named) in [
        (&["--jwt-secret", "short"][..], "--jwt-secret"),
        (&["--jwt-secret", secret_31][..], "--jwt-secret"),
        (&["--api-key", key_15][..], "--api-key"),
        (&["--demo", "--api-key", key_15][..], "--api-key"),
        (
            &["--jwt-secret", secret_31, "--api-key", key_15][..],
            "--jwt-secret",
        ),
        (&["--static-dir", "Cargo.toml"][..], "--static-dir"),
    ] {
        let refused = relay()
            .args(["--addr", "127.0.0.1:0"])
            .args(flags)
            .output()
            .expect("run live-relay");
        assert_eq!(refused.status.code(), Some(2), "{flags:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(named), "{flags:?}: {stderr}");
        assert!(
            refused.stdout.is_empty(),
            "{flags:?}: printed {:?} before exiting",
            String::from_utf8_lossy(&refused.stdout)
        );
    }

    let key = relay()
        .args(["--addr", "127.0.0.1:0", "--jwt-public-key", "Cargo.toml"])
        .output()
        .expect("run live-relay");
    assert_eq!(key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&key.stderr).contains("--jwt-public-key Cargo.toml"));

    let file = std::env::temp_dir().join(format!("live-relay-cli-{}.toml", std::process::id()));
    std::fs::write(&file, "addr = \"127.0.0.1:0\"\npublish_rate = -3\n").expect("write");
    let bad = relay()
        .args(["--config", file.to_str().expect("utf-8")])
        .output()
        .expect("run live-relay");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("`publish_rate`"), "{stderr}");
    let _ = std::fs::remove_file(file);
}

#[test]
fn help_puts_authentication_first() {
    let help = relay().arg("--help").output().expect("run live-relay");
    let text = String::from_utf8_lossy(&help.stdout);
    let auth = text
        .find("Authentication:")
        .expect("an Authentication group");
    for later in ["Server:", "Limits:", "Timing and history:"] {
        assert!(
            text.find(later).expect(later) > auth,
            "{later} after Authentication"
        );
    }
    assert!(text.contains("--jwt-secret") && text.contains("--api-key"));
}

//! TLS to Redis (`--redis rediss://…`, `--redis-ca`): a real `redis-server` (Debian's, built with
//! TLS) serving TLS only, with a certificate for 127.0.0.1 and localhost signed by a CA the test
//! makes with the `openssl` command line. Two relay nodes on it (one a `live-relay` process, one
//! in-process) pass an event between them; a relay given another CA, or none (the public CAs
//! built in), refuses to start and says the certificate was not trusted; bad `--redis-ca` values
//! are refused before the port is bound.

mod common;

use common::process::RelayProcess;
use common::redis::free_port;
use common::{Relay, PATIENCE};
use live_relay::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::time::sleep;

static DIRS: AtomicU64 = AtomicU64::new(0);

/// Runs `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA of its own (`<name>.pem`, `<name>.key`) in `dir`: a self-signed P-256 certificate.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN=live-relay test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// A server certificate for 127.0.0.1 and localhost (`server.pem`, `server.key`), signed by the
/// CA `ca` made by [`make_ca`].
fn make_server_cert(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// `redis-server` serving TLS only (`--port 0`) on a free loopback port, with a certificate
/// signed by the test's CA; another CA is made too, that signed nothing. Stopped by pid, and its
/// directory removed, when dropped.
struct TlsRedis {
    port: u16,
    dir: PathBuf,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that did not.
    other_ca: PathBuf,
    child: Child,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = std::env::temp_dir().join(format!(
            "live-relay-redis-tls-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let ca = make_ca(&dir, "ca");
        let other_ca = make_ca(&dir, "other-ca");
        make_server_cert(&dir, "ca");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&dir)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; `make test` installs it)");
        let redis = TlsRedis {
            port,
            dir,
            ca,
            other_ca,
            child,
        };
        // Ready when it answers PING over TLS (redis-cli checks the certificate with the CA).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(&redis.ca)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "ping"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
                .unwrap_or(false);
            if pong {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server with TLS did not start (is it built with TLS? `redis-server --help`)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static PREFIXES: AtomicU64 = AtomicU64::new(0);

fn prefix() -> String {
    format!(
        "tls-{}-{}",
        std::process::id(),
        PREFIXES.fetch_add(1, Ordering::Relaxed)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// Runs `live-relay --addr 127.0.0.1:0 ARGS` (no `LIVE_RELAY_*` variable of the test's
/// environment) to its end, which must come within [`PATIENCE`]: a relay that refuses to start.
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = common::process::relay_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start live-relay");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("live-relay {args:?} did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Waits until the relay's `/healthz` says `ok` (it is connected to Redis).
async fn wait_ok(relay: &Relay) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(response) = relay.http.get(relay.url("/healthz")).send().await {
            if let Ok(body) = response.json::<Value>().await {
                if body["status"] == "ok" {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the relay never connected to Redis over TLS"
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_nodes_share_events_over_tls() {
    let redis = TlsRedis::start();
    let prefix = prefix();
    // One node a process, its CA from the variable; the other in-process, from its Config.
    let process = RelayProcess::start_with_env(
        &["--redis", &redis.url(), "--redis-prefix", &prefix],
        &[("LIVE_RELAY_REDIS_CA", path(&redis.ca))],
    );
    let a = Relay::at(process.addr);
    let b = Relay::start(Config {
        addr: "127.0.0.1:0".parse().expect("an address"),
        redis: Some(redis.url()),
        redis_ca: Some(redis.ca.clone()),
        redis_prefix: prefix.clone(),
        ping_ms: 1_000,
        ..Config::default()
    })
    .await;
    wait_ok(&a).await;
    wait_ok(&b).await;

    let (mut on_a, hello_a) = a.client_with_hello().await;
    let (_, hello_b) = b.client_with_hello().await;
    assert_eq!(hello_a["epoch"], hello_b["epoch"], "one cluster");
    on_a.subscribe(&["posts"]).await;
    for n in 1..=3 {
        let (status, answer) = b
            .publish(json!({
                "channel": "posts", "type": "updated", "payload": { "ids": [n], "n": n }
            }))
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["seq"], n);
    }
    for n in 1..=3 {
        let event = on_a.recv_op("event").await;
        assert_eq!(
            (event["channel"].as_str(), event["seq"].as_u64()),
            (Some("posts"), Some(n))
        );
        assert_eq!(event["payload"]["n"], n);
    }
    println!(
        "an event published on node B ({}) reached a WebSocket client on node A ({}) through \
         Redis over TLS ({})",
        b.addr,
        a.addr,
        redis.url()
    );
    b.stop().await;
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_not_trusted() {
    let redis = TlsRedis::start();
    // A password in the URL, which no message may show.
    let url = format!("rediss://default:s3cret@127.0.0.1:{}", redis.port);
    let output = run_to_exit(&["--redis", &url, "--redis-ca", path(&redis.other_ca)]);
    let message = stderr(&output);
    println!(
        "another CA, binary: exit {:?}, stderr: {message}",
        output.status.code()
    );
    assert_eq!(output.status.code(), Some(1), "{message}");
    let shown = format!("rediss://default:***@127.0.0.1:{}", redis.port);
    assert!(message.contains(&shown), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(message.contains("certificate was not trusted"), "{message}");
    assert!(message.contains("unknown CA"), "{message}");
    assert!(
        message.contains(&format!("--redis-ca {}", path(&redis.other_ca))),
        "{message}"
    );
    assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");

    // In-process: `serve` refuses with the same reason.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let config = Config {
        redis: Some(url.clone()),
        redis_ca: Some(redis.other_ca.clone()),
        redis_prefix: prefix(),
        ..Config::default()
    };
    let served = tokio::time::timeout(
        PATIENCE,
        live_relay::serve(config, listener, std::future::pending()),
    )
    .await
    .expect("serve gave up at once");
    let e = served.expect_err("serve refuses");
    println!("another CA, in-process: {e}");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(e.to_string().contains("certificate was not trusted"), "{e}");
}

#[tokio::test]
async fn without_a_ca_a_private_certificate_is_not_trusted() {
    let redis = TlsRedis::start();
    let output = run_to_exit(&["--redis", &redis.url()]);
    let message = stderr(&output);
    println!(
        "no --redis-ca: exit {:?}, stderr: {message}",
        output.status.code()
    );
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(&redis.url()), "{message}");
    assert!(message.contains("certificate was not trusted"), "{message}");
    assert!(message.contains("public CAs"), "{message}");
    assert!(message.contains("--redis-ca"), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
}

#[tokio::test]
async fn a_bad_redis_ca_is_refused_before_binding() {
    let dir = std::env::temp_dir().join(format!("live-relay-redis-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let ca = make_ca(&dir, "ca");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").expect("write");
    let tls = "rediss://127.0.0.1:6380";
    let cases: [(&[&str], &str); 4] = [
        (
            &["--redis", tls, "--redis-ca", "/nonexistent/ca.pem"],
            "--redis-ca /nonexistent/ca.pem: ",
        ),
        (
            &["--redis", tls, "--redis-ca", path(&not_pem)],
            "no certificate",
        ),
        (
            &["--redis", "redis://127.0.0.1:6379", "--redis-ca", path(&ca)],
            "not a rediss:// URL",
        ),
        (&["--redis-ca", path(&ca)], "--redis rediss://"),
    ];
    for (args, expected) in cases {
        let output = run_to_exit(args);
        let message = stderr(&output);
        println!(
            "{args:?}: exit {:?}, stderr: {message}",
            output.status.code()
        );
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains("--redis-ca"), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(output.stdout.is_empty(), "nothing on stdout before binding");
    }
    let output = run_to_exit(&["--redis", "rediss://127.0.0.1:6380/#insecure"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--redis-ca"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

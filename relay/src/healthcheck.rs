//! `live-relay healthcheck [--addr HOST:PORT]`: exits 0 when the relay at that address answers
//! `GET /healthz` with 200, 1 otherwise. For images that have no shell and no curl (the
//! `HEALTHCHECK` of the `FROM scratch` image). The address defaults to `LIVE_RELAY_ADDR`, then to
//! the relay's default; an unspecified address (`0.0.0.0`, `::`) is asked on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The address to check, from the arguments after `healthcheck` (`--addr X` or `--addr=X`), else
/// `LIVE_RELAY_ADDR`, else the default. The error names what was wrong.
pub fn address(args: &[String]) -> Result<SocketAddr, String> {
    let mut given: Option<String> = std::env::var("LIVE_RELAY_ADDR").ok();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if let Some(value) = arg.strip_prefix("--addr=") {
            given = Some(value.to_owned());
        } else if arg == "--addr" {
            given = Some(
                rest.next()
                    .ok_or("--addr needs a value: HOST:PORT")?
                    .clone(),
            );
        } else {
            return Err(format!(
                "healthcheck: unknown argument `{arg}` (usage: live-relay healthcheck [--addr HOST:PORT])"
            ));
        }
    }
    let addr: SocketAddr = match given {
        Some(text) => text
            .parse()
            .map_err(|e| format!("--addr `{text}`: not HOST:PORT ({e})"))?,
        None => crate::config::Config::default().addr,
    };
    Ok(on_loopback(addr))
}

/// An unspecified address (listening on every interface) is reached on loopback.
fn on_loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// `Ok` when `GET /healthz` at `addr` answers 200; the error says what it answered instead.
pub async fn check(addr: SocketAddr) -> Result<(), String> {
    tokio::time::timeout(TIMEOUT, ask(addr))
        .await
        .map_err(|_| format!("http://{addr}/healthz did not answer within {TIMEOUT:?}"))?
}

async fn ask(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot ask {addr}: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the answer of {addr}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status_line = String::from_utf8_lossy(&head);
    let status_line = status_line.lines().next().unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => Err(format!(
            "http://{addr}/healthz answered `{}`",
            live_protocol::frame::excerpt(status_line)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_address_comes_from_the_flag_and_unspecified_means_loopback() {
        assert_eq!(
            address(&args(&["--addr", "0.0.0.0:9000"])),
            Ok("127.0.0.1:9000".parse().expect("an address"))
        );
        assert_eq!(
            address(&args(&["--addr=[::]:9000"])),
            Ok("[::1]:9000".parse().expect("an address"))
        );
        assert_eq!(
            address(&args(&["--addr", "10.1.2.3:80"])),
            Ok("10.1.2.3:80".parse().expect("an address"))
        );
        assert!(address(&args(&["--addr"])).is_err());
        assert!(address(&args(&["--addr", "nowhere"])).is_err());
        assert!(address(&args(&["--port", "1"])).is_err());
    }
}

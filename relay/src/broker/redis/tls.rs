//! TLS to Redis (`--redis rediss://…`): rustls, the server's certificate checked against the
//! public CAs built into the binary (webpki-roots: the relay's image has no CA bundle) or, with
//! `--redis-ca <PEM>`, against that file's CAs only (a private CA: ElastiCache, a self-signed
//! server). There is no switch to skip the check.

use redis::{Client, ConnectionAddr, ConnectionInfo, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, RootCertStore};
use std::error::Error;
use std::path::Path;
use std::sync::Arc;

/// Whether `url` asks for TLS (`rediss://`).
pub fn is_tls_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("rediss"))
}

/// Reads the `--redis-ca` file: PEM, at least one certificate, each usable as a trust anchor.
/// The error names the flag and the file.
pub fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("--redis-ca {name}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("--redis-ca {name}: not a PEM certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("--redis-ca {name}: a certificate that cannot be a CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "--redis-ca {name}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(pem)
}

/// Checks `--redis` and `--redis-ca` together, before the relay binds: the CA file must be
/// readable PEM, and is for a `rediss://` URL only.
pub fn check(url: Option<&str>, ca: Option<&Path>) -> Result<(), String> {
    let Some(ca) = ca else {
        return Ok(());
    };
    match url {
        None => {
            return Err(format!(
                "--redis-ca {}: it is for TLS to Redis; give --redis rediss://… too",
                ca.display()
            ))
        }
        Some(url) if !is_tls_url(url) => {
            return Err(format!(
                "--redis-ca {} is for TLS to Redis, but --redis is not a rediss:// URL",
                ca.display()
            ))
        }
        Some(_) => {}
    }
    read_ca(ca).map(drop)
}

/// The client for `info`: with TLS, the server's certificate is checked against `ca`'s
/// certificates when given, against the public CAs otherwise.
pub fn client(info: ConnectionInfo, shown: &str, ca: Option<&Path>) -> Result<Client, String> {
    let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    let Some(ca) = ca else {
        return Client::open(info).map_err(|e| format!("--redis `{shown}`: {e}"));
    };
    if !tls {
        return Err(format!(
            "--redis-ca {} is for TLS to Redis, but --redis `{shown}` is not a rediss:// URL",
            ca.display()
        ));
    }
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(read_ca(ca)?),
    };
    Client::build_with_tls(info, certificates).map_err(|e| format!("--redis `{shown}`: {e}"))
}

/// When a connection failed because the server's certificate did not verify: why, in words.
pub fn untrusted(e: &RedisError) -> Option<String> {
    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(error) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = error.downcast_ref::<rustls::Error>()
        {
            return Some(match why {
                CertificateError::UnknownIssuer => "signed by an unknown CA".to_owned(),
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("not issued for this host: {why}")
                }
                other => other.to_string(),
            });
        }
        // A `RedisError`'s source is the `Arc` it keeps, whose `source` is the wrapped error's
        // (not that error), and `io::Error::source` skips the error it wraps: look inside both.
        let io = error.downcast_ref::<std::io::Error>();
        next = if let Some(shared) = error.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
            Some(&**shared)
        } else if let Some(inner) = io.and_then(std::io::Error::get_ref) {
            Some(inner)
        } else {
            error.source()
        };
    }
    // Should a later redis crate hide the chain: rustls's words for the same.
    let text = e.to_string();
    let (_, why) = text.split_once("invalid peer certificate: ")?;
    Some(match why {
        "UnknownIssuer" => "signed by an unknown CA".to_owned(),
        other => other.to_owned(),
    })
}

/// The one-line reason a connection failed on an untrusted certificate, naming the URL (`shown`,
/// without password) and what to do.
pub fn untrusted_reason(shown: &str, why: &str, ca: Option<&Path>) -> String {
    match ca {
        Some(ca) => format!(
            "Redis at {shown}: its TLS certificate was not trusted ({why}; checked against the \
             CAs in --redis-ca {})",
            ca.display()
        ),
        None => format!(
            "Redis at {shown}: its TLS certificate was not trusted ({why}; checked against the \
             public CAs built in): give the CA that signed it with --redis-ca"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rediss_is_tls() {
        assert!(is_tls_url("rediss://h:6380"));
        assert!(is_tls_url("REDISS://h"));
        assert!(!is_tls_url("redis://h"));
        assert!(!is_tls_url("unix:///tmp/r.sock"));
        assert!(!is_tls_url("rediss"));
    }

    #[test]
    fn a_ca_file_must_be_pem_certificates() {
        let dir = std::env::temp_dir();
        let file = |name: &str, text: &str| {
            let path = dir.join(format!("live-relay-{}-{name}", std::process::id()));
            std::fs::write(&path, text).expect("write");
            path
        };
        let e = read_ca(Path::new("/nonexistent/ca.pem")).expect_err("missing");
        assert!(e.starts_with("--redis-ca /nonexistent/ca.pem: "), "{e}");
        let text = file("text.pem", "hello\n");
        let e = read_ca(&text).expect_err("not PEM");
        assert!(
            e.contains("--redis-ca") && e.contains("no certificate"),
            "{e}"
        );
        let key = file(
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let e = read_ca(&key).expect_err("a key");
        assert!(e.contains("no certificate"), "{e}");
        let bad = file(
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = read_ca(&bad).expect_err("not a certificate");
        assert!(e.contains("--redis-ca"), "{e}");
        for path in [text, key, bad] {
            let _ = std::fs::remove_file(path);
        }
    }

    #[test]
    fn an_untrusted_certificate_is_found_in_the_error() {
        let refused = |why: CertificateError| {
            let io = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidCertificate(why),
            );
            untrusted(&RedisError::from(io))
        };
        assert_eq!(
            refused(CertificateError::UnknownIssuer).as_deref(),
            Some("signed by an unknown CA")
        );
        // Through the chain, not the words: these are rustls's `Display`, not `Debug`.
        let name = refused(CertificateError::NotValidForName).expect("untrusted");
        assert!(name.starts_with("not issued for this host: "), "{name}");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(untrusted(&RedisError::from(io)), None);
        let reason = untrusted_reason("rediss://h:6380", "expired", None);
        assert!(reason.contains("not trusted") && reason.contains("--redis-ca"));
    }

    #[test]
    fn a_ca_needs_a_tls_url() {
        let ca = Path::new("/nonexistent/ca.pem");
        assert_eq!(check(Some("redis://h"), None), Ok(()));
        let e = check(Some("redis://h"), Some(ca)).expect_err("plain URL");
        assert!(e.contains("not a rediss:// URL"), "{e}");
        let e = check(None, Some(ca)).expect_err("no URL");
        assert!(e.contains("--redis rediss://"), "{e}");
        let e = check(Some("rediss://h"), Some(ca)).expect_err("missing file");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}

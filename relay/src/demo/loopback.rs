//! The demo's own routes (`GET /demo/token`, `POST /demo/cut`) answer only requests from a
//! loopback address. The demo binds a loopback address anyway (`Config::check`), but a reverse
//! proxy or a port forward in front of it must not hand anyone tokens or a way to cut every
//! connection.

use crate::error::error_response;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use live_protocol::frame::ErrorCode;
use std::net::SocketAddr;

/// Passes a request from a loopback address on; answers any other `403 forbidden`.
pub async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if is_loopback(peer) {
        return next.run(request).await;
    }
    error_response(
        ErrorCode::Forbidden,
        &format!(
            "{} answers requests from this machine only (demo mode)",
            request.uri().path()
        ),
    )
}

/// Whether `peer` is on this machine (an IPv4-mapped loopback address too).
pub fn is_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, loopback_only};
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    async fn status_from(peer: &str) -> u16 {
        let peer: SocketAddr = peer.parse().expect("an address");
        let router = Router::new()
            .route("/demo/token", get(|| async { "a token" }))
            .route_layer(axum::middleware::from_fn(loopback_only));
        let mut request = Request::get("/demo/token")
            .body(Body::empty())
            .expect("a request");
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.oneshot(request).await.expect("an answer");
        response.status().as_u16()
    }

    #[tokio::test]
    async fn a_request_from_elsewhere_is_forbidden() {
        assert_eq!(status_from("127.0.0.1:5000").await, 200);
        assert_eq!(status_from("[::1]:5000").await, 200);
        assert_eq!(status_from("192.0.2.7:5000").await, 403);
        assert_eq!(status_from("[::ffff:192.0.2.7]:5000").await, 403);
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for addr in [
            "127.0.0.1:1",
            "127.8.9.10:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(is_loopback(addr.parse().expect("an address")), "{addr}");
        }
        for addr in [
            "10.0.0.1:1",
            "192.168.1.1:1",
            "[::ffff:10.0.0.1]:1",
            "[2001:db8::1]:1",
        ] {
            assert!(!is_loopback(addr.parse().expect("an address")), "{addr}");
        }
    }
}

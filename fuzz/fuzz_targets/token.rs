//! Connection tokens (`relay/src/auth/token.rs`, `claims.rs`, `pattern.rs`). The first byte picks
//! the case: any text verified as a token, or any bytes as the claims of a token validly signed
//! with the relay's HS256 secret (so the claims parser and the checks behind the signature are
//! reached). Nothing panics; an accepted token has a future `exp` and usable patterns.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use live_relay::auth::{time_left, Auth};
use live_relay::Config;
use std::sync::OnceLock;

const SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret-0123";

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config = Config {
            jwt_secret: Some(SECRET.to_owned()),
            ..Config::default()
        };
        Auth::from_config(&config).expect("the fuzz secret is accepted")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        text.to_owned()
    } else {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(rest));
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signs");
        format!("{message}.{signature}")
    };
    match auth().verify(&token) {
        Ok(claims) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // `exp` equal to the current second is still accepted (leeway 0, `exp < now` expires).
            assert!(claims.exp >= now, "a token expired at {} was accepted", claims.exp);
            let _ = time_left(&claims);
            let _ = claims.channels.allows("resources/posts");
            let _ = claims.publish.allows("");
            let _ = live_relay::auth::deadline(&claims);
        }
        Err(failure) => {
            let _ = failure.reason();
            assert!(!failure.to_string().is_empty());
        }
    }
});

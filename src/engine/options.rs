//! The client's options, decided: which transport and protocol a combination of options means,
//! which combinations cannot work or need the full build, and the session configuration the
//! numbers make. The browser shell only reads the values out of the JS object
//! (`src/browser/client.rs`, `LiveClient::new`); the package's entry (`index.js`) has already
//! refused what a user can get wrong, with messages naming the option, so what is refused here
//! is what reached the wasm around the entry.

use super::limits::{DEFAULT_MAX_FRAME_BYTES, MAX_TIMER_MS};
#[cfg(feature = "simple")]
use super::simple::Protocol;
use super::{session::TransportKind, SessionConfig};

/// The options that choose the transport and protocol, as given (`None`: left out).
#[derive(Clone, Copy, Default)]
pub struct Choice<'a> {
    /// `transport`: `"websocket"` (the default), `"sse"` or `"auto"`.
    pub transport: Option<&'a str>,
    /// `protocol`: `"v1"` (the default) or `"simple"`.
    pub protocol: Option<&'a str>,
    /// `flavor: "igniter"`.
    pub igniter: bool,
    /// A `token` or a `getToken`.
    pub tokens: bool,
    /// `scopeQuery` was given (not empty).
    pub scopes: bool,
}

/// What the options chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub transport: TransportKind,
    /// The seed's minimal WebSocket protocol (`protocol: "simple"`).
    pub simple: bool,
}

/// Why options were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionsError {
    /// The option (as written in JS) needs the crate's `sse`, `igniter` or `simple` feature: the
    /// npm package's `full/` build.
    NeedsFullBuild(&'static str),
    /// A value no build knows, or a combination that cannot work (`"simple"` with SSE, Igniter.js,
    /// a token or scopes).
    CannotWork,
}

impl Choice<'_> {
    /// The transport and protocol these options mean, or why they cannot be had. (Inlined into
    /// the shell's one call: as a call of its own it cost the wasm about 90 bytes.)
    #[inline(always)]
    pub fn decide(self) -> Result<Chosen, OptionsError> {
        use OptionsError::CannotWork;
        let transport = match self.transport {
            None | Some("websocket") => TransportKind::WebSocket,
            #[cfg(feature = "sse")]
            Some("sse") => TransportKind::Sse,
            #[cfg(feature = "sse")]
            Some("auto") => TransportKind::Auto,
            #[cfg(not(feature = "sse"))]
            Some("sse") => return Err(OptionsError::NeedsFullBuild("transport: \"sse\"")),
            #[cfg(not(feature = "sse"))]
            Some("auto") => return Err(OptionsError::NeedsFullBuild("transport: \"auto\"")),
            _ => return Err(CannotWork),
        };
        if self.igniter && !cfg!(feature = "igniter") {
            return Err(OptionsError::NeedsFullBuild("flavor: \"igniter\""));
        }
        let simple = match self.protocol {
            None | Some("v1") => false,
            Some("simple") if !cfg!(feature = "simple") => {
                return Err(OptionsError::NeedsFullBuild("protocol: \"simple\""))
            }
            // The seed's protocol: WebSocket only, no tokens, no scopes.
            Some("simple")
                if transport == TransportKind::WebSocket
                    && !self.igniter
                    && !self.tokens
                    && !self.scopes =>
            {
                true
            }
            _ => return Err(CannotWork),
        };
        Ok(Chosen { transport, simple })
    }
}

/// The session's configuration from what the options chose and their numbers: `number(name,
/// default)` is the option `name` when it is a number from 0 to `MAX_TIMER_MS`, else `default`.
/// `relays` is how many relay URLs were given, `seed` the reconnect jitter's.
#[inline(always)]
pub fn session_config(
    chosen: Chosen,
    igniter: bool,
    tokens: bool,
    relays: usize,
    seed: u64,
    number: impl Fn(&str, u64) -> u64,
) -> SessionConfig {
    let defaults = SessionConfig::default();
    SessionConfig {
        backoff_min_ms: number("backoffMinMs", defaults.backoff_min_ms),
        backoff_max_ms: number("backoffMaxMs", backoff_max_default(igniter)),
        stable_after_ms: number("stableAfterMs", defaults.stable_after_ms),
        ping_grace_ms: number("pingGraceMs", defaults.ping_grace_ms),
        connect_timeout_ms: number("connectTimeoutMs", defaults.connect_timeout_ms),
        publish_timeout_ms: number("publishTimeoutMs", defaults.publish_timeout_ms),
        publish_queue: number("publishQueue", defaults.publish_queue as u64) as usize,
        idle_close_ms: number("idleCloseMs", defaults.idle_close_ms),
        seed,
        transport: chosen.transport,
        reopen_debounce_ms: defaults.reopen_debounce_ms,
        auth: tokens,
        relays,
        coalesce_ms: number("coalesceMs", defaults.coalesce_ms),
        deliver_frames: true,
        #[cfg(feature = "simple")]
        protocol: if chosen.simple {
            Protocol::Simple
        } else {
            Protocol::V1
        },
    }
}

/// A number option (milliseconds, or a count): `given` when it is a number from 0 to 2^31 - 1
/// (past that `setTimeout` fires at once), else `default` (missing, negative, NaN, another type).
#[inline(always)]
pub fn millis(given: Option<f64>, default: u64) -> u64 {
    given
        .filter(|n| (0.0..=MAX_TIMER_MS as f64).contains(n))
        .map_or(default, |n| n as u64)
}

/// The largest frame the client takes (`maxFrameBytes`, UTF-8 bytes): `given` by `number`'s rule,
/// 0 meaning the default.
#[inline(always)]
pub fn max_frame_bytes(given: u64) -> u32 {
    match given {
        0 => DEFAULT_MAX_FRAME_BYTES,
        n => n.min(u64::from(u32::MAX)) as u32,
    }
}

/// The reconnect delay cap unless `backoffMaxMs` is given: an Igniter.js stream has its own.
#[cfg_attr(not(feature = "igniter"), allow(unused_variables))]
fn backoff_max_default(igniter: bool) -> u64 {
    #[cfg(feature = "igniter")]
    if igniter {
        return super::igniter::BACKOFF_MAX_MS;
    }
    SessionConfig::default().backoff_max_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use OptionsError::CannotWork;

    fn choice(transport: Option<&'static str>, protocol: Option<&'static str>) -> Choice<'static> {
        Choice {
            transport,
            protocol,
            ..Choice::default()
        }
    }

    #[test]
    fn the_defaults_are_websocket_and_protocol_v1() {
        let websocket = Ok(Chosen {
            transport: TransportKind::WebSocket,
            simple: false,
        });
        assert_eq!(choice(None, None).decide(), websocket);
        assert_eq!(choice(Some("websocket"), Some("v1")).decide(), websocket);
        // With a token and scopes too.
        let all = Choice {
            tokens: true,
            scopes: true,
            ..choice(None, None)
        };
        assert_eq!(all.decide(), websocket);
    }

    #[test]
    fn unknown_values_cannot_work_in_any_build() {
        for (transport, protocol) in [
            (Some("WebSocket"), None),
            (Some("ws"), None),
            (Some(""), None),
            (None, Some("v2")),
            (None, Some("")),
            (None, Some("Simple")),
        ] {
            assert_eq!(
                choice(transport, protocol).decide(),
                Err(CannotWork),
                "{transport:?} {protocol:?}"
            );
        }
    }

    #[cfg(not(feature = "sse"))]
    #[test]
    fn the_default_build_names_the_option_that_needs_the_full_build() {
        assert_eq!(
            choice(Some("sse"), None).decide(),
            Err(OptionsError::NeedsFullBuild("transport: \"sse\""))
        );
        assert_eq!(
            choice(Some("auto"), None).decide(),
            Err(OptionsError::NeedsFullBuild("transport: \"auto\""))
        );
        let igniter = Choice {
            igniter: true,
            ..choice(None, None)
        };
        assert_eq!(
            igniter.decide(),
            Err(OptionsError::NeedsFullBuild("flavor: \"igniter\""))
        );
        assert_eq!(
            choice(None, Some("simple")).decide(),
            Err(OptionsError::NeedsFullBuild("protocol: \"simple\""))
        );
    }

    #[cfg(all(feature = "sse", feature = "igniter", feature = "simple"))]
    #[test]
    fn the_full_build_takes_sse_auto_igniter_and_simple() {
        assert_eq!(
            choice(Some("sse"), None).decide().map(|c| c.transport),
            Ok(TransportKind::Sse)
        );
        assert_eq!(
            choice(Some("auto"), Some("v1"))
                .decide()
                .map(|c| c.transport),
            Ok(TransportKind::Auto)
        );
        let igniter = Choice {
            igniter: true,
            ..choice(Some("sse"), None)
        };
        assert!(igniter.decide().is_ok());
        assert_eq!(
            choice(Some("websocket"), Some("simple")).decide(),
            Ok(Chosen {
                transport: TransportKind::WebSocket,
                simple: true
            })
        );
    }

    #[cfg(feature = "simple")]
    #[test]
    fn the_simple_protocol_is_websocket_without_tokens_scopes_or_igniter() {
        let simple = choice(None, Some("simple"));
        assert!(simple.decide().is_ok());
        for refused in [
            Choice {
                tokens: true,
                ..simple
            },
            Choice {
                scopes: true,
                ..simple
            },
            Choice {
                igniter: true,
                ..simple
            },
            Choice {
                transport: Some("sse"),
                ..simple
            },
            Choice {
                transport: Some("auto"),
                ..simple
            },
        ] {
            assert_eq!(refused.decide(), Err(CannotWork));
        }
    }

    #[test]
    fn numbers_left_out_keep_the_defaults_and_given_ones_are_used() {
        let chosen = choice(None, None).decide().expect("the defaults");
        let defaults = SessionConfig::default();
        let config = session_config(chosen, false, true, 2, 7, |_, default| default);
        assert_eq!(config.backoff_max_ms, defaults.backoff_max_ms);
        assert_eq!(config.publish_queue, defaults.publish_queue);
        assert_eq!((config.auth, config.relays, config.seed), (true, 2, 7));
        let config = session_config(chosen, false, false, 1, 0, |name, default| match name {
            "backoffMaxMs" => 90,
            "publishQueue" => 3,
            "coalesceMs" => 250,
            _ => default,
        });
        assert_eq!(
            (
                config.backoff_max_ms,
                config.publish_queue,
                config.coalesce_ms
            ),
            (90, 3, 250)
        );
        assert_eq!(config.backoff_min_ms, defaults.backoff_min_ms);
        assert!(!config.auth);
    }

    #[cfg(feature = "igniter")]
    #[test]
    fn an_igniter_stream_has_its_own_reconnect_cap_unless_one_is_given() {
        let chosen = choice(Some("sse"), None).decide().expect("sse");
        let config = session_config(chosen, true, false, 1, 0, |_, default| default);
        assert_eq!(config.backoff_max_ms, super::super::igniter::BACKOFF_MAX_MS);
        let config = session_config(chosen, true, false, 1, 0, |name, default| {
            if name == "backoffMaxMs" {
                60_000
            } else {
                default
            }
        });
        assert_eq!(config.backoff_max_ms, 60_000);
    }

    #[test]
    fn max_frame_bytes_zero_is_the_default() {
        assert_eq!(max_frame_bytes(0), DEFAULT_MAX_FRAME_BYTES);
        assert_eq!(max_frame_bytes(5), 5);
        assert_eq!(max_frame_bytes(2_147_483_647), 2_147_483_647);
    }

    #[test]
    fn a_number_option_out_of_range_keeps_the_default() {
        assert_eq!(millis(Some(250.0), 7), 250);
        assert_eq!(millis(Some(0.0), 7), 0);
        assert_eq!(millis(Some(2_147_483_647.0), 7), 2_147_483_647);
        assert_eq!(millis(Some(1.9), 7), 1, "whole milliseconds");
        for odd in [
            None,
            Some(-1.0),
            Some(2_147_483_648.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
        ] {
            assert_eq!(millis(odd, 7), 7, "{odd:?}");
        }
    }
}

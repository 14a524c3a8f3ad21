//! The `code` of an error the app is given: the error hook's `code`, a rejected publish's
//! `relayCode`. The relay's codes are protocol v1's [`ErrorCode`]; the others are the client's own.

use crate::engine::frame::ErrorCode;
use crate::prelude::*;

/// Why the relay (or the client on its behalf) refused something, as the app is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// One of the relay's codes (an `error` frame's, an HTTP error body's).
    Relay(ErrorCode),
    /// A code in the relay's place this version does not know (a newer relay's), kept as sent.
    Unknown(String),
    /// An HTTP error status answered without the relay's error body (the SSE transport's
    /// `POST /publish`): its name, `http_<status>`, made by [`Code::http`].
    #[cfg(feature = "sse")]
    Http(String),
    /// A 2xx answer to `POST /publish` that is not an ack: `bad_answer`.
    #[cfg(feature = "sse")]
    BadAnswer,
    /// No token could be obtained (`getToken` threw, rejected, or gave something that is not a
    /// non-empty string): `get_token`.
    GetToken,
    /// A channel the server refused outright (an Igniter.js server's HTTP 500): `refused`.
    Refused,
}

impl Code {
    /// The code named `name` where the relay's code is read (an HTTP error body).
    pub fn read(name: &str) -> Code {
        match ErrorCode::from_name(name) {
            Some(code) => Code::Relay(code),
            None => Code::Unknown(name.to_owned()),
        }
    }

    /// The code of an HTTP error `status` answered without the relay's error body.
    #[cfg(feature = "sse")]
    pub fn http(status: u16) -> Code {
        Code::Http(crate::cat!("http_", status))
    }

    /// The code's name, as the app sees it.
    pub fn name(&self) -> &str {
        match self {
            Code::Relay(code) => code.as_str(),
            Code::Unknown(name) => name,
            #[cfg(feature = "sse")]
            Code::Http(name) => name,
            #[cfg(feature = "sse")]
            Code::BadAnswer => "bad_answer",
            Code::GetToken => "get_token",
            Code::Refused => "refused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_codes_the_app_was_given_as_strings() {
        let cases = [
            (Code::Relay(ErrorCode::Forbidden), "forbidden"),
            (Code::Relay(ErrorCode::OutcomeUnknown), "outcome_unknown"),
            (Code::Unknown("teapot".into()), "teapot"),
            (Code::GetToken, "get_token"),
            (Code::Refused, "refused"),
        ];
        for (code, name) in cases {
            assert_eq!(code.name(), name);
        }
        #[cfg(feature = "sse")]
        {
            assert_eq!(Code::http(502).name(), "http_502");
            assert_eq!(Code::BadAnswer.name(), "bad_answer");
        }
    }

    #[test]
    fn a_read_name_is_typed_when_known_and_kept_when_not() {
        for code in ErrorCode::ALL {
            assert_eq!(Code::read(code.as_str()), Code::Relay(code));
        }
        assert_eq!(Code::read("teapot"), Code::Unknown("teapot".into()));
    }
}

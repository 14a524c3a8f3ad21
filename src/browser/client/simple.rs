//! `protocol: "simple"`: the shell's driver of the seed's minimal WebSocket protocol (its
//! translator is `engine::simple`): the session's frames translated onto the socket, and the
//! answers the seed's server never gives handed back.

use super::*;

impl Shell {
    /// `protocol: "simple"`: a frame of the session in the seed's protocol on the socket, then the
    /// answers the seed's server never gives (`subscribed`, the publish's ack) back to the session.
    pub(super) fn send_simple(&mut self, text: &str) {
        let translated = match self.simple.as_mut().map(|t| t.outgoing(text)) {
            Some(Ok(out)) => out,
            Some(Err(problem)) => return self.report(problem),
            None => return,
        };
        for frame in &translated.send {
            let Some(Transport::Socket(socket)) = &self.socket else {
                return; // no socket: nothing was sent, so nothing is answered
            };
            if let Err(e) = socket.send(frame) {
                let reason = describe(&e);
                self.socket = None;
                self.simple = None;
                return self
                    .session
                    .handle_close(now_ms(), &cat!("send failed: ", reason));
            }
        }
        for reply in translated.replies {
            self.handle_translated(now_ms(), &reply);
        }
    }
}

//! A WebSocket connection's publishes, off its read loop.
//!
//! A publish waits for the broker (a Redis round trip) and then, for a publisher subscribed to its
//! own channel, for its event to come back through the fan-out (up to 1 s on Redis). Awaited in the
//! connection's loop, that wait stopped everything else: the outbound queue was not drained (a
//! publisher on a busy channel could get itself closed as a slow consumer), no ping went out, and
//! the client's frames were not read (so its silence deadline could pass). So the loop hands each
//! publish frame to a [`Publisher`]: one task per connection, started at its first publish, that
//! publishes in the order the frames came (a client's publishes on one channel keep their order)
//! and hands back each [`Outcome`], which the loop answers (`ack` after the queued events, or the
//! error).

use crate::auth::Grant;
use crate::broker::ConnId;
use crate::state::AppState;
use axum::extract::ws::Utf8Bytes;
use live_protocol::frame::{decode_client, ClientFrame, FrameError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Publishes one connection may have waiting for the broker at once (more than the client's own
/// queue of unacknowledged publishes, which it resends back to back after a reconnect). Past it
/// the connection's loop waits for room, as it waited for each publish before: only a client
/// flooding the relay faster than it publishes is slowed down.
pub const MAX_IN_FLIGHT: usize = 256;

/// What became of one publish frame.
#[derive(Debug)]
pub enum Outcome {
    /// Published (or its key was seen) as `seq`: answered `ack` once what is queued
    /// for the connection is written.
    Published { id: u64, seq: u64 },
    /// Refused: answered with this error (with the publish's `id`).
    Refused { id: u64, error: FrameError },
}

/// One publish frame, with the rights of the connection when it arrived.
struct Work {
    frame: Utf8Bytes,
    grant: Grant,
}

/// The sending side of a connection's publish task, and where its outcomes come back.
pub struct Publisher {
    work: mpsc::Sender<Work>,
    outcomes: mpsc::Receiver<Outcome>,
}

impl Publisher {
    /// Starts the publish task of connection `member`.
    pub fn start(state: Arc<AppState>, member: ConnId) -> Publisher {
        let (work, mut queue) = mpsc::channel::<Work>(MAX_IN_FLIGHT);
        let (done, outcomes) = mpsc::channel(MAX_IN_FLIGHT);
        tokio::spawn(async move {
            while let Some(Work { frame, grant }) = queue.recv().await {
                let Some(outcome) = publish(&state, member, &frame, &grant).await else {
                    continue;
                };
                if done.send(outcome).await.is_err() {
                    // The connection is gone: nobody to answer.
                    return;
                }
            }
        });
        Publisher { work, outcomes }
    }

    /// Hands over the text of a `publish` frame (already checked to decode as one), waiting for
    /// room when [`MAX_IN_FLIGHT`] are waiting; `false` when the task has ended.
    pub async fn submit(&self, frame: Utf8Bytes, grant: Grant) -> bool {
        self.work.send(Work { frame, grant }).await.is_ok()
    }

    /// The next outcome (pending while nothing is done).
    pub async fn next(&mut self) -> Option<Outcome> {
        self.outcomes.recv().await
    }
}

/// Publishes one frame and, once published, waits until a publisher subscribed to the channel has
/// had its own event queued (so that it sees the event before the ack).
async fn publish(
    state: &AppState,
    member: ConnId,
    frame: &Utf8Bytes,
    grant: &Grant,
) -> Option<Outcome> {
    let Ok(ClientFrame::Publish { id, event }) = decode_client(frame.as_str()) else {
        // Checked by the loop before handing it over.
        return None;
    };
    Some(match state.publish(grant, event).await {
        Ok((channel, seq)) => {
            state.broker.delivered(member, &channel, seq).await;
            Outcome::Published { id, seq }
        }
        Err(error) => Outcome::Refused { id, error },
    })
}

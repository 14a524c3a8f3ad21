//! The LISTEN connection: wakes every partition's consumer when a transaction that wrote outbox
//! rows commits, and once more after every (re)connect, since notifications sent while it was
//! away are lost. Polling covers whatever it misses.

use super::connect::Target;
use super::error::describe;
use super::status::{error, FeedStatus};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

/// The channel the outbox's trigger notifies (`schema.sql`, `live_relay.notify`).
pub const CHANNEL: &str = "live_relay";

const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Wakes every consumer: each holds one permit at most, so wake-ups fold into one.
pub fn wake_all(wakers: &[Arc<Notify>]) {
    for waker in wakers {
        waker.notify_one();
    }
}

/// Listens for as long as the task runs, reconnecting after 1 s, doubling to 30 s.
pub async fn run(target: Target, wakers: Arc<[Arc<Notify>]>, status: Arc<FeedStatus>) {
    let mut retry = FIRST_RETRY;
    loop {
        match listen(&target, &wakers, &status).await {
            // It was up: start the backoff afresh.
            Ok(reason) => {
                retry = FIRST_RETRY;
                tracing::warn!("the PostgreSQL feed's LISTEN connection ended: {reason}");
                status.failed(error::LISTEN, "listen", reason);
            }
            Err(reason) => {
                tracing::warn!(
                    "the PostgreSQL feed could not LISTEN: {reason}; trying again in {} s",
                    retry.as_secs()
                );
                status.failed(error::LISTEN, "listen", reason);
            }
        }
        status.listening(false);
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One LISTEN connection, from connect to its end: `Ok` with why it ended once it was up, `Err`
/// when it never was.
async fn listen(
    target: &Target,
    wakers: &Arc<[Arc<Notify>]>,
    status: &FeedStatus,
) -> Result<String, String> {
    let (client, mut connection) = target.connect_raw().await.map_err(|e| e.to_string())?;
    let heard = Arc::clone(wakers);
    // The driver reads the connection's messages itself: driven as a plain future it would
    // drop the notifications.
    let mut driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => wake_all(&heard),
                Ok(_) => {}
                Err(e) => return describe(&e),
            }
        }
        "the server closed the connection".to_owned()
    });
    let statement = format!("listen {CHANNEL}");
    let listening = tokio::select! {
        result = client.batch_execute(&statement) => result.map_err(|e| describe(&e)),
        ended = &mut driver => Err(ended.unwrap_or_else(|e| e.to_string())),
    };
    if let Err(reason) = listening {
        driver.abort();
        return Err(reason);
    }
    status.listening(true);
    status.recovered("listen");
    tracing::info!("the PostgreSQL feed listens on `{CHANNEL}`");
    // Whatever was committed while no one listened.
    wake_all(wakers);
    let ended = driver.await.unwrap_or_else(|e| e.to_string());
    drop(client);
    Ok(ended)
}

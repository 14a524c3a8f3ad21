//! One partition's consumer: drains the outbox rows of its partition, in id order, in batches,
//! each in one transaction that holds the partition's advisory lock, so that exactly one relay of
//! all those on the database drains a partition at a time (the others skip it without waiting).
//!
//! A drain: BEGIN → `pg_try_advisory_xact_lock` (not taken: another relay drains; try later) →
//! SELECT a batch → publish each channel's rows in id order (the channels at once), a channel
//! stopping at its first row that fails for now → move
//! the refused rows to `live_relay.rejected` → DELETE what is done → COMMIT. A crash before the
//! COMMIT leaves the rows: they are published again, under the same idempotency key.

use super::connect::Target;
use super::error::{describe, FeedError};
use super::row::{OutboxRow, Outcome, COLUMNS, TEXTS};
use super::schema::{partition_expr, LOCK_CLASS};
use super::status::{error, FeedStatus};
use crate::publish::now_ms;
use crate::state::AppState;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// The most rows one drain reads.
pub const BATCH: i64 = 256;

/// How often a consumer reads its partition from the start while a long backlog drains.
const RESCAN: Duration = Duration::from_secs(1);

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const LAST_BACKOFF: Duration = Duration::from_secs(5);

/// How a drain ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// A full batch, up to this id: more rows may wait.
    Full(i64),
    /// Fewer rows than a batch: the partition is empty for now.
    Empty,
    /// Another relay holds the partition.
    Busy,
    /// A publish failed for now; the rows from it on wait for the next try.
    Stopped,
}

/// The consumer of one partition.
pub struct Consumer {
    pub partition: u16,
    pub partitions: u16,
    pub target: Target,
    pub state: Arc<AppState>,
    pub status: Arc<FeedStatus>,
    /// Woken by the LISTEN connection.
    pub wake: Arc<Notify>,
    /// `--postgres-poll-ms`.
    pub poll: Duration,
}

impl Consumer {
    /// Drains for as long as the task runs: at once after a full batch, else on a wake-up or after
    /// the poll interval; backing off (10 ms, doubling to 5 s) after a failure.
    pub async fn run(self) {
        // $1: the batch, $2: the largest row read ([`COLUMNS`]), $3: the id to read after, $4:
        // the partition.
        let columns = COLUMNS.replace("$max", "$2");
        let select = if self.partitions > 1 {
            format!(
                "select {columns} from live_relay.outbox o {TEXTS} where {} = $4 and o.id > $3 \
                 order by o.id limit $1",
                partition_expr(self.partitions).replace("channel", "o.channel")
            )
        } else {
            format!(
                "select {columns} from live_relay.outbox o {TEXTS} where o.id > $3 \
                 order by o.id limit $1"
            )
        };
        // Where the next drain reads from: after a full batch, past it (so that a long backlog is
        // not read again from its start, over the index entries of the rows deleted meanwhile,
        // which PostgreSQL skips cheaply only once no transaction can see them); from the start
        // after anything else and at least every RESCAN, so that a row committed late with a
        // lower id waits at most that long. (A row's changes commit in id order: one waits for
        // the other's row lock, so no row's events are reordered.)
        let mut after: i64 = 0;
        let mut rescan_at = tokio::time::Instant::now() + RESCAN;
        let part = format!("partition {}", self.partition);
        let mut client: Option<Client> = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            if tokio::time::Instant::now() >= rescan_at {
                after = 0;
                rescan_at = tokio::time::Instant::now() + RESCAN;
            }
            let result = match &mut client {
                Some(c) if !c.is_closed() => self.drain(c, &select, after).await,
                _ => match self.target.connect_consumer().await {
                    Ok(c) => self.drain(client.insert(c), &select, after).await,
                    Err(e) => Err(e),
                },
            };
            after = 0;
            match result {
                Ok(Drained::Full(last)) => {
                    backoff = FIRST_BACKOFF;
                    self.status.recovered(&part);
                    after = last;
                    continue;
                }
                Ok(Drained::Empty | Drained::Busy) => {
                    backoff = FIRST_BACKOFF;
                    self.status.recovered(&part);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                    continue;
                }
                Ok(Drained::Stopped) => {}
                Err(e) => {
                    if e.is_closed() {
                        client = None;
                    }
                    tracing::warn!(
                        partition = self.partition,
                        "a drain of the PostgreSQL outbox failed: {e}; trying again in {} ms",
                        backoff.as_millis()
                    );
                    self.status.failed(error::DRAIN, &part, e.to_string());
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(LAST_BACKOFF);
        }
    }

    async fn drain(
        &self,
        client: &mut Client,
        select: &str,
        after: i64,
    ) -> Result<Drained, FeedError> {
        let tx = client.transaction().await?;
        let partition = i32::from(self.partition);
        let max_bytes = i64::try_from(self.state.config.max_frame_bytes).unwrap_or(i64::MAX);
        let locked: bool = tx
            .query_typed(
                "select pg_try_advisory_xact_lock($1, $2)",
                &[(&LOCK_CLASS, Type::INT4), (&partition, Type::INT4)],
            )
            .await?
            .first()
            .map(|row| row.get(0))
            .unwrap_or(false);
        if !locked {
            tx.rollback().await?;
            return Ok(Drained::Busy);
        }
        let rows = if self.partitions > 1 {
            // The primary key, read in order from the cursor, the other partitions' rows skipped
            // (about `partitions` rows read per row taken): with the statistics of a fresh
            // backlog the planner would rather read the whole table and sort it, for every batch
            // (8.5 s for 50,000 rows instead of 1). No index on the partition: one on an
            // expression, built concurrently at start, holds back the cleanup of deleted rows for
            // as long as its build waits (behind an autovacuum, say), and every batch then walked
            // them all (66 s for 100,000 rows on two relays).
            tx.batch_execute("set local enable_bitmapscan = off; set local enable_seqscan = off")
                .await?;
            tx.query_typed(
                select,
                &[
                    (&BATCH, Type::INT8),
                    (&max_bytes, Type::INT8),
                    (&after, Type::INT8),
                    (&partition, Type::INT4),
                ],
            )
            .await?
        } else {
            tx.query_typed(
                select,
                &[
                    (&BATCH, Type::INT8),
                    (&max_bytes, Type::INT8),
                    (&after, Type::INT8),
                ],
            )
            .await?
        };
        let last = rows.last().and_then(|row| row.try_get::<_, i64>(0).ok());
        let read = rows.len();
        let mut refused: Vec<(i64, String)> = Vec::new();
        let mut readable = Vec::with_capacity(read);
        for row in &rows {
            match OutboxRow::read(row) {
                (_, Ok(row)) => readable.push(row),
                (Some(id), Err(reason)) => {
                    tracing::warn!(id, "an outbox row was refused: {reason}");
                    refused.push((id, reason));
                }
                (None, Err(reason)) => return Err(FeedError::Row(reason)),
            }
        }
        let rows = readable;
        let mut done: Vec<i64> = Vec::with_capacity(read);
        let mut lags: Vec<f64> = Vec::with_capacity(read);
        let mut stopped = false;
        for (row, outcome) in self.publish_all(&rows).await {
            match outcome {
                Outcome::Published => {
                    done.push(row.id);
                    lags.push(now_ms() - row.created_ms);
                }
                Outcome::Refused(reason) => {
                    tracing::warn!(
                        id = row.id,
                        channel = %live_protocol::frame::excerpt(&row.channel),
                        "an outbox row was refused and moved to live_relay.rejected: {reason}"
                    );
                    refused.push((row.id, reason));
                }
                Outcome::Failed(reason) => {
                    tracing::warn!(
                        id = row.id,
                        "publishing an outbox row failed for now; it and the later rows of its \
                         channel wait: {reason}"
                    );
                    self.status.failed(
                        error::PUBLISH,
                        &format!("partition {}", self.partition),
                        format!("row {}: {reason}", row.id),
                    );
                    stopped = true;
                }
            }
        }
        if !refused.is_empty() {
            let (ids, reasons): (Vec<i64>, Vec<String>) = refused.iter().cloned().unzip();
            tx.query_typed(
                "insert into live_relay.rejected \
                   (id, event_id, channel, type, payload, meta, scopes, created_at, reason) \
                 select o.id, o.event_id, o.channel, o.type, o.payload, o.meta, o.scopes, \
                        o.created_at, r.reason \
                   from live_relay.outbox o \
                   join unnest($1::int8[], $2::text[]) as r(id, reason) on r.id = o.id",
                &[(&ids, Type::INT8_ARRAY), (&reasons, Type::TEXT_ARRAY)],
            )
            .await?;
            done.extend(ids);
        }
        if !done.is_empty() {
            tx.query_typed(
                "delete from live_relay.outbox where id = any($1)",
                &[(&done, Type::INT8_ARRAY)],
            )
            .await?;
            crate::test_hooks::stall_before_commit(done.len()).await;
        }
        tx.commit().await?;
        for lag in lags {
            self.status.published(lag);
        }
        for _ in &refused {
            self.status.rejected();
        }
        Ok(match last {
            _ if stopped => Drained::Stopped,
            Some(last) if read as i64 == BATCH => Drained::Full(last),
            _ => Drained::Empty,
        })
    }
}

impl Consumer {
    /// Publishes a batch: each channel's rows in id order, one after the other, the channels at
    /// once (a channel's order is all the protocol promises; a round trip to Redis per row would
    /// otherwise bound the rate). A channel stops at its first row that fails for now: the rows
    /// after it are not tried, so they wait, in order, for the next drain. The outcomes of the
    /// rows tried, in no particular order.
    async fn publish_all<'r>(&self, rows: &'r [OutboxRow]) -> Vec<(&'r OutboxRow, Outcome)> {
        let mut channels: Vec<Vec<&OutboxRow>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for row in rows {
            let i = *index.entry(row.channel.as_str()).or_insert_with(|| {
                channels.push(Vec::new());
                channels.len() - 1
            });
            channels[i].push(row);
        }
        let published = channels.into_iter().map(|rows| async move {
            let mut outcomes = Vec::with_capacity(rows.len());
            for row in rows {
                let outcome = row.publish(&self.state).await;
                let failed = matches!(outcome, Outcome::Failed(_));
                outcomes.push((row, outcome));
                if failed {
                    break;
                }
            }
            outcomes
        });
        futures_util::future::join_all(published)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The most rows the backlog metric counts (`live_relay_postgres_backlog_rows` stops there).
pub const BACKLOG_CAP: i64 = 100_000;

/// Reads the backlog (rows waiting, the oldest one's age) every second for the metrics.
pub async fn watch_backlog(target: Target, status: Arc<FeedStatus>) {
    let mut client: Option<Client> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let c = match &client {
            Some(c) if !c.is_closed() => c,
            _ => match target.connect_consumer().await {
                Ok(c) => client.insert(c),
                Err(e) => {
                    status.failed(error::BACKLOG, "backlog", e.to_string());
                    continue;
                }
            },
        };
        // Cheap whatever the backlog: counted up to BACKLOG_CAP, the oldest row found by the
        // primary key (ids grow with time), and a statement timeout.
        match c
            .query_typed(
                "select (select count(*) from (select from live_relay.outbox limit $1) s), \
                 coalesce((select extract(epoch from clock_timestamp() - created_at) * 1000 \
                   from live_relay.outbox order by id limit 1), 0)::float8",
                &[(&BACKLOG_CAP, Type::INT8)],
            )
            .await
        {
            Ok(rows) => {
                if let Some(row) = rows.first() {
                    status.backlog(row.get(0), row.get(1));
                    status.recovered("backlog");
                }
            }
            Err(e) => status.failed(error::BACKLOG, "backlog", describe(&e)),
        }
    }
}

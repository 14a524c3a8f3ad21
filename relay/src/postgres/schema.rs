//! The `live_relay` schema (`schema.sql`): installing it, checking its version, and the settings
//! of this relay that live in the database (the NOTIFY trigger on or off).

use super::error::FeedError;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// The schema's SQL, as `live-relay postgres install --print` prints it.
pub const SQL: &str = include_str!("schema.sql");

/// The version of the schema this relay installs and reads.
pub const VERSION: i32 = 1;

/// The class of the advisory locks the relay takes (ASCII `live`); the object is a partition
/// number, or [`INSTALL_LOCK`] while installing.
pub const LOCK_CLASS: i32 = 0x6c69_7665;
/// The advisory lock object that serializes installs of several relays starting at once.
const INSTALL_LOCK: i32 = -1;

/// Installs (or finds installed) version [`VERSION`] of the schema. Several relays may start at
/// once: the install holds an advisory lock. A schema at this version already is left as it is,
/// so a role without the right to create it works once a DBA has run [`SQL`].
pub async fn install(client: &mut Client) -> Result<(), FeedError> {
    let role = current_role(client).await;
    let tx = client.transaction().await?;
    // Typed unnamed statements throughout (`query_typed`): no named prepared statement, which
    // PgBouncer's transaction pooling would lose between two round trips.
    tx.query_typed(
        "select pg_advisory_xact_lock($1, $2)::text",
        &[(&LOCK_CLASS, Type::INT4), (&INSTALL_LOCK, Type::INT4)],
    )
    .await?;
    let installed = tx
        .query_typed("select to_regclass('live_relay.version') is not null", &[])
        .await?
        .first()
        .is_some_and(|row| row.get(0));
    let found: Option<i32> = if installed {
        tx.query_typed("select version from live_relay.version", &[])
            .await?
            .first()
            .map(|row| row.get(0))
    } else {
        None
    };
    match found {
        Some(version) if version == VERSION => return Ok(()),
        Some(version) if version > VERSION => {
            return Err(FeedError::NewerSchema {
                found: version,
                known: VERSION,
            })
        }
        _ => {}
    }
    if let Err(e) = tx.batch_execute(SQL).await {
        return Err(match e.code() {
            Some(&SqlState::INSUFFICIENT_PRIVILEGE) => FeedError::NoPrivilege {
                role,
                reason: super::error::describe(&e),
            },
            _ => FeedError::Sql(e),
        });
    }
    tx.commit().await?;
    Ok(())
}

async fn current_role(client: &Client) -> String {
    match client.query_typed("select current_user::text", &[]).await {
        Ok(rows) => rows
            .first()
            .map_or_else(|| "?".to_owned(), |row| row.get(0)),
        Err(_) => "?".to_owned(),
    }
}

/// Puts the database in line with this relay's NOTIFY setting (`--postgres-notify`; the setting
/// is the database's, so the relays of one database must agree), waiting at most 2 s for the
/// table's lock: `ALTER TABLE` queues every writer of a watched table behind it, so an open
/// transaction of the app must not hold the relay (and the app's writes) up. A role that may not
/// change it, or a lock not had in time, gets a warning: the feed works either way (polling finds
/// the rows).
pub async fn configure(client: &Client, notify: bool) -> Result<(), FeedError> {
    let enabled: Option<bool> = client
        .query_typed(
            "select tgenabled <> 'D' from pg_trigger \
             where tgrelid = 'live_relay.outbox'::regclass and tgname = 'live_relay_notify'",
            &[],
        )
        .await?
        .first()
        .map(|row| row.get(0));
    if enabled != Some(notify) {
        let sql = format!(
            "set lock_timeout = '2s'; alter table live_relay.outbox {} trigger live_relay_notify; \
             reset lock_timeout",
            if notify { "enable" } else { "disable" }
        );
        if let Err(e) = client.batch_execute(&sql).await {
            tracing::warn!(
                "could not turn the outbox's NOTIFY {} (--postgres-notify={notify}): {}; the relay \
                 polls every --postgres-poll-ms either way, and tries again at its next start",
                if notify { "on" } else { "off" },
                super::error::describe(&e)
            );
            client.batch_execute("reset lock_timeout").await?;
        }
    }
    Ok(())
}

/// The partition of an outbox row, in SQL: a hash of its channel, so that a channel's events
/// always go through one partition (and stay in order).
pub fn partition_expr(partitions: u16) -> String {
    format!("((hashtext(channel) & 2147483647) % {partitions})")
}

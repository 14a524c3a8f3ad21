-- The live_relay schema, version 1: the outbox the relay drains, the rows it set aside, and the
-- helpers an application calls. `live-relay postgres install --print` prints this file (for a DBA
-- or a migration tool); the relay applies it itself, in one transaction, when its role may.
-- Needs PostgreSQL 14 or later (CREATE OR REPLACE TRIGGER). See docs/POSTGRES.md.

create schema if not exists live_relay;

-- Which version of this schema is installed (one row). A later relay migrates from it.
create table if not exists live_relay.version (
  one boolean primary key default true check (one),
  version integer not null
);

-- One row per event to publish, written in the application's own transaction (by the triggers
-- of live_relay.watch, by live_relay.publish / live_relay.revalidate, or by a plain INSERT).
-- The relay publishes the rows in id order, with the idempotency key `pg:<event_id>`, and
-- deletes them in the transaction that read them.
create table if not exists live_relay.outbox (
  id         bigint generated always as identity primary key,
  event_id   uuid not null default gen_random_uuid(),
  channel    text not null,
  type       text not null,
  payload    jsonb,
  meta       jsonb,
  scopes     text[],
  created_at timestamptz not null default clock_timestamp()
);

-- Rows the relay would not publish (a bad channel, type, payload or scopes), moved here with the
-- reason, so that the rows after them flow on.
create table if not exists live_relay.rejected (
  id          bigint primary key,
  event_id    uuid not null,
  channel     text not null,
  type        text not null,
  payload     jsonb,
  meta        jsonb,
  scopes      text[],
  created_at  timestamptz not null,
  reason      text not null,
  rejected_at timestamptz not null default clock_timestamp()
);

-- Wakes the relays listening on `live_relay` once per transaction that wrote outbox rows (one
-- NOTIFY: identical notifications of a transaction are folded into one). The relay disables this
-- trigger with --postgres-notify=false and then finds new rows by polling.
create or replace function live_relay.notify() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('live_relay', '');
  return null;
end
$$;

create or replace trigger live_relay_notify
  after insert on live_relay.outbox
  for each statement execute function live_relay.notify();

-- Publishes an event when the transaction commits: channel, type, payload (an object; its `ids`
-- array says which records changed), meta (an object) and scopes (only connections holding one of
-- them get the event). Returns the outbox row's id.
create or replace function live_relay.publish(
  channel text, type text, payload jsonb default null, meta jsonb default null,
  scopes text[] default null
) returns bigint
  language sql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
  insert into live_relay.outbox (channel, type, payload, meta, scopes)
  values (channel, type, payload, meta, scopes)
  returning id
$$;

-- Tells the clients to revalidate these query keys (an array of arrays, as POST /revalidate
-- takes) when the transaction commits.
create or replace function live_relay.revalidate(keys jsonb, scopes text[] default null)
  returns bigint
  language sql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
  insert into live_relay.outbox (channel, type, payload, scopes)
  values ('$revalidate', 'revalidate', jsonb_build_object('keys', keys), scopes)
  returning id
$$;

-- The trigger function of watched tables: one outbox row per statement that changed at least one
-- row. Arguments: the event type (created, updated, deleted, truncated), the channel, the key
-- column, and `text` when the key is written as a JSON string (64-bit and numeric keys, which a
-- JSON number would round past 2^53). Over 1,000 changed keys the event carries no ids: every
-- subscription of the channel refetches.
create or replace function live_relay.changed() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  kind    text := tg_argv[0];
  channel text := tg_argv[1];
  key     text := tg_argv[2];
  as_text boolean := tg_argv[3] = 'text';
  ids     jsonb;
  id_expr text;
  rows_of text;
begin
  if kind = 'truncated' then
    insert into live_relay.outbox (channel, type, payload) values (channel, 'deleted', '{}');
    return null;
  end if;
  id_expr := case when as_text then format('to_jsonb(%I::text)', key) else format('to_jsonb(%I)', key) end;
  rows_of := case kind
    when 'created' then format('select %s as k from new_rows', id_expr)
    when 'deleted' then format('select %s as k from old_rows', id_expr)
    else format('select %1$s as k from old_rows union select %1$s as k from new_rows', id_expr)
  end;
  execute format('select jsonb_agg(k) from (select distinct k from (%s) c limit 1001) d', rows_of)
    into ids;
  if ids is null then
    return null; -- the statement changed no row
  end if;
  insert into live_relay.outbox (channel, type, payload)
  values (channel, kind,
          case when jsonb_array_length(ids) > 1000 then '{}'::jsonb
               else jsonb_build_object('ids', ids) end);
  return null;
end
$$;

-- Starts publishing the changes of a table: every INSERT, UPDATE, DELETE and TRUNCATE that
-- commits publishes one event on `resources/<resource>` (the table's name unless given) with the
-- ids of the rows it changed (the primary key, unless another column is given). Idempotent:
-- watching again replaces the triggers. Returns the channel.
create or replace function live_relay.watch(tbl regclass, resource text default null, key text default null)
  returns text
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  res      text := coalesce(resource, (select relname from pg_class where oid = tbl));
  channel  text;
  key_col  text := key;
  key_type regtype;
  as_text  text;
  n        integer;
begin
  if res is null or res = '' then
    raise exception 'live_relay.watch: the resource name is empty';
  end if;
  channel := 'resources/' || res;
  if key_col is null then
    select count(*) into n from pg_index i cross join unnest(i.indkey) k
      where i.indrelid = tbl and i.indisprimary;
    if n = 0 then
      raise exception 'live_relay.watch: % has no primary key: give the key column, as in live_relay.watch(''%'', key => ''id'')', tbl, tbl;
    elsif n > 1 then
      raise exception 'live_relay.watch: the primary key of % has % columns; events carry one id per row: give one unique column, as in live_relay.watch(''%'', key => ''id'')', tbl, n, tbl;
    end if;
    select a.attname, a.atttypid::regtype into key_col, key_type
      from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = tbl and i.indisprimary;
  else
    select a.atttypid::regtype into key_type from pg_attribute a
      where a.attrelid = tbl and a.attname = key_col and a.attnum > 0 and not a.attisdropped;
    if key_type is null then
      raise exception 'live_relay.watch: % has no column %', tbl, key_col;
    end if;
  end if;
  as_text := case when key_type in ('bigint'::regtype, 'numeric'::regtype) then 'text' else 'json' end;
  execute format('create or replace trigger live_relay_created after insert on %s referencing new table as new_rows for each statement execute function live_relay.changed(%L, %L, %L, %L)', tbl, 'created', channel, key_col, as_text);
  execute format('create or replace trigger live_relay_updated after update on %s referencing old table as old_rows new table as new_rows for each statement execute function live_relay.changed(%L, %L, %L, %L)', tbl, 'updated', channel, key_col, as_text);
  execute format('create or replace trigger live_relay_deleted after delete on %s referencing old table as old_rows for each statement execute function live_relay.changed(%L, %L, %L, %L)', tbl, 'deleted', channel, key_col, as_text);
  execute format('create or replace trigger live_relay_truncated after truncate on %s for each statement execute function live_relay.changed(%L, %L, %L, %L)', tbl, 'truncated', channel, key_col, as_text);
  return channel;
end
$$;

-- Stops publishing the changes of a table (drops the triggers live_relay.watch made).
create or replace function live_relay.unwatch(tbl regclass) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('drop trigger if exists live_relay_created on %s', tbl);
  execute format('drop trigger if exists live_relay_updated on %s', tbl);
  execute format('drop trigger if exists live_relay_deleted on %s', tbl);
  execute format('drop trigger if exists live_relay_truncated on %s', tbl);
end
$$;

-- Nothing here is anyone's but the owner's until granted: an application role that publishes by
-- hand needs `grant usage on schema live_relay` and execute on publish/revalidate (docs/POSTGRES.md).
-- (A watched table's writers need nothing: the trigger function runs as its owner.)
revoke all on function live_relay.publish(text, text, jsonb, jsonb, text[]) from public;
revoke all on function live_relay.revalidate(jsonb, text[]) from public;
revoke all on function live_relay.changed() from public;
revoke all on function live_relay.watch(regclass, text, text) from public;
revoke all on function live_relay.unwatch(regclass) from public;

insert into live_relay.version (version) values (1)
  on conflict (one) do update set version = excluded.version where live_relay.version.version < 1;

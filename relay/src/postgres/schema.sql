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
  created_at timestamptz not null default clock_timestamp(),
  -- A list of scopes, without NULLs (a row the relay could not read would block its partition).
  constraint outbox_scopes_are_a_list
    check (scopes is null or (array_ndims(scopes) = 1 and array_position(scopes, null) is null))
);

-- Rows the relay would not publish (a bad channel, type, payload or scopes), moved here with the
-- reason, so that the rows after them flow on.
create table if not exists live_relay.rejected (
  rejected_id bigint generated always as identity primary key,
  id          bigint not null,
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

-- The type of a key column as the triggers read it: `text` (64-bit and numeric keys, which a JSON
-- number would round past 2^53, as strings), `json` (the other built-in key types, as JSON), or
-- null for any other type (its events carry no ids). Only built-in types: the trigger function runs
-- as the schema's owner, and a user-defined type could bring a cast of its owner's choosing.
create or replace function live_relay.key_kind(tbl oid, attnum smallint) returns text
  language sql
  stable
  set search_path = pg_catalog, pg_temp
as $$
  select case
    when t.base in ('int8'::regtype, 'numeric'::regtype) then 'text'
    when t.base in ('int2'::regtype, 'int4'::regtype, 'text'::regtype, 'varchar'::regtype,
                    'bpchar'::regtype, 'uuid'::regtype, 'name'::regtype, 'oid'::regtype) then 'json'
  end
  from pg_attribute a
  cross join lateral (
    select coalesce(nullif(ty.typbasetype, 0), ty.oid)::regtype as base
    from pg_type ty where ty.oid = a.atttypid
  ) t
  where a.attrelid = tbl and a.attnum = key_kind.attnum and not a.attisdropped
$$;

-- The trigger function of watched tables: one outbox row per statement that changed at least one
-- row. Arguments: the event type (created, updated, deleted, truncated), the channel, and the key
-- column's number (so that renaming the column changes nothing). Its type is read again at every
-- statement (live_relay.key_kind): a key whose type is no longer a built-in one gives events without
-- ids, never an error in the writer's statement. Over 1,000 changed keys the event carries no ids:
-- every subscription of the channel refetches.
create or replace function live_relay.changed() returns trigger
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  kind    text := tg_argv[0];
  channel text := tg_argv[1];
  key_num smallint := tg_argv[2]::smallint;
  key     text;
  as_kind text;
  ids     jsonb;
  id_expr text;
  rows_of text;
  any_row boolean;
begin
  if kind = 'truncated' then
    insert into live_relay.outbox (channel, type, payload) values (channel, 'deleted', '{}');
    return null;
  end if;
  select a.attname into key from pg_attribute a
    where a.attrelid = tg_relid and a.attnum = key_num and not a.attisdropped;
  as_kind := live_relay.key_kind(tg_relid, key_num);
  if key is null or as_kind is null then
    -- The key column is gone or of another type now: no ids (everyone refetches).
    execute format('select exists (select from %s)',
                   case kind when 'created' then 'new_rows' else 'old_rows' end) into any_row;
    if any_row then
      insert into live_relay.outbox (channel, type, payload) values (channel, kind, '{}');
    end if;
    return null;
  end if;
  id_expr := case when as_kind = 'text' then format('to_jsonb(%I::text)', key)
                  else format('to_jsonb(%I)', key) end;
  -- Keys are unique in a statement's rows (a key, or a unique column): no DISTINCT, and at most
  -- 1,001 read whatever the statement's size.
  rows_of := case kind
    when 'created' then format('select %s as k from new_rows limit 1001', id_expr)
    when 'deleted' then format('select %s as k from old_rows limit 1001', id_expr)
    else format('(select %1$s as k from old_rows limit 1001) union (select %1$s as k from new_rows limit 1001)', id_expr)
  end;
  execute format('select jsonb_agg(k) from (%s) c', rows_of) into ids;
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
  key_num  smallint;
  n        integer;
  part     regclass;
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
    select i.indkey[0] into key_num from pg_index i where i.indrelid = tbl and i.indisprimary;
  else
    select a.attnum into key_num from pg_attribute a
      where a.attrelid = tbl and a.attname = key_col and a.attnum > 0 and not a.attisdropped;
    if key_num is null then
      raise exception 'live_relay.watch: % has no column %', tbl, key_col;
    end if;
  end if;
  if live_relay.key_kind(tbl, key_num) is null then
    raise exception 'live_relay.watch: the key of % is of type %; give a key column of a built-in type (integer, bigint, numeric, text, varchar, uuid)',
      tbl, (select format_type(atttypid, atttypmod) from pg_attribute where attrelid = tbl and attnum = key_num);
  end if;
  execute format('create or replace trigger live_relay_created after insert on %s referencing new table as new_rows for each statement execute function live_relay.changed(%L, %L, %L)', tbl, 'created', channel, key_num);
  execute format('create or replace trigger live_relay_updated after update on %s referencing old table as old_rows new table as new_rows for each statement execute function live_relay.changed(%L, %L, %L)', tbl, 'updated', channel, key_num);
  execute format('create or replace trigger live_relay_deleted after delete on %s referencing old table as old_rows for each statement execute function live_relay.changed(%L, %L, %L)', tbl, 'deleted', channel, key_num);
  execute format('create or replace trigger live_relay_truncated after truncate on %s for each statement execute function live_relay.changed(%L, %L, %L)', tbl, 'truncated', channel, key_num);
  -- A partitioned table: a statement aimed at one partition fires that partition's triggers only,
  -- so each partition gets them too, with the same channel (watch again after adding partitions).
  for part in select relid from pg_partition_tree(tbl) where relid <> tbl::oid loop
    perform live_relay.watch(part, res,
      (select attname from pg_attribute where attrelid = tbl and attnum = key_num));
  end loop;
  return channel;
end
$$;

-- Stops publishing the changes of a table (drops the triggers live_relay.watch made).
create or replace function live_relay.unwatch(tbl regclass) returns void
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
declare
  rel regclass;
begin
  for rel in select relid from pg_partition_tree(tbl) union select tbl loop
    execute format('drop trigger if exists live_relay_created on %s', rel);
    execute format('drop trigger if exists live_relay_updated on %s', rel);
    execute format('drop trigger if exists live_relay_deleted on %s', rel);
    execute format('drop trigger if exists live_relay_truncated on %s', rel);
  end loop;
end
$$;

-- Nothing here is anyone's but the owner's until granted: an application role that publishes by
-- hand needs `grant usage on schema live_relay` and execute on publish/revalidate (docs/POSTGRES.md).
-- (A watched table's writers need nothing: the trigger function runs as its owner.)
revoke all on function live_relay.publish(text, text, jsonb, jsonb, text[]) from public;
revoke all on function live_relay.revalidate(jsonb, text[]) from public;
revoke all on function live_relay.changed() from public;
revoke all on function live_relay.key_kind(oid, smallint) from public;
revoke all on function live_relay.watch(regclass, text, text) from public;
revoke all on function live_relay.unwatch(regclass) from public;

insert into live_relay.version (version) values (1)
  on conflict (one) do update set version = excluded.version where live_relay.version.version < 1;

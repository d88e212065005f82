-- A mailbox as the limits count it: case and a +tag ignored
-- (Ann+1@example.org and ann@example.org reach one inbox).
create or replace function pmt_jobs.recipient_key(recipient text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select pg_catalog.lower(pg_catalog.regexp_replace(recipient, '\+[^@]*@', '@'))
$$;

create or replace function pmt_jobs.export_limits_exempt() returns boolean
language sql stable set search_path = pg_catalog, pg_temp as $$
  select pg_catalog.pg_has_role(session_user, n.nspowner, 'USAGE')
  from pg_catalog.pg_namespace n where n.nspname = 'pmt_jobs'
$$;

-- A request over a rate limit: `what` and when the next is possible, an hour
-- after `oldest` (the lim-th newest request), rounded up to the minute.
create or replace function pmt_jobs.refuse_export(what text, oldest timestamptz, setting text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  next_at timestamptz := oldest + interval '1 hour';
begin
  raise exception using errcode = '22023',
    message = pg_catalog.format('%s; the next is possible after %s', what,
      pg_catalog.to_char(pg_catalog.date_trunc('minute', next_at + interval '59.999999 seconds') at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
    detail = pg_catalog.format('retry after %s', pg_catalog.to_char(next_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
    hint = pg_catalog.format('The limit is pmt_jobs.export_limits.%s.', setting);
end
$$;

-- Refuses a request over a limit (22023: rate; 53400: queue full). With
-- `reserve`, first takes the role's and the recipient's key rows (in that
-- order, the same for every caller of a role) until the transaction ends.
create or replace function pmt_jobs.check_export_limits(recipient text, reserve boolean) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  lim pmt_jobs.export_limits;
  who text := session_user;
  mailbox text := pmt_jobs.recipient_key(recipient);
  n bigint;
  oldest timestamptz;
begin
  if pmt_jobs.export_limits_exempt() then
    return;
  end if;
  select * into lim from pmt_jobs.export_limits;
  if not found then
    return; -- the row was deleted: no limits
  end if;
  if reserve then
    insert into pmt_jobs.export_limit_key as k (key, touched_at)
    values (pg_catalog.sha256(pg_catalog.convert_to('role:' || who, 'UTF8')), pg_catalog.now()),
           (pg_catalog.sha256(pg_catalog.convert_to('recipient:' || mailbox, 'UTF8')), pg_catalog.now())
    on conflict (key) do update set touched_at = excluded.touched_at;
  end if;
  if lim.per_role_per_hour > 0 then
    select pg_catalog.count(*), pg_catalog.min(r.requested_at) into n, oldest
    from (select e.requested_at from pmt_jobs.export_request e
          where e.requested_by = who and e.requested_at > pg_catalog.now() - interval '1 hour'
          order by e.requested_at desc limit lim.per_role_per_hour) r;
    if n >= lim.per_role_per_hour then
      perform pmt_jobs.refuse_export(pg_catalog.format('at most %s exports per hour may be requested by the role %s', lim.per_role_per_hour, who),
                                     oldest, 'per_role_per_hour (EXPORT_LIMIT_PER_ROLE)');
    end if;
  end if;
  if lim.per_recipient_per_hour > 0 then
    select pg_catalog.count(*), pg_catalog.min(r.requested_at) into n, oldest
    from (select e.requested_at from pmt_jobs.export_request e
          where pmt_jobs.recipient_key(e.recipient) = mailbox and e.requested_at > pg_catalog.now() - interval '1 hour'
          order by e.requested_at desc limit lim.per_recipient_per_hour) r;
    if n >= lim.per_recipient_per_hour then
      perform pmt_jobs.refuse_export(pg_catalog.format('at most %s exports per hour to %s', lim.per_recipient_per_hour, recipient),
                                     oldest, 'per_recipient_per_hour (EXPORT_LIMIT_PER_RECIPIENT)');
    end if;
  end if;
  if lim.max_queued > 0 then
    select pg_catalog.count(*) into n
    from (select 1 from pmt_jobs.export_request e where e.status not in ('sent', 'failed') limit lim.max_queued) q;
    if n >= lim.max_queued then
      raise exception using errcode = '53400',
        message = pg_catalog.format('the export queue is full: %s exports are waiting (at most %s); try again later', n, lim.max_queued),
        hint = 'The limit is pmt_jobs.export_limits.max_queued (EXPORT_QUEUE_MAX).';
    end if;
  end if;
end
$$;

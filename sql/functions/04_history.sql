-- Every change is stamped, so `watch` can re-read what it missed while disconnected.
create or replace function pmt_jobs.job_run_touch() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  new.updated_at := clock_timestamp();
  return new;
end
$$;

-- What PMT's application role may see of a failure: its kind and the export
-- request's id, never the text (a refused recipient's address, another
-- request's details, a path). The worker's role reads the full error in
-- pmt_jobs.job_run.
create or replace function pmt_jobs.error_class(error text) returns text
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select case when error is null then null else
    coalesce('export request ' || substring(error from 'export request ([0-9]+)') || ': ', '') ||
    case
      when error ~* 'delivery unconfirmed' then 'delivery unconfirmed'
      when error ~* 'refused it permanently' then 'mail refused'
      when error ~* 'deferred it' then 'mail deferred'
      when error ~* 'rejected the login' then 'mail server login rejected'
      when error ~* 'could not be reached' then 'mail server unreachable'
      when error ~* 'too large to mail' then 'too large to mail'
      when error ~* 'matched no activity' then 'no activity matched'
      when error ~* 'stopped before the attempt finished|was released before the attempt finished' then 'abandoned'
      when error ~* 'row-level security' then 'refused: row-level security on a PMT table'
      else 'failed'
    end
  end
$$;

comment on function pmt_jobs.error_class(text) is
  'A job error as PMT''s application role sees it: the kind of failure and the export request id, no text.';

-- NOTIFY pmt_jobs reaches every role that may connect (anyone can LISTEN):
-- the event carries ids, task, status, attempt and the error's class, never
-- its text (`pmt-worker watch` reads that from job_run by id, as the worker).
-- plpgsql, not SQL: a SQL function is parsed and planned again in every
-- statement that calls it (about 0.1 ms here, per NOTIFYing statement).
create or replace function pmt_jobs.job_run_event(r pmt_jobs.job_run, op text) returns json
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
begin
  return json_build_object(
    'op', op,
    'id', r.id,
    'job_id', r.job_id,
    'task', left(r.task, 200),
    'attempt', r.attempt,
    'max_attempts', r.max_attempts,
    'queue', left(r.queue, 200),
    'status', r.status,
    'started_at', r.started_at,
    'finished_at', r.finished_at,
    'duration_ms', round(extract(epoch from r.duration) * 1000),
    'error_class', case when r.error is null then null else pmt_jobs.error_class(r.error) end,
    'worker_id', left(r.worker_id, 200),
    'seq', (extract(epoch from r.updated_at) * 1000000)::bigint
  );
end
$$;

-- Sends job events on channel pmt_jobs in as few NOTIFYs as PostgreSQL's
-- 8000-byte payload limit allows: one event as a JSON object (as it always
-- was), several as a JSON array of them, in the order given.
create or replace function pmt_jobs.notify_events(events text[]) returns void
language plpgsql volatile set search_path = pg_catalog, pg_temp as $$
declare
  event text;
  chunk text;
  n integer := 0;
begin
  if events is null or cardinality(events) = 0 then
    return;
  end if;
  foreach event in array events loop
    -- The limit is in bytes: octet_length, not length (characters).
    if n > 0 and octet_length(chunk) + octet_length(event) > 7900 then
      perform pg_notify('pmt_jobs', case when n = 1 then chunk else '[' || chunk || ']' end);
      n := 0;
    end if;
    chunk := case when n = 0 then event else chunk || ',' || event end;
    n := n + 1;
  end loop;
  perform pg_notify('pmt_jobs', case when n = 1 then chunk else '[' || chunk || ']' end);
end
$$;

-- One call per statement writing job_run other than the capture's (which
-- sends its own events): triggers job_run_notify and job_run_notify_update,
-- migration 0016_history_statements.sql.
create or replace function pmt_jobs.job_run_notify() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  perform pmt_jobs.notify_events(
    (select array_agg(pmt_jobs.job_run_event(c::pmt_jobs.job_run, lower(tg_op))::text order by c.id) from changed c));
  return null;
end
$$;

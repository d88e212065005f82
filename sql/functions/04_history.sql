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
create or replace function pmt_jobs.job_run_event(r pmt_jobs.job_run, op text) returns json
language sql stable set search_path = pg_catalog, pg_temp as $$
  select json_build_object(
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
    'error_class', pmt_jobs.error_class(r.error),
    'worker_id', left(r.worker_id, 200),
    'seq', (extract(epoch from r.updated_at) * 1000000)::bigint
  )
$$;

create or replace function pmt_jobs.job_run_notify() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  perform pg_notify('pmt_jobs', pmt_jobs.job_run_event(new, lower(tg_op))::text);
  return null;
end
$$;

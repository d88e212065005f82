-- Issue 12, points 2 and 3.
--
-- Every function of ours runs with a fixed search_path (pg_catalog, pg_temp)
-- and names everything else by schema, so no object a user can create (an
-- `=` operator for varchar or a lower(varchar) planted in `public`, CVE-2018-
-- 1058's pattern) is ever resolved inside it, whatever the caller's
-- search_path. The bodies below were already fully qualified, so a SET clause
-- is enough (ALTER keeps them as they are; CREATE OR REPLACE would drop a SET
-- clause, hence the re-created functions here state theirs again).
alter function pmt_jobs.job_run_touch() set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.job_run_notify() set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.redact_json(jsonb, integer) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.summarize_payload(json) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.capture_job_attempt() set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.export_request_touch() set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.invalid(text, text) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.check_mailbox(text, text) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.parse_ids(text, text) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.check_filters(jsonb) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.enqueue_export(bigint) set search_path = pg_catalog, pg_temp;
alter function pmt_jobs.request_file_export(text, text, text, text) set search_path = pg_catalog, pg_temp;

-- The functions that read PMT's tables run with row_security off: a table
-- with a row-level security policy that applies to the worker's role makes
-- the export fail ("query would be affected by row-level security policy")
-- instead of running the policy's expression with the worker's privileges.
-- (The policy's author would be the table's owner, who should be the DBA:
-- `pmt-worker doctor` warns otherwise.)
alter function pmt_jobs.filter_activities(jsonb) set row_security = off;
alter function pmt_jobs.export_rows(jsonb, boolean) set row_security = off;
alter function pmt_jobs.describe_filters(jsonb) set row_security = off;
alter function pmt_jobs.check_known(text, integer[], text) set row_security = off;
alter function pmt_jobs.pmt_version() set row_security = off;

-- What PMT's application role may see of a failure: its kind and the export
-- request's id, never the text (a refused recipient's address, another
-- request's details, a path). The worker's role reads the full error in
-- pmt_jobs.job_run.
create function pmt_jobs.error_class(error text) returns text
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

-- job_status (granted to pmt_app): last_error in full for the worker's role
-- (whoever has the privileges of pmt_jobs' owner), its class for anyone else.
-- current_user in a view is the role querying it.
create or replace view pmt_jobs.job_status as
  with queue as (
    select task_identifier as task,
           count(*) filter (where attempts < max_attempts and locked_at is null) as queued,
           count(*) filter (where attempts >= max_attempts and locked_at is null) as failed_permanently,
           min(run_at) filter (where attempts < max_attempts and locked_at is null) as next_run_at
    from graphile_worker.jobs
    group by task_identifier
  ), runs as (
    select task,
           count(*) filter (where status = 'running') as running,
           max(finished_at) filter (where status = 'succeeded') as last_success_at,
           max(finished_at) filter (where status in ('failed', 'abandoned')) as last_failure_at,
           count(*) filter (where status = 'succeeded' and started_at > now() - interval '24 hours') as succeeded_24h,
           count(*) filter (where status in ('failed', 'abandoned') and started_at > now() - interval '24 hours') as failed_24h
    from pmt_jobs.job_run
    group by task
  ), reader as (
    select pg_has_role(current_user, n.nspowner, 'USAGE') as is_worker
    from pg_namespace n where n.nspname = 'pmt_jobs'
  )
  select coalesce(q.task, r.task) as task,
         coalesce(q.queued, 0) as queued,
         coalesce(r.running, 0) as running,
         coalesce(q.failed_permanently, 0) as failed_permanently,
         q.next_run_at,
         r.last_success_at,
         r.last_failure_at,
         (select case when (select is_worker from reader) then j.error else pmt_jobs.error_class(j.error) end
          from pmt_jobs.job_run j
          where j.task = coalesce(q.task, r.task) and j.status in ('failed', 'abandoned')
          order by j.started_at desc limit 1) as last_error,
         coalesce(r.succeeded_24h, 0) as succeeded_24h,
         coalesce(r.failed_24h, 0) as failed_24h
  from queue q
  full join runs r on r.task = q.task
  order by 1;

revoke execute on all functions in schema pmt_jobs from public;

-- The job history views. CREATE OR REPLACE VIEW keeps a view's columns: a
-- change that drops, renames or retypes one needs a numbered migration that
-- drops the view first (sql/functions/README.md).

-- Newest first, for psql: table pmt_jobs.job_history limit 20;
create or replace view pmt_jobs.job_history as
  select id, job_id, task, attempt, max_attempts, queue, status,
         started_at, finished_at, date_trunc('milliseconds', duration) as duration,
         error, worker_id, payload_summary
  from pmt_jobs.job_run
  order by started_at desc, id desc;

-- One row per task: what is queued (graphile_worker.jobs), what runs, what
-- failed for good, and when it last succeeded or failed.
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

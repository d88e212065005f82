-- Job history: graphile-worker deletes a job when it succeeds, so the record of
-- what ran lives here, one row per attempt: inserted (`running`) when the job
-- is locked for the attempt, before the task body runs, and updated when it
-- ends (0002_history_capture.sql and the worker's history wrapper).

create schema if not exists pmt_jobs;

create table pmt_jobs.job_run (
  id              bigint generated always as identity primary key,
  job_id          bigint not null,
  task            text not null,
  attempt         integer not null check (attempt >= 1),
  max_attempts    integer not null check (max_attempts >= 1),
  queue           text,
  status          text not null default 'running'
                  check (status in ('running', 'succeeded', 'failed', 'abandoned')),
  started_at      timestamptz not null default now(),
  finished_at     timestamptz,
  duration        interval generated always as (finished_at - started_at) stored,
  error           text,
  worker_id       text not null,
  payload_summary jsonb not null default '{}'::jsonb,
  updated_at      timestamptz not null default clock_timestamp(),
  check ((status = 'running') = (finished_at is null))
);

comment on table pmt_jobs.job_run is
  'One row per job attempt. status: running, succeeded, failed (will retry unless attempt = max_attempts), abandoned (the worker died or lost its lock).';
comment on column pmt_jobs.job_run.payload_summary is
  'The job payload with secrets removed and long values cut.';
comment on column pmt_jobs.job_run.worker_id is
  'graphile-worker pool id that held the job lock; see pmt_jobs.worker.';

create index job_run_started_at_idx on pmt_jobs.job_run (started_at desc, id desc);
create index job_run_task_started_at_idx on pmt_jobs.job_run (task, started_at desc);
create index job_run_job_id_idx on pmt_jobs.job_run (job_id, attempt);
create index job_run_updated_at_idx on pmt_jobs.job_run (updated_at);
create index job_run_running_idx on pmt_jobs.job_run (worker_id) where status = 'running';

-- Every change is stamped, so `watch` can re-read what it missed while disconnected.
create function pmt_jobs.job_run_touch() returns trigger
language plpgsql as $$
begin
  new.updated_at := clock_timestamp();
  return new;
end
$$;

create trigger job_run_touch before insert or update on pmt_jobs.job_run
  for each row execute function pmt_jobs.job_run_touch();

-- A job_run row as the event `watch` prints and NOTIFY carries. No job
-- payload and at most 1000 characters of error, so it stays far below
-- PostgreSQL's 8000-byte NOTIFY limit. `seq` (updated_at in microseconds)
-- lets a client re-read what it missed.
create function pmt_jobs.job_run_event(r pmt_jobs.job_run, op text) returns json
language sql stable as $$
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
    'error', left(r.error, 1000),
    'worker_id', left(r.worker_id, 200),
    'seq', (extract(epoch from r.updated_at) * 1000000)::bigint
  )
$$;

create function pmt_jobs.job_run_notify() returns trigger
language plpgsql as $$
begin
  perform pg_notify('pmt_jobs', pmt_jobs.job_run_event(new, lower(tg_op))::text);
  return null;
end
$$;

create trigger job_run_notify after insert or update on pmt_jobs.job_run
  for each row execute function pmt_jobs.job_run_notify();

-- Live worker processes. Each heartbeats its row; a row older than
-- WORKER_DEAD_AFTER_SECONDS belongs to a dead process whose locked jobs are
-- released (graphile_worker.force_unlock_workers) and whose running history
-- rows become abandoned.
create table pmt_jobs.worker (
  id            text primary key,
  hostname      text not null,
  pid           integer not null,
  version       text not null,
  concurrency   integer not null,
  tasks         text[] not null,
  started_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now()
);

comment on table pmt_jobs.worker is 'Running pmt-worker processes and their last heartbeat.';

-- Newest first, for psql: table pmt_jobs.job_history limit 20;
create view pmt_jobs.job_history as
  select id, job_id, task, attempt, max_attempts, queue, status,
         started_at, finished_at, date_trunc('milliseconds', duration) as duration,
         error, worker_id, payload_summary
  from pmt_jobs.job_run
  order by started_at desc, id desc;

-- One row per task: what is queued (graphile_worker.jobs), what runs, what
-- failed for good, and when it last succeeded or failed.
create view pmt_jobs.job_status as
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
  )
  select coalesce(q.task, r.task) as task,
         coalesce(q.queued, 0) as queued,
         coalesce(r.running, 0) as running,
         coalesce(q.failed_permanently, 0) as failed_permanently,
         q.next_run_at,
         r.last_success_at,
         r.last_failure_at,
         (select j.error from pmt_jobs.job_run j
           where j.task = coalesce(q.task, r.task) and j.status in ('failed', 'abandoned')
           order by j.started_at desc limit 1) as last_error,
         coalesce(r.succeeded_24h, 0) as succeeded_24h,
         coalesce(r.failed_24h, 0) as failed_24h
  from queue q
  full join runs r on r.task = q.task
  order by 1;

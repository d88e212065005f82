-- Everyday questions about pmt-worker's jobs, for psql:
--   psql "$DATABASE_URL" -f sql/job_queries.sql
-- or copy the one you need.

-- Per task: queued, running, failed for good, last success and failure.
table pmt_jobs.job_status;

-- The last 20 attempts, newest first.
select id, job_id, task, attempt || '/' || max_attempts as attempt, status,
       started_at, duration, left(error, 80) as error
from pmt_jobs.job_history
limit 20;

-- What is running now, and on which worker process.
select r.job_id, r.task, r.attempt, now() - r.started_at as running_for, w.hostname, w.pid
from pmt_jobs.job_run r
left join pmt_jobs.worker w on w.id = r.worker_id
where r.status = 'running'
order by r.started_at;

-- Failures and abandoned attempts of the last 24 hours.
select started_at, task, job_id, attempt, status, error
from pmt_jobs.job_history
where status in ('failed', 'abandoned') and started_at > now() - interval '24 hours';

-- Jobs that used up their attempts (graphile-worker keeps them): give one another
-- attempt, now, as `pmt-worker jobs retry <id>` and the console's Retry do, with
--   select graphile_worker.reschedule_jobs(array[<id>]::bigint[], run_at := now(),
--     max_attempts := (select attempts + 1 from graphile_worker.jobs where id = <id>));
select id, task_identifier, attempts, max_attempts, last_error
from graphile_worker.jobs
where attempts >= max_attempts;

-- Live worker processes and their heartbeat.
select id, hostname, pid, version, concurrency, started_at, now() - last_seen_at as since_heartbeat
from pmt_jobs.worker;

-- Capture of job attempts from graphile-worker's own statements (trigger
-- pmt_jobs_capture_attempt on graphile_worker._private_jobs, migrations
-- 0002_history_capture.sql, which explains the design, and
-- 0016_history_statements.sql: one call per statement, not per row).
--
-- The `running` row of an attempt is inserted by the statement that locks the
-- job for it (get_job: attempts + 1, locked_by, locked_at); the statement
-- that deletes a finished job (complete_job) marks it `succeeded`; any other
-- release of a lock while the attempt is `running` marks it `abandoned`, with
-- the reason from the setting pmt_jobs.release_reason when the releasing
-- transaction set one. Failures are recorded by the worker's history wrapper.
-- Each statement here writes the rows of all the jobs graphile-worker's
-- statement touched and sends their events (job_run's own NOTIFY trigger
-- skips writes made by a trigger).
create or replace function pmt_jobs.capture_job_attempt() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  events text[];
  more text[];
begin
  if tg_op = 'DELETE' then
    -- complete_job(s): the attempts that held the locks succeeded.
    with done as (
      update pmt_jobs.job_run r
      set status = 'succeeded', finished_at = now(), updated_at = clock_timestamp()
      from old_jobs o
      where o.locked_at is not null and r.job_id = o.id and r.attempt = o.attempts and r.status = 'running'
      returning r.*)
    select array_agg(pmt_jobs.job_run_event(d::pmt_jobs.job_run, 'update')::text order by d.id) into events from done d;
    perform pmt_jobs.notify_events(events);
    return null;
  end if;
  -- get_job(s): new attempts start. An earlier attempt still `running` lost its worker.
  if exists (select from new_jobs n join old_jobs o on o.id = n.id
             where n.locked_at is not null and n.attempts > o.attempts and n.attempts > 1) then
    with lost as (
      update pmt_jobs.job_run r
      set status = 'abandoned', finished_at = now(), updated_at = clock_timestamp(),
          error = coalesce(r.error, 'worker ' || r.worker_id || ' stopped before the attempt finished; retried as attempt ' || n.attempts)
      from new_jobs n join old_jobs o on o.id = n.id
      where n.locked_at is not null and n.attempts > o.attempts and n.attempts > 1
        and r.job_id = n.id and r.status = 'running' and r.attempt < n.attempts
      returning r.*)
    select array_agg(pmt_jobs.job_run_event(d::pmt_jobs.job_run, 'update')::text order by d.id) into events from lost d;
  end if;
  if exists (select from new_jobs n join old_jobs o on o.id = n.id where n.locked_at is not null and n.attempts > o.attempts) then
    with started as (
      insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, queue, worker_id, payload_summary)
      select n.id, t.identifier, n.attempts, n.max_attempts, q.queue_name, coalesce(n.locked_by, 'unknown'),
             -- An empty payload (cron tasks, maintenance) needs no redaction.
             case when n.payload::text = '{}' then '{}'::jsonb else pmt_jobs.summarize_payload(n.payload) end
      from new_jobs n
      join old_jobs o on o.id = n.id
      join graphile_worker._private_tasks t on t.id = n.task_id
      left join graphile_worker._private_job_queues q on q.id = n.job_queue_id
      where n.locked_at is not null and n.attempts > o.attempts
      order by n.id
      returning *)
    select array_agg(pmt_jobs.job_run_event(d::pmt_jobs.job_run, 'insert')::text order by d.id) into more from started d;
    events := events || more;
  end if;
  -- A lock went without the wrapper recording an end: the attempt was abandoned.
  if exists (select from old_jobs o join new_jobs n on n.id = o.id where o.locked_at is not null and n.locked_at is null) then
    with released as (
      update pmt_jobs.job_run r
      set status = 'abandoned', finished_at = now(), updated_at = clock_timestamp(),
          error = coalesce(nullif(current_setting('pmt_jobs.release_reason', true), ''),
                           'the job lock of worker ' || coalesce(o.locked_by, '?') || ' was released before the attempt finished')
      from old_jobs o join new_jobs n on n.id = o.id
      where o.locked_at is not null and n.locked_at is null
        and r.job_id = o.id and r.attempt = o.attempts and r.status = 'running'
      returning r.*)
    select array_agg(pmt_jobs.job_run_event(d::pmt_jobs.job_run, 'update')::text order by d.id) into more from released d;
    events := events || more;
  end if;
  perform pmt_jobs.notify_events(events);
  return null;
end
$$;

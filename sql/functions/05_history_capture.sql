-- Capture of job attempts from graphile-worker's own statements (trigger
-- pmt_jobs_capture_attempt on graphile_worker._private_jobs, migration
-- 0002_history_capture.sql, which explains the design).
--
-- The `running` row of an attempt is inserted by the statement that locks the
-- job for it (get_job: attempts + 1, locked_by, locked_at); the statement
-- that deletes a finished job (complete_job) marks it `succeeded`; any other
-- release of a lock while the attempt is `running` marks it `abandoned`, with
-- the reason from the setting pmt_jobs.release_reason when the releasing
-- transaction set one. Failures are recorded by the worker's history wrapper.
create or replace function pmt_jobs.capture_job_attempt() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if tg_op = 'DELETE' then
    -- complete_job: the attempt that held the lock succeeded.
    if old.locked_at is not null then
      update pmt_jobs.job_run set status = 'succeeded', finished_at = now()
      where job_id = old.id and attempt = old.attempts and status = 'running';
    end if;
  elsif new.locked_at is not null and new.attempts > old.attempts then
    -- get_job: a new attempt starts. An earlier attempt still `running` lost its worker.
    if new.attempts > 1 then
      update pmt_jobs.job_run
      set status = 'abandoned', finished_at = now(),
          error = coalesce(error, 'worker ' || worker_id || ' stopped before the attempt finished; retried as attempt ' || new.attempts)
      where job_id = new.id and status = 'running' and attempt < new.attempts;
    end if;
    insert into pmt_jobs.job_run (job_id, task, attempt, max_attempts, queue, worker_id, payload_summary)
    values (
      new.id,
      (select identifier from graphile_worker._private_tasks where id = new.task_id),
      new.attempts,
      new.max_attempts,
      (select queue_name from graphile_worker._private_job_queues where id = new.job_queue_id),
      coalesce(new.locked_by, 'unknown'),
      pmt_jobs.summarize_payload(new.payload));
  elsif old.locked_at is not null and new.locked_at is null then
    -- The lock went without the wrapper recording an end: the attempt was abandoned.
    update pmt_jobs.job_run
    set status = 'abandoned', finished_at = now(),
        error = coalesce(nullif(current_setting('pmt_jobs.release_reason', true), ''),
                         'the job lock of worker ' || coalesce(old.locked_by, '?') || ' was released before the attempt finished')
    where job_id = old.id and attempt = old.attempts and status = 'running';
  end if;
  return null;
end
$$;

-- Capture of job attempts from graphile-worker's own statements.
--
-- The `running` row of an attempt is inserted by the statement that locks the
-- job for it (get_job: attempts + 1, locked_by, locked_at), so it exists before
-- the task body runs; the statement that deletes a finished job (complete_job)
-- marks it `succeeded`. No extra round trip or commit per job: measured on a
-- 2-core machine, writing the same rows from the worker cost two thirds of a
-- no-op job's throughput.
--
-- Failures are recorded by the worker's history wrapper before it hands the
-- error to graphile-worker. Any other release of a lock while the attempt is
-- still `running` (force_unlock_workers for a dead worker, the 4-hour lock
-- expiry) marks it `abandoned`, with the reason from the setting
-- pmt_jobs.release_reason when the releasing transaction set one.

-- The job payload as history keeps it: secrets removed (keys that look like
-- passwords, tokens, keys; passwords inside URLs and key=value strings),
-- strings cut to 200 characters, arrays to 20 items, depth to 4.
-- plpgsql, not SQL: a SQL function called from a trigger is planned anew on
-- every call (about 0.8 ms here), a plpgsql one once per session.
create function pmt_jobs.redact_json(v jsonb, depth integer) returns jsonb
language plpgsql immutable parallel safe as $$
declare
  s text;
  n integer;
begin
  case jsonb_typeof(v)
    when 'object' then
      if depth >= 4 then return '"{…}"'::jsonb; end if;
      return coalesce((
        select jsonb_object_agg(key,
          case when key ~* 'pass(word)?|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth|cookie|session'
               then '"***"'::jsonb
               else pmt_jobs.redact_json(value, depth + 1) end)
        from jsonb_each(v)), '{}'::jsonb);
    when 'array' then
      n := jsonb_array_length(v);
      if depth >= 4 then return to_jsonb('[array of ' || n || ']'); end if;
      return coalesce((
          select jsonb_agg(pmt_jobs.redact_json(e, depth + 1) order by i)
          from jsonb_array_elements(v) with ordinality as a(e, i)
          where i <= 20), '[]'::jsonb)
        || case when n > 20 then jsonb_build_array('… (+' || (n - 20) || ' more)') else '[]'::jsonb end;
    when 'string' then
      s := regexp_replace(
             regexp_replace(v #>> '{}', '([a-z][a-z0-9+.-]*://[^:/?#@[:space:]]*):([^@/?#[:space:]]*)@', '\1:***@', 'gi'),
             '(password|passwd|pwd)=([^[:space:]&;]+)', '\1=***', 'gi');
      if length(s) > 200 then s := left(s, 200) || '… (' || length(s) || ' chars)'; end if;
      return to_jsonb(s);
    else
      return v;
  end case;
end
$$;

-- A payload summary is an object of at most 4000 characters of JSON.
create function pmt_jobs.summarize_payload(payload json) returns jsonb
language plpgsql immutable parallel safe as $$
declare
  summary jsonb := pmt_jobs.redact_json(coalesce(payload::jsonb, 'null'::jsonb), 0);
begin
  if jsonb_typeof(summary) <> 'object' then
    summary := jsonb_build_object('value', summary);
  end if;
  if length(summary::text) <= 4000 then
    return summary;
  end if;
  return jsonb_build_object(
    'truncated', true,
    'bytes', length(summary::text),
    'keys', (select jsonb_agg(k) from (select k from jsonb_object_keys(summary) as k limit 50) as keys));
end
$$;

create function pmt_jobs.capture_job_attempt() returns trigger
language plpgsql as $$
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

create trigger pmt_jobs_capture_attempt
  after update of locked_at or delete on graphile_worker._private_jobs
  for each row execute function pmt_jobs.capture_job_attempt();

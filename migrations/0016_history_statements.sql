-- Issue 14: the job history at a small fraction of a no-op job's cost.
--
-- The history was written by row-level triggers: per attempt the capture
-- trigger on graphile-worker's jobs, then on pmt_jobs.job_run a BEFORE row
-- trigger stamping updated_at and an AFTER row trigger sending one NOTIFY,
-- each a function call with its own search_path (about ten calls per
-- attempt; measured: two thirds of a no-op job's throughput).
--
-- Now every trigger here is statement-level with transition tables: one call
-- per statement of graphile-worker (a fetch or a completion of any number of
-- jobs) writes all their rows in one statement and sends their events, one
-- NOTIFY for up to about 7900 bytes of them (a JSON object for one event, an
-- array for several). The capture stamps updated_at and notifies itself; the
-- triggers on job_run that do it stay for every other writer (the worker's
-- failure records, a DBA's UPDATE), skipped when a trigger is the writer
-- (pg_trigger_depth() > 0).
--
-- The function bodies are in sql/functions/04_history.sql and
-- 05_history_capture.sql; they replace the row-level ones right after this
-- migration, in the same transaction.

drop trigger pmt_jobs_capture_attempt on graphile_worker._private_jobs;
-- (A trigger with transition tables has one event: two triggers, one function.)
create trigger pmt_jobs_capture_attempt
  after update on graphile_worker._private_jobs
  referencing old table as old_jobs new table as new_jobs
  for each statement execute function pmt_jobs.capture_job_attempt();
create trigger pmt_jobs_capture_completion
  after delete on graphile_worker._private_jobs
  referencing old table as old_jobs
  for each statement execute function pmt_jobs.capture_job_attempt();

drop trigger job_run_touch on pmt_jobs.job_run;
create trigger job_run_touch before update on pmt_jobs.job_run
  for each row when (pg_trigger_depth() = 0) execute function pmt_jobs.job_run_touch();

drop trigger job_run_notify on pmt_jobs.job_run;
create trigger job_run_notify after insert on pmt_jobs.job_run
  referencing new table as changed
  for each statement when (pg_trigger_depth() = 0) execute function pmt_jobs.job_run_notify();
create trigger job_run_notify_update after update on pmt_jobs.job_run
  referencing new table as changed
  for each statement when (pg_trigger_depth() = 0) execute function pmt_jobs.job_run_notify();

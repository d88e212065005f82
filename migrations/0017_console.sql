-- The web console's Jobs page filters the history by status and task, newest
-- first, 50 rows a page (src/console/jobs-query.ts). The indexes there serve a
-- task, or a common status, at once; a rare status (or a task that never had
-- it: failed backups) was found by reading through every row of the task or of
-- the whole history (0.4 s and more with a million rows).
--
-- Failures are the rare statuses people filter on. This index holds only them,
-- so the history's hot path (an attempt's row inserted `running`, updated
-- `succeeded`: issue 14's throughput) never writes to it; `running` rows are
-- found through job_run_running_idx, `succeeded` ones are most rows. Built in
-- the migration's transaction: writes to job_run wait for it, once.
create index job_run_failures_idx on pmt_jobs.job_run (task, started_at desc, id desc)
  where status in ('failed', 'abandoned');

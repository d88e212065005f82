-- The web console's Jobs page filters the history by status and task, newest
-- first, 50 rows a page (src/console/jobs-query.ts). The indexes there were
-- serve a task, or a status that is common, at once; a status that is rare
-- (or a task that never had it: failed backups) was found by reading through
-- every row of the task or of the whole history (0.4 s and more with a
-- million rows). With this index a status, with or without its task, is a
-- range read in page order. Built in the migration's transaction: writes to
-- job_run wait for it (seconds with a million rows), once.
create index job_run_status_task_started_at_idx on pmt_jobs.job_run (status, task, started_at desc, id desc);

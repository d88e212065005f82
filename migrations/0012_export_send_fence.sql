-- Exactly one mail per export request, fenced against a stale worker.
--
-- A worker frozen past WORKER_DEAD_AFTER_SECONDS (a VM pause, a GC stall, a
-- network partition) has its job released and retried; when it resumes it must
-- not send the export as well. The send is claimed in one transaction that
-- holds the attempt's graphile-worker job row (FOR SHARE) and checks that the
-- lock is still this attempt's (locked_by, attempts) and its history row still
-- `running`; the claim sets send_started_at and send_run_id together, and only
-- when no attempt began sending before. From the claim on, a retry finds the
-- SMTP transaction begun and records "delivery unconfirmed" instead of sending.
-- The worker's queries are in src/exports/requests.ts.

alter table pmt_jobs.export_request add column send_run_id bigint;

comment on column pmt_jobs.export_request.send_run_id is
  'The job attempt (pmt_jobs.job_run.id) that claimed the send: set with send_started_at while that attempt held its job lock. Only it records the SMTP outcome or gives the claim back (a failure before the final dot).';
comment on column pmt_jobs.export_request.send_started_at is
  'Set when an attempt holding its job lock claims the send, just before the SMTP transaction; a retry that finds it set and no sent_at cannot tell whether the mail went out, and does not send a second copy.';

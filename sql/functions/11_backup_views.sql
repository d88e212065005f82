-- The backup views. Replaced from the top down (backup_status reads
-- backup_status_offsite, which reads backup_offsite_done): a reader locks a
-- view before the views it reads, so replacing them in the same order never
-- deadlocks with one.

-- One row per database: last successful backup and its age, counts per tier,
-- failures in the last 7 days, and how the offsite copies keep up.
create or replace view pmt_jobs.backup_status as
  select b.database,
         max(b.finished_at) filter (where b.status = 'succeeded' and b.finished_at <= now()) as last_success_at,
         date_trunc('second', now() - max(b.finished_at) filter (where b.status = 'succeeded' and b.finished_at <= now())) as last_success_age,
         (select x.bytes from pmt_jobs.backup x where x.database = b.database and x.status = 'succeeded' and x.finished_at <= now()
          order by x.finished_at desc limit 1) as last_success_bytes,
         count(*) filter (where b.status = 'succeeded') as kept,
         count(*) filter (where b.status = 'succeeded' and 'daily' = any(b.tiers)) as daily,
         count(*) filter (where b.status = 'succeeded' and 'weekly' = any(b.tiers)) as weekly,
         count(*) filter (where b.status = 'succeeded' and 'monthly' = any(b.tiers)) as monthly,
         count(*) filter (where b.status = 'failed' and b.started_at > now() - interval '7 days') as failed_7d,
         (select x.error from pmt_jobs.backup x where x.database = b.database and x.status in ('failed', 'corrupt')
          order by x.started_at desc limit 1) as last_error,
         bool_or(b.status = 'running') as running,
         (select o.offsite_copies from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_copies,
         (select o.offsite_last_verified_at from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_last_verified_at,
         (select o.offsite_lag from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_lag,
         count(*) filter (where b.status = 'corrupt') as corrupt,
         count(*) filter (where b.started_at > now() or b.finished_at > now()) as future_dated
  from pmt_jobs.backup b
  group by b.database
  order by b.database;

comment on view pmt_jobs.backup_status is
  'One row per database: the last successful backup (rows dated in the future ignored) and its age, counts per tier, failures in 7 days, corrupt backups, rows dated in the future, and the offsite copies (offsite_lag: the oldest successful backup whose copy is not done, see backup_offsite_done).';

-- How the offsite copies keep up, per database. Ages never count rows dated
-- in the future (a clock that was ahead) and are never negative.
create or replace view pmt_jobs.backup_status_offsite as
  select b.database,
         count(*) filter (where c.status = 'verified') as offsite_copies,
         max(c.verified_at) as offsite_last_verified_at,
         -- how long the oldest successful backup has been waiting for its copy
         (select date_trunc('second', greatest(now() - x.finished_at, interval '0')) from pmt_jobs.backup x
          where x.database = b.database and x.status = 'succeeded'
            and not exists (select 1 from pmt_jobs.backup_offsite_done d where d.backup_id = x.id)
          order by x.finished_at asc limit 1) as offsite_lag
  from pmt_jobs.backup b
  left join pmt_jobs.backup_copy c on c.backup_id = b.id
  group by b.database;

-- The one definition of "this backup's offsite copy is done": a copy is
-- proven (verified) or remote retention deleted it on purpose. Local
-- retention (offsite/copies.ts offsiteDoneNow), offsite sync, the offsite lag
-- metric and backup_status use it; test/offsite/done.test.ts holds them to it.
create or replace view pmt_jobs.backup_offsite_done as
  select c.backup_id, c.target
  from pmt_jobs.backup_copy c
  where c.status in ('verified', 'pruned');

comment on view pmt_jobs.backup_offsite_done is
  'Backups whose offsite copy is done, per store: proven (verified) or pruned by remote retention. Local retention holds any other succeeded backup while an offsite store is configured.';

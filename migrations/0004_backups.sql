-- Backups: the catalog of pg_dump runs and of their offsite copies, and the
-- view DBAs read from psql.

create table pmt_jobs.backup (
  id              bigint generated always as identity primary key,
  database        text not null,
  file            text,
  format          text not null check (format in ('custom', 'tar', 'directory')),
  status          text not null default 'running'
                  check (status in ('running', 'succeeded', 'failed', 'pruned')),
  tiers           text[] not null default '{}',
  bytes           bigint,
  sha256          text,
  server_version  text,
  pg_dump_version text,
  table_counts    jsonb,
  started_at      timestamptz not null default now(),
  finished_at     timestamptz,
  duration        interval generated always as (finished_at - started_at) stored,
  error           text,
  local_path      text,
  pruned_at       timestamptz,
  verified_at     timestamptz,
  restore_tested_at timestamptz,
  restore_test_ok boolean,
  restore_test_duration interval,
  restore_test_error text,
  job_id          bigint,
  final           boolean not null default false
);

comment on column pmt_jobs.backup.final is
  'The last backup of a retired database: never pruned, locally or offsite.';

comment on table pmt_jobs.backup is
  'One row per pg_dump run. status: running, succeeded (verified with pg_restore --list), failed, pruned (retention deleted the file).';
comment on column pmt_jobs.backup.table_counts is
  'Exact row count of every table, taken in the snapshot pg_dump dumped: what a test restore must find.';

create index backup_database_started_idx on pmt_jobs.backup (database, started_at desc);
create index backup_status_idx on pmt_jobs.backup (status) where status in ('running', 'succeeded');

-- Offsite copies of backups: where each copy is, whether it was verified by
-- reading it back, and what remote retention pruned.

create table pmt_jobs.backup_copy (
  id           bigint generated always as identity primary key,
  backup_id    bigint not null references pmt_jobs.backup on delete cascade,
  target       text not null,
  key          text not null,
  bytes        bigint,
  sha256       text,
  status       text not null default 'uploading'
               check (status in ('uploading', 'verified', 'failed', 'pruned')),
  uploaded_at  timestamptz,
  verified_at  timestamptz,
  pruned_at    timestamptz,
  error        text,
  unique (backup_id, target)
);

comment on table pmt_jobs.backup_copy is
  'Offsite copies: target is the store (s3://bucket/prefix or file:///dir, no credentials), key the object. verified = size and sha256 read back.';

create view pmt_jobs.backup_status_offsite as
  select b.database,
         count(*) filter (where c.status = 'verified') as offsite_copies,
         max(c.verified_at) as offsite_last_verified_at,
         -- how long the newest successful backup has been waiting for its copy
         (select date_trunc('second', now() - x.finished_at) from pmt_jobs.backup x
          where x.database = b.database and x.status = 'succeeded'
            and not exists (select 1 from pmt_jobs.backup_copy y where y.backup_id = x.id and y.status = 'verified')
          order by x.finished_at asc limit 1) as offsite_lag
  from pmt_jobs.backup b
  left join pmt_jobs.backup_copy c on c.backup_id = b.id
  group by b.database;

-- One row per database: last successful backup and its age, counts per tier,
-- failures in the last 7 days, and how the offsite copies keep up.
create view pmt_jobs.backup_status as
  select b.database,
         max(b.finished_at) filter (where b.status = 'succeeded') as last_success_at,
         date_trunc('second', now() - max(b.finished_at) filter (where b.status = 'succeeded')) as last_success_age,
         (select x.bytes from pmt_jobs.backup x where x.database = b.database and x.status = 'succeeded'
          order by x.finished_at desc limit 1) as last_success_bytes,
         count(*) filter (where b.status = 'succeeded') as kept,
         count(*) filter (where b.status = 'succeeded' and 'daily' = any(b.tiers)) as daily,
         count(*) filter (where b.status = 'succeeded' and 'weekly' = any(b.tiers)) as weekly,
         count(*) filter (where b.status = 'succeeded' and 'monthly' = any(b.tiers)) as monthly,
         count(*) filter (where b.status = 'failed' and b.started_at > now() - interval '7 days') as failed_7d,
         (select x.error from pmt_jobs.backup x where x.database = b.database and x.status = 'failed'
          order by x.started_at desc limit 1) as last_error,
         bool_or(b.status = 'running') as running,
         (select o.offsite_copies from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_copies,
         (select o.offsite_last_verified_at from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_last_verified_at,
         (select o.offsite_lag from pmt_jobs.backup_status_offsite o where o.database = b.database) as offsite_lag
  from pmt_jobs.backup b
  group by b.database
  order by b.database;

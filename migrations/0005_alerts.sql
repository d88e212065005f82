-- Alerts to the operator: one row per condition, so a condition is mailed at
-- most once per ALERT_REPEAT_HOURS however often it is seen.
create table pmt_jobs.alert (
  condition     text primary key,
  subject       text not null,
  first_seen_at timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  last_sent_at  timestamptz,
  times_seen    integer not null default 1
);

comment on table pmt_jobs.alert is
  'Operator alerts by condition (e.g. backup_stale:pmt): when last seen and last mailed to ALERT_EMAIL.';

-- How an offsite copy was confirmed: 'checksum' (the store's MD5 ETag equals
-- ours of the file) or 'read-back' (downloaded and its sha256 compared).
alter table pmt_jobs.backup_copy
  add column verified_by text check (verified_by in ('checksum', 'read-back'));

comment on column pmt_jobs.backup_copy.verified_by is
  'checksum: the store''s MD5 ETag matched ours of the file; read-back: the object was downloaded and its sha256 compared (OFFSITE_VERIFY, and offsite sync''s re-reads).';

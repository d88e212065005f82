-- Encrypted offsite copies (issue 17): with BACKUP_ENCRYPT_TO the object in
-- the store is an age file, so its size and sha256 differ from the backup's
-- (the plaintext's, in pmt_jobs.backup and in bytes/sha256 here). Both are
-- kept: bytes/sha256 prove what was encrypted, stored_* what the store holds
-- (offsite sync compares stored_bytes with the listing).

alter table pmt_jobs.backup_copy
  add column stored_bytes bigint,
  add column stored_sha256 text,
  add column encrypted_to text[];

comment on column pmt_jobs.backup_copy.stored_bytes is
  'Size of the object in the store when it differs from the backup''s (an encrypted copy); null: the same as bytes.';
comment on column pmt_jobs.backup_copy.stored_sha256 is
  'sha256 of the object in the store when it differs from the backup''s (an encrypted copy); null: the same as sha256.';
comment on column pmt_jobs.backup_copy.encrypted_to is
  'The age recipients (public keys) the copy is encrypted to; null: not encrypted. Any one of their identities decrypts it.';

-- Least-privilege roles. Created when the migrating role may create roles
-- (CREATEROLE); otherwise a NOTICE shows the statements for a DBA to run.
--   pmt_app     PMT's application role: EXECUTE on the export functions and
--               SELECT on the status views, nothing else (no recipients of
--               other requests, no add_job, no history changes).
--   pmt_backup  may read every table (pg_read_all_data): give it to the
--               role in BACKUP_DATABASES URLs when that is not the owner.
-- The worker's own role is whoever runs the migrations: it owns the pmt_jobs
-- and graphile_worker schemas and needs no superuser.
-- Roles are NOLOGIN groups: grant them to login roles (grant pmt_app to pmt_web).
do $$
declare
  can_create boolean := (select rolcreaterole or rolsuper from pg_roles where rolname = current_user);
  missing text[] := '{}';
begin
  -- Roles are shared by every database of the server: another database's
  -- migration may create them at the same moment.
  if not exists (select 1 from pg_roles where rolname = 'pmt_app') then
    if can_create then
      begin create role pmt_app nologin; exception when duplicate_object or unique_violation then null; end;
    else missing := missing || 'create role pmt_app nologin;'; end if;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'pmt_backup') then
    if can_create then
      begin create role pmt_backup nologin; exception when duplicate_object or unique_violation then null; end;
    else missing := missing || 'create role pmt_backup nologin;'; end if;
  end if;
  if cardinality(missing) > 0 then
    raise notice 'pmt-worker: this role may not create roles; as a DBA run: % grant pg_read_all_data to pmt_backup; then pmt-worker migrate again',
      array_to_string(missing, ' ');
    return;
  end if;
  if exists (select 1 from pg_roles where rolname = 'pg_read_all_data')
     and not pg_has_role('pmt_backup', 'pg_read_all_data', 'member') then
    begin
      grant pg_read_all_data to pmt_backup;
    exception
      when insufficient_privilege then raise notice 'pmt-worker: as a DBA run: grant pg_read_all_data to pmt_backup;';
      when others then null; -- granted meanwhile by another database's migration
    end;
  end if;
end
$$;

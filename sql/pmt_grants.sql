-- Grants of pmt_app (PMT's application role), re-applied by every
-- `pmt-worker migrate` (after sql/pmt_export_functions.sql). Nothing else is
-- granted: pmt_app cannot read pmt_jobs.export_request (other people's
-- addresses), call graphile_worker.add_job, or change the job history.
-- Functions are executable by PUBLIC by default; ours are called by the
-- worker (their owner) or through the SECURITY DEFINER export functions.
revoke execute on all functions in schema pmt_jobs from public;

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'pmt_app') then
    return; -- see migrations/0006_roles.sql
  end if;
  execute 'grant usage on schema pmt_jobs to pmt_app';
  execute 'grant select on pmt_jobs.job_status, pmt_jobs.backup_status to pmt_app';
  -- job_status shows pmt_app an error's class (pmt_jobs.error_class), not its text
  execute 'grant execute on function pmt_jobs.error_class(text) to pmt_app';
  execute 'grant execute on function public.pmt_filter_csv(character varying, character varying, character varying, date, date, text) to pmt_app';
  execute 'grant execute on function public.pmt_filter_iati(character varying, character varying, character varying, date, date, text) to pmt_app';
end
$$;

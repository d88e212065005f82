-- PMT's export functions, with PMT 2.0's signatures so existing callers keep
-- working. Instead of writing a file with a superuser COPY, they record an
-- export request and enqueue its job in the caller's transaction; pmt-worker
-- renders the file and mails it. Applied by `pmt-worker migrate` after the
-- migrations, every time (create or replace).
--
-- SECURITY DEFINER with a fixed search_path, owned by the role that owns the
-- queue: PMT's application role needs only
--   grant execute on function public.pmt_filter_csv(character varying, character varying, character varying, date, date, text) to pmt_app;

create or replace function public.pmt_filter_csv(
  classification_ids character varying, organization_ids character varying, unassigned_tax_ids character varying,
  start_date date, end_date date, email text) returns boolean
language sql security definer set search_path = pg_catalog, pg_temp as $$
  select pmt_jobs.filter_export('csv', classification_ids, organization_ids, unassigned_tax_ids, start_date, end_date, email)
$$;

create or replace function public.pmt_filter_iati(
  classification_ids character varying, organization_ids character varying, unassigned_tax_ids character varying,
  start_date date, end_date date, email text) returns boolean
language sql security definer set search_path = pg_catalog, pg_temp as $$
  select pmt_jobs.filter_export('iati', classification_ids, organization_ids, unassigned_tax_ids, start_date, end_date, email)
$$;

revoke all on function public.pmt_filter_csv(character varying, character varying, character varying, date, date, text) from public;
revoke all on function public.pmt_filter_iati(character varying, character varying, character varying, date, date, text) from public;

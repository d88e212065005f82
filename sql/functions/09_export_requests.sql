-- Export requests: recorded and enqueued in the caller's transaction.

-- Stamps updated_at (also of pmt_jobs.export_limits).
create or replace function pmt_jobs.export_request_touch() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- The job that renders and mails request `request_id` (one per request: job_key).
create or replace function pmt_jobs.enqueue_export(request_id bigint) returns bigint
language sql set search_path = pg_catalog, pg_temp as $$
  select (graphile_worker.add_job('pmt_jobs.export', json_build_object('requestId', request_id),
                                  max_attempts => 10, job_key => 'export:' || request_id)).id
$$;

-- The general form: validate, check the limits, record the request, enqueue
-- its job, in the caller's transaction. Returns the request id.
create or replace function pmt_jobs.request_export(format text, recipient text, filters jsonb) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  request_id bigint;
begin
  if format is null or format not in ('csv', 'iati') then
    perform pmt_jobs.invalid('format', format('%s: expected ''csv'' or ''iati''', coalesce(quote_literal(format), 'null')));
  end if;
  recipient := pmt_jobs.check_mailbox('recipient', recipient);
  filters := pmt_jobs.check_filters(filters);
  perform pmt_jobs.check_export_limits(recipient, true);
  insert into pmt_jobs.export_request (format, recipient, filters, instance)
  values (format, recipient, filters, current_database())
  returning id into request_id;
  perform pmt_jobs.enqueue_export(request_id);
  return request_id;
end
$$;

-- PMT 2.0's export functions, behind public.pmt_filter_csv / pmt_filter_iati
-- (sql/pmt_export_functions.sql): validate the six arguments (errors name
-- them), refuse a caller over a limit before the filter runs, return false
-- when nothing matches (the check bounded by filter_timeout), else record the
-- request and enqueue it in the caller's transaction.
create or replace function pmt_jobs.filter_export(
  format text, classification_ids text, organization_ids text, unassigned_tax_ids text,
  start_date date, end_date date, email text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  filters jsonb;
  classes integer[];
  orgs integer[];
  taxonomies integer[];
begin
  perform pmt_jobs.check_mailbox('email', email);
  classes := pmt_jobs.parse_ids('classification_ids', classification_ids);
  orgs := pmt_jobs.parse_ids('organization_ids', organization_ids);
  taxonomies := pmt_jobs.parse_ids('unassigned_tax_ids', unassigned_tax_ids);
  filters := pmt_jobs.check_filters(jsonb_build_object(
    'classification_ids', to_jsonb(classes),
    'organization_ids', to_jsonb(orgs),
    'unassigned_tax_ids', to_jsonb(taxonomies),
    'start_date', start_date,
    'end_date', end_date));
  perform pmt_jobs.check_known('classification_ids', classes, 'classification');
  perform pmt_jobs.check_known('organization_ids', orgs, 'organization');
  perform pmt_jobs.check_known('unassigned_tax_ids', taxonomies, 'taxonomy');
  -- Refused before the filter runs; request_export checks again holding the keys.
  perform pmt_jobs.check_export_limits(email, false);
  if not pmt_jobs.filter_matches(filters) then
    return false;
  end if;
  perform pmt_jobs.request_export(format, email, filters);
  return true;
end
$$;

-- A file dropped in the legacy drop folder, already moved into the worker's
-- spool: mailed as it is. Called by the worker, not by PMT.
create or replace function pmt_jobs.request_file_export(format text, recipient text, instance text, spool_file text) returns bigint
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  request_id bigint;
begin
  insert into pmt_jobs.export_request (format, recipient, filters, instance, spool_file, requested_by)
  values (format, pmt_jobs.check_mailbox('recipient', recipient), '{}', instance, spool_file, 'drop folder')
  returning id into request_id;
  perform pmt_jobs.enqueue_export(request_id);
  return request_id;
end
$$;

-- Input checks found by the hostile-input corpus (test/faults/hostile.test.ts):
-- * id lists are bounded (at most 10,000 ids, 200,000 characters) and parsed
--   in one pass: a list of 100,000 ids took quadratic time (array append in a
--   loop) inside the caller's transaction;
-- * an id that names nothing is an error: an unknown classification id used
--   to drop out of the filter and export everything;
-- * a mailbox's local part has at most 64 characters (RFC 5321).
create or replace function pmt_jobs.parse_ids(arg text, value text) returns integer[]
language plpgsql immutable as $$
declare
  ids integer[];
begin
  if value is null or btrim(value) = '' then
    return '{}';
  end if;
  if length(value) > 200000 then
    perform pmt_jobs.invalid(arg, format('is %s characters long; a list of ids has at most 200000 (10000 ids)', length(value)));
  end if;
  if value !~ '^\s*[0-9]{1,9}\s*(,\s*[0-9]{1,9}\s*)*$' then
    perform pmt_jobs.invalid(arg, format('%s is not a list of ids: expected whole numbers separated by commas, like ''12,40''',
      quote_literal(left(value, 100) || case when length(value) > 100 then '...' else '' end)));
  end if;
  ids := string_to_array(regexp_replace(value, '\s', '', 'g'), ',')::integer[];
  if cardinality(ids) > 10000 then
    perform pmt_jobs.invalid(arg, format('has %s ids; at most 10000 are accepted (for no filter at all, pass an empty string)', cardinality(ids)));
  end if;
  return ids;
end
$$;

create or replace function pmt_jobs.check_mailbox(arg text, value text) returns text
language plpgsql immutable as $$
begin
  if value is null or value = '' then
    perform pmt_jobs.invalid(arg, 'an email address is required');
  end if;
  if length(value) > 254 then
    perform pmt_jobs.invalid(arg, 'is ' || length(value) || ' characters long; an email address has at most 254');
  end if;
  if value !~ '^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$' then
    perform pmt_jobs.invalid(arg, format('%s is not a single valid mailbox: expected name@example.org '
      '(letters, digits and . _ %% + - before one @; no spaces, quotes, slashes or shell characters)', quote_literal(value)));
  end if;
  if length(split_part(value, '@', 1)) > 64 then
    perform pmt_jobs.invalid(arg, format('%s...: the part before @ has %s characters; at most 64', left(value, 20), length(split_part(value, '@', 1))));
  end if;
  return value;
end
$$;

-- Every id must name a row of PMT's table (classification, organization, taxonomy).
create function pmt_jobs.check_known(arg text, ids integer[], kind text) returns void
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
declare
  unknown integer[];
begin
  if cardinality(ids) = 0 then
    return;
  end if;
  if kind = 'classification' then
    select array_agg(i order by i) into unknown from unnest(ids) i
    where not exists (select 1 from public.classification c where c.classification_id = i);
  elsif kind = 'organization' then
    select array_agg(i order by i) into unknown from unnest(ids) i
    where not exists (select 1 from public.organization o where o.organization_id = i);
  else
    select array_agg(i order by i) into unknown from unnest(ids) i
    where not exists (select 1 from public.taxonomy t where t.taxonomy_id = i);
  end if;
  if unknown is not null then
    perform pmt_jobs.invalid(arg, format('no %s has the id %s%s: expected ids from public.%s', kind,
      array_to_string(unknown[1:10], ', '),
      case when cardinality(unknown) > 10 then format(' (and %s more)', cardinality(unknown) - 10) else '' end,
      kind));
  end if;
end
$$;

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
  if not exists (select 1 from pmt_jobs.filter_activities(filters)) then
    return false;
  end if;
  perform pmt_jobs.request_export(format, email, filters);
  return true;
end
$$;

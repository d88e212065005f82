-- Argument checks of the export functions. Bad input is SQLSTATE 22023
-- naming the argument, what is wrong and what is expected.
--
-- Applied by `pmt-worker migrate` after the numbered migrations, every time,
-- in file-name order (sql/functions/README.md).

-- Bad input: SQLSTATE 22023 (invalid_parameter_value), naming the argument.
create or replace function pmt_jobs.invalid(arg text, message text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  raise exception using errcode = '22023', message = arg || ': ' || message;
end
$$;

-- '1, 2,3' -> {1,2,3}; '' or null -> {}. Bounded (at most 10,000 ids,
-- 200,000 characters) and parsed in one pass: found by the hostile-input
-- corpus (test/faults/hostile.test.ts), a list of 100,000 ids took quadratic
-- time (array append in a loop) inside the caller's transaction.
create or replace function pmt_jobs.parse_ids(arg text, value text) returns integer[]
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
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

-- The filters of an export as stored and used: arrays of ids and two dates.
create or replace function pmt_jobs.check_filters(filters jsonb) returns jsonb
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
declare
  key text;
  list text;
  start_date date;
  end_date date;
begin
  filters := coalesce(filters, '{}'::jsonb);
  if jsonb_typeof(filters) <> 'object' then
    perform pmt_jobs.invalid('filters', 'expected a JSON object');
  end if;
  for key in select jsonb_object_keys(filters) loop
    if key not in ('classification_ids', 'organization_ids', 'unassigned_tax_ids', 'start_date', 'end_date') then
      perform pmt_jobs.invalid('filters', format('unknown key %s: expected classification_ids, organization_ids, unassigned_tax_ids, start_date, end_date', quote_literal(key)));
    end if;
  end loop;
  foreach key in array array['classification_ids', 'organization_ids', 'unassigned_tax_ids'] loop
    if filters ? key and jsonb_typeof(filters -> key) not in ('array', 'null') then
      perform pmt_jobs.invalid(key, 'expected an array of ids');
    end if;
    select string_agg(e, ',') into list from jsonb_array_elements_text(coalesce(filters -> key, '[]')) as e;
    filters := jsonb_set(filters, array[key], to_jsonb(pmt_jobs.parse_ids(key, list)));
  end loop;
  begin
    start_date := (filters ->> 'start_date')::date;
    end_date := (filters ->> 'end_date')::date;
  exception when others then
    perform pmt_jobs.invalid('start_date/end_date', 'expected dates like 2014-12-31');
  end;
  if start_date is not null and end_date is not null and end_date < start_date then
    perform pmt_jobs.invalid('end_date', format('%s is before start_date %s', end_date, start_date));
  end if;
  return filters || jsonb_build_object('start_date', start_date, 'end_date', end_date);
end
$$;

-- Every id must name an active row of PMT's table (classification,
-- organization, taxonomy). Unknown or inactive ids are errors: PMT silently
-- dropped them from the filter, which widened an export to everything.
create or replace function pmt_jobs.check_known(arg text, ids integer[], kind text) returns void
language plpgsql stable set search_path = pg_catalog, pg_temp set row_security = off as $$
declare
  unknown integer[];
  inactive integer[];
  plural text := case kind when 'classification' then 'classifications' when 'organization' then 'organizations' else 'taxonomies' end;
begin
  if cardinality(ids) = 0 then
    return;
  end if;
  if kind = 'classification' then
    select array_agg(i order by i) filter (where c.classification_id is null),
           array_agg(i order by i) filter (where c.classification_id is not null and not (c.active and coalesce(t.active, false)))
      into unknown, inactive
    from unnest(ids) i
    left join public.classification c on c.classification_id = i
    left join public.taxonomy t on t.taxonomy_id = c.taxonomy_id;
  elsif kind = 'organization' then
    select array_agg(i order by i) filter (where o.organization_id is null),
           array_agg(i order by i) filter (where o.organization_id is not null and not o.active)
      into unknown, inactive
    from unnest(ids) i left join public.organization o on o.organization_id = i;
  else
    select array_agg(i order by i) filter (where t.taxonomy_id is null),
           array_agg(i order by i) filter (where t.taxonomy_id is not null and not t.active)
      into unknown, inactive
    from unnest(ids) i left join public.taxonomy t on t.taxonomy_id = i;
  end if;
  if unknown is not null then
    perform pmt_jobs.invalid(arg, format('no %s has the id %s%s: expected ids from public.%s', kind,
      array_to_string(unknown[1:10], ', '),
      case when cardinality(unknown) > 10 then format(' (and %s more)', cardinality(unknown) - 10) else '' end,
      kind));
  end if;
  if inactive is not null then
    perform pmt_jobs.invalid(arg, format('the %s %s %s %s inactive%s: expected ids of active %s',
      case when cardinality(inactive) > 1 then plural else kind end,
      case when cardinality(inactive) > 1 then 'with the ids' else 'with the id' end,
      array_to_string(inactive[1:10], ', ') || case when cardinality(inactive) > 10 then format(' (and %s more)', cardinality(inactive) - 10) else '' end,
      case when cardinality(inactive) > 1 then 'are' else 'is' end,
      case when kind = 'classification' then ' (or in an inactive taxonomy)' else '' end,
      plural));
  end if;
end
$$;

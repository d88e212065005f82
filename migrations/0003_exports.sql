-- Export by email: requests, their validation, PMT 2.0's filter, and the rows
-- the worker renders. The PMT-facing functions (public.pmt_filter_csv and
-- public.pmt_filter_iati) are in sql/pmt_export_functions.sql.
--
-- The filter and row functions read PMT's tables (public.activity, ...),
-- which need not exist when this runs (a database that only hosts the
-- queue): their bodies are checked when first called, not now.
set local check_function_bodies = off;

create table pmt_jobs.export_request (
  id              bigint generated always as identity primary key,
  format          text not null check (format in ('csv', 'iati')),
  recipient       text not null,
  filters         jsonb not null,
  instance        text not null,
  spool_file      text,
  requested_by    text not null default session_user,
  requested_at    timestamptz not null default now(),
  status          text not null default 'queued'
                  check (status in ('queued', 'rendering', 'sending', 'sent', 'failed')),
  rows            bigint,
  bytes           bigint,
  sha256          text,
  attachment      text,
  compressed      boolean,
  offsite_key     text,
  link_expires_at timestamptz,
  message_id      text,
  smtp_response   text,
  send_started_at timestamptz,
  sent_at         timestamptz,
  error           text,
  updated_at      timestamptz not null default now()
);

comment on table pmt_jobs.export_request is
  'One row per export asked for by pmt_filter_csv / pmt_filter_iati / request_export. status: queued, rendering, sending, sent, failed.';
comment on column pmt_jobs.export_request.spool_file is
  'A file to mail as it is (from the legacy drop folder) instead of rendering one.';
comment on column pmt_jobs.export_request.send_started_at is
  'Set just before the SMTP transaction; a retry that finds it set and no sent_at cannot tell whether the mail went out, and does not send a second copy.';

create index export_request_requested_at_idx on pmt_jobs.export_request (requested_at desc);
create index export_request_status_idx on pmt_jobs.export_request (status) where status not in ('sent', 'failed');

create function pmt_jobs.export_request_touch() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger export_request_touch before update on pmt_jobs.export_request
  for each row execute function pmt_jobs.export_request_touch();

-- Bad input: SQLSTATE 22023 (invalid_parameter_value), naming the argument.
create function pmt_jobs.invalid(arg text, message text) returns void
language plpgsql as $$
begin
  raise exception using errcode = '22023', message = arg || ': ' || message;
end
$$;

-- One mailbox: local@domain, nothing a shell, a header or a path could misread.
create function pmt_jobs.check_mailbox(arg text, value text) returns text
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
  return value;
end
$$;

-- '1, 2,3' -> {1,2,3}; '' or null -> {}.
create function pmt_jobs.parse_ids(arg text, value text) returns integer[]
language plpgsql immutable as $$
declare
  token text;
  ids integer[] := '{}';
begin
  if value is null or btrim(value) = '' then
    return ids;
  end if;
  foreach token in array string_to_array(value, ',') loop
    token := btrim(token);
    if token !~ '^[0-9]{1,9}$' then
      perform pmt_jobs.invalid(arg, format('%s is not a list of ids: expected whole numbers separated by commas, like ''12,40''',
        quote_literal(value)));
    end if;
    ids := ids || token::integer;
  end loop;
  return ids;
end
$$;

-- The filters of an export as stored and used: arrays of ids and two dates.
create function pmt_jobs.check_filters(filters jsonb) returns jsonb
language plpgsql immutable as $$
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

-- Classifications of an activity: its own, its project's and its locations'.
-- (A function, not a view: a view would need PMT's tables to exist now.)
create function pmt_jobs.activity_classifications(activity integer) returns setof integer
language sql stable as $$
  select at.classification_id from public.activity_taxonomy at where at.activity_id = activity
  union
  select pt.classification_id
  from public.activity a join public.project_taxonomy pt on pt.project_id = a.project_id
  where a.activity_id = activity
  union
  select lt.classification_id
  from public.location l join public.location_taxonomy lt on lt.location_id = l.location_id
  where l.activity_id = activity and l.active
$$;

-- PMT 2.0's filter: classifications OR'd within a taxonomy and AND'ed across
-- taxonomies (a data group is a classification); a taxonomy listed in
-- unassigned_tax_ids also lets through activities with no classification in it;
-- organizations OR'd (participating in the activity or its project); the
-- dates, when both are given, must contain the activity's.
create function pmt_jobs.filter_activities(filters jsonb) returns setof integer
language sql stable as $$
  with f as (
    select array(select jsonb_array_elements_text(filters -> 'classification_ids')::integer) as class_ids,
           array(select jsonb_array_elements_text(filters -> 'organization_ids')::integer) as org_ids,
           array(select jsonb_array_elements_text(filters -> 'unassigned_tax_ids')::integer) as unassigned,
           (filters ->> 'start_date')::date as start_date,
           (filters ->> 'end_date')::date as end_date
  ), chosen as (
    select c.taxonomy_id, array_agg(c.classification_id) as ids
    from public.classification c, f
    where c.classification_id = any(f.class_ids)
    group by c.taxonomy_id
  ), constrained as (
    select taxonomy_id from chosen
    union
    select unnest(unassigned) from f
  )
  select a.activity_id
  from public.activity a
  join public.project p on p.project_id = a.project_id
  cross join f
  where a.active and p.active
    and (cardinality(f.org_ids) = 0 or exists (
      select 1 from public.participation pp
      where pp.active and pp.organization_id = any(f.org_ids)
        and (pp.activity_id = a.activity_id or (pp.activity_id is null and pp.project_id = a.project_id))))
    and (f.start_date is null or f.end_date is null
         or (a.start_date >= f.start_date and a.end_date <= f.end_date))
    and not exists (
      select 1 from constrained t
      where not exists (
              select 1 from pmt_jobs.activity_classifications(a.activity_id) ac(classification_id)
              join chosen ch on ch.taxonomy_id = t.taxonomy_id
              where ac.classification_id = any(ch.ids))
        and not (t.taxonomy_id = any(f.unassigned) and not exists (
              select 1 from pmt_jobs.activity_classifications(a.activity_id) ac(classification_id)
              join public.classification c on c.classification_id = ac.classification_id
              where c.taxonomy_id = t.taxonomy_id)))
$$;

-- The rows an export renders: one per matching activity, with its project's
-- fields, ordered by project then activity, so the worker can stream them.
-- Set-based (every lookup is a join over the matched activities, not a
-- subquery per row), so it costs about the same per row at any size.
create function pmt_jobs.export_rows(filters jsonb)
returns table (
  project_id integer, project_iati_identifier text, project_title text, project_description text,
  project_url text, project_start_date date, project_end_date date, project_amount numeric,
  project_sector_name text, project_sector_code text, project_country_name text,
  data_group text, accountable text, accountable_url text,
  activity_id integer, iati_identifier text, title text, description text,
  sector_name text, sector_code text, status_name text, status_code text,
  country_name text, country_code text, city_village text,
  start_date date, end_date date, amount numeric, currency text, tags text, updated_date timestamptz,
  participants jsonb, locations jsonb, budgets jsonb
)
language sql stable as $$
  with matched as materialized (
    select m.activity_id, a.project_id
    from pmt_jobs.filter_activities(filters) as m(activity_id)
    join public.activity a on a.activity_id = m.activity_id
  ), assigned as materialized (
    -- every classification of every matched activity: its own, its project's, its locations'
    select m.activity_id, m.project_id, at.classification_id
    from matched m join public.activity_taxonomy at on at.activity_id = m.activity_id
    union
    select m.activity_id, m.project_id, pt.classification_id
    from matched m join public.project_taxonomy pt on pt.project_id = m.project_id
    union
    select m.activity_id, m.project_id, lt.classification_id
    from matched m
    join public.location l on l.activity_id = m.activity_id and l.active
    join public.location_taxonomy lt on lt.location_id = l.location_id
  ), terms as (
    select s.activity_id, t.name as taxonomy, c.name, c.code, s.project_id
    from assigned s
    join public.classification c on c.classification_id = s.classification_id and c.active
    join public.taxonomy t on t.taxonomy_id = c.taxonomy_id
    where t.name in ('Sector', 'Activity Status', 'Country', 'Data Group')
  ), activity_terms as (
    select activity_id,
           string_agg(name, ',' order by name) filter (where taxonomy = 'Sector') as sector_names,
           string_agg(code, ',' order by name) filter (where taxonomy = 'Sector') as sector_codes,
           string_agg(name, ',' order by name) filter (where taxonomy = 'Activity Status') as status_names,
           string_agg(code, ',' order by name) filter (where taxonomy = 'Activity Status') as status_codes,
           string_agg(name, ',' order by name) filter (where taxonomy = 'Country') as country_names,
           string_agg(code, ',' order by name) filter (where taxonomy = 'Country') as country_codes,
           string_agg(name, ',' order by name) filter (where taxonomy = 'Data Group') as data_groups
    from terms group by activity_id
  ), project_terms as (
    -- a project's sectors and countries: those of its exported activities
    select project_id,
           string_agg(distinct name, ',' order by name) filter (where taxonomy = 'Sector') as sector_names,
           string_agg(distinct code, ',' order by code) filter (where taxonomy = 'Sector') as sector_codes,
           string_agg(distinct name, ',' order by name) filter (where taxonomy = 'Country') as country_names
    from terms group by project_id
  ), participants as (
    select x.activity_id,
           jsonb_agg(jsonb_build_object('name', o.name, 'ref', o.iati_identifier, 'url', o.url,
                                        'role', r.name, 'role_code', r.code, 'level', x.level)
                     order by r.code, o.name) as list
    from (
      select m.activity_id, pp.participation_id, pp.organization_id, 'activity' as level
      from matched m join public.participation pp on pp.activity_id = m.activity_id and pp.active
      union all
      select m.activity_id, pp.participation_id, pp.organization_id, 'project'
      from matched m join public.participation pp on pp.project_id = m.project_id and pp.activity_id is null and pp.active
    ) x
    join public.organization o on o.organization_id = x.organization_id and o.active
    left join public.participation_taxonomy ptx on ptx.participation_id = x.participation_id
    left join public.classification r on r.classification_id = ptx.classification_id
    group by x.activity_id
  ), accountable as (
    select pp.project_id, string_agg(o.name, ',' order by o.name) as names, string_agg(o.url, ',' order by o.name) as urls
    from (select distinct project_id from matched) mp
    join public.participation pp on pp.project_id = mp.project_id and pp.activity_id is null and pp.active
    join public.organization o on o.organization_id = pp.organization_id and o.active
    join public.participation_taxonomy ptx on ptx.participation_id = pp.participation_id
    join public.classification r on r.classification_id = ptx.classification_id and r.name = 'Accountable'
    group by pp.project_id
  ), places as (
    select l.activity_id,
           jsonb_agg(jsonb_build_object('name', l.title, 'lat', l.lat_dd, 'long', l.long_dd) order by l.location_id) as list
    from matched m join public.location l on l.activity_id = m.activity_id and l.active
    group by l.activity_id
  ), money as (
    select fi.activity_id, sum(fi.amount) as amount, min(c.code) as currency,
           jsonb_agg(jsonb_build_object('amount', fi.amount, 'start', fi.start_date, 'end', fi.end_date)
                     order by fi.start_date, fi.financial_id) as budgets
    from matched m
    join public.financial fi on fi.activity_id = m.activity_id and fi.active
    left join public.financial_taxonomy ft on ft.financial_id = fi.financial_id
    left join public.classification c on c.classification_id = ft.classification_id
      and c.taxonomy_id = (select taxonomy_id from public.taxonomy where name = 'Currency')
    group by fi.activity_id
  ), project_money as (
    select fi.project_id, sum(fi.amount) as amount
    from (select distinct project_id from matched) mp
    join public.financial fi on fi.project_id = mp.project_id and fi.active
    group by fi.project_id
  )
  select p.project_id, p.iati_identifier, p.title, p.description, p.url, p.start_date, p.end_date, pm.amount,
         pt.sector_names, pt.sector_codes, pt.country_names,
         at.data_groups, acc.names, acc.urls,
         a.activity_id, a.iati_identifier, a.title, a.description,
         at.sector_names, at.sector_codes, at.status_names, at.status_codes, at.country_names, at.country_codes,
         a.city_village, a.start_date, a.end_date, mo.amount, coalesce(mo.currency, 'USD'), a.tags, a.updated_date,
         coalesce(pa.list, '[]'), coalesce(pl.list, '[]'), coalesce(mo.budgets, '[]')
  from matched m
  join public.activity a on a.activity_id = m.activity_id
  join public.project p on p.project_id = m.project_id
  left join activity_terms at on at.activity_id = m.activity_id
  left join project_terms pt on pt.project_id = m.project_id
  left join participants pa on pa.activity_id = m.activity_id
  left join accountable acc on acc.project_id = m.project_id
  left join places pl on pl.activity_id = m.activity_id
  left join money mo on mo.activity_id = m.activity_id
  left join project_money pm on pm.project_id = m.project_id
  order by p.project_id, a.activity_id
$$;

-- The job that renders and mails request `request_id` (one per request: job_key).
create function pmt_jobs.enqueue_export(request_id bigint) returns bigint
language sql as $$
  select (graphile_worker.add_job('pmt_jobs.export', json_build_object('requestId', request_id),
                                  max_attempts => 10, job_key => 'export:' || request_id)).id
$$;

-- The general form: validate, record the request, enqueue its job, in the
-- caller's transaction. Returns the request id.
create function pmt_jobs.request_export(format text, recipient text, filters jsonb) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  request_id bigint;
begin
  if format is null or format not in ('csv', 'iati') then
    perform pmt_jobs.invalid('format', format('%s: expected ''csv'' or ''iati''', coalesce(quote_literal(format), 'null')));
  end if;
  insert into pmt_jobs.export_request (format, recipient, filters, instance)
  values (format, pmt_jobs.check_mailbox('recipient', recipient), pmt_jobs.check_filters(filters), current_database())
  returning id into request_id;
  perform pmt_jobs.enqueue_export(request_id);
  return request_id;
end
$$;

-- PMT 2.0's export functions, behind public.pmt_filter_csv / pmt_filter_iati:
-- validate the six arguments (errors name them), return false when nothing
-- matches, else record the request and enqueue it in the caller's transaction.
create function pmt_jobs.filter_export(
  format text, classification_ids text, organization_ids text, unassigned_tax_ids text,
  start_date date, end_date date, email text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  filters jsonb;
begin
  perform pmt_jobs.check_mailbox('email', email);
  filters := pmt_jobs.check_filters(jsonb_build_object(
    'classification_ids', to_jsonb(pmt_jobs.parse_ids('classification_ids', classification_ids)),
    'organization_ids', to_jsonb(pmt_jobs.parse_ids('organization_ids', organization_ids)),
    'unassigned_tax_ids', to_jsonb(pmt_jobs.parse_ids('unassigned_tax_ids', unassigned_tax_ids)),
    'start_date', start_date,
    'end_date', end_date));
  if not exists (select 1 from pmt_jobs.filter_activities(filters)) then
    return false;
  end if;
  perform pmt_jobs.request_export(format, email, filters);
  return true;
end
$$;

-- A file dropped in the legacy drop folder, already moved into the worker's
-- spool: mailed as it is. Called by the worker, not by PMT.
create function pmt_jobs.request_file_export(format text, recipient text, instance text, spool_file text) returns bigint
language plpgsql as $$
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

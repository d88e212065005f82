-- Exports on real PMT 2.0 databases (upstream 2.0.8.51): PMT's own selection
-- and report, read from the live tables.
--
-- Selection = PMT's pmt_filter_projects. PMT answers from its materialized
-- lookups (taxonomy_lookup, location_lookup, built from the view
-- active_project_activities); these functions compute the same rows from
-- the live tables at the time of the export, so an export never depends on
-- a lookup that was not refreshed:
--   * a location row exists for each active location of an active activity
--     of an active project that has an active participation (of the project
--     as a whole, or of that activity) and at least one classification;
--   * its classifications are those of the project, the activity, that
--     location, and every participation and participating organization,
--     counted only where the link's `field` names its table's id (as the
--     lookup requires) and the classification's taxonomy exists; its
--     organizations are those of the participations that brought a
--     classification to the row (all of them when the project, activity or
--     location has one);
--   * the filter is evaluated per location row: classifications OR'd within
--     a taxonomy and AND'ed across taxonomies, organizations OR'd, the
--     activity's dates strictly inside (start > s and end < e, both dates
--     given), all AND'ed; then OR'd with "lacks one of the unassigned
--     taxonomies" (several OR'd);
--   * an activity is exported when one of its location rows passes.
-- Report = PMT's pmt_filter_csv: the same records and values, with its bugs
-- fixed (Sector name and code, DateRange, filter text when only dates filter).
set local check_function_bodies = off;

drop function if exists pmt_jobs.export_rows(jsonb);
drop function if exists pmt_jobs.export_rows(jsonb, boolean);
drop function if exists pmt_jobs.filter_activities(jsonb);
drop function if exists pmt_jobs.activity_classifications(integer);

-- The exported activities, (project_id, activity_id), in PMT's order.
create function pmt_jobs.filter_activities(filters jsonb)
returns table (project_id integer, activity_id integer)
language sql stable set search_path = pg_catalog, pg_temp as $$
  with f as (
    select array(select jsonb_array_elements_text(filters -> 'classification_ids')::integer) as class_ids,
           array(select jsonb_array_elements_text(filters -> 'organization_ids')::integer) as org_ids,
           array(select jsonb_array_elements_text(filters -> 'unassigned_tax_ids')::integer) as unassigned,
           (filters ->> 'start_date')::date as s,
           (filters ->> 'end_date')::date as e
  ), groups as (
    -- the chosen classifications by taxonomy (PMT's taxonomy_classifications: active only)
    select c.taxonomy_id, array_agg(c.classification_id) as ids
    from f, public.classification c join public.taxonomy t on t.taxonomy_id = c.taxonomy_id
    where c.classification_id = any(f.class_ids) and c.active and t.active
    group by c.taxonomy_id
  ), mode as (
    select exists (select 1 from groups) or cardinality(f.org_ids) > 0 or (f.s is not null and f.e is not null) as has_w2,
           cardinality(f.unassigned) > 0 as has_w4
    from f
  ), act as materialized (
    select a.project_id, a.activity_id, a.start_date, a.end_date
    from public.activity a join public.project p on p.project_id = a.project_id
    where a.active and p.active
  ), parts as materialized (
    -- active participations: the project's (no activity) and the activity's own
    select x.activity_id, pp.participation_id, pp.organization_id
    from act x join public.participation pp on pp.project_id = x.project_id and pp.activity_id is null and pp.active
    union all
    select x.activity_id, pp.participation_id, pp.organization_id
    from act x join public.participation pp on pp.activity_id = x.activity_id and pp.project_id = x.project_id and pp.active
  ), known as (
    select c.classification_id, c.taxonomy_id
    from public.classification c join public.taxonomy t on t.taxonomy_id = c.taxonomy_id
  ), entity_classes as (
    select x.activity_id, pt.classification_id
    from act x join public.project_taxonomy pt on pt.project_id = x.project_id and pt.field = 'project_id'
    union
    select x.activity_id, at.classification_id
    from act x join public.activity_taxonomy at on at.activity_id = x.activity_id and at.field = 'activity_id'
  ), part_classes as (
    select p.activity_id, p.participation_id, ot.classification_id
    from parts p join public.organization_taxonomy ot on ot.organization_id = p.organization_id and ot.field = 'organization_id'
    union
    select p.activity_id, p.participation_id, ppt.classification_id
    from parts p join public.participation_taxonomy ppt on ppt.participation_id = p.participation_id and ppt.field = 'participation_id'
  ), activity_sets as (
    -- per activity: the classifications (and their taxonomies) every one of its location rows has
    select s.activity_id, array_agg(distinct k.classification_id) as class_ids, array_agg(distinct k.taxonomy_id) as tax_ids,
           bool_or(s.entity) as entity_classified
    from (select activity_id, classification_id, true as entity from entity_classes
          union all
          select activity_id, classification_id, false from part_classes) s
    join known k on k.classification_id = s.classification_id
    group by s.activity_id
  ), classified_parts as (
    select distinct pc.activity_id, pc.participation_id
    from part_classes pc join known k on k.classification_id = pc.classification_id
  ), activity_orgs as (
    select p.activity_id, array_agg(distinct p.organization_id) as all_orgs,
           array_agg(distinct p.organization_id) filter (where cp.participation_id is not null) as classified_orgs
    from parts p
    left join classified_parts cp on cp.activity_id = p.activity_id and cp.participation_id = p.participation_id
    group by p.activity_id
  ), location_sets as (
    select l.location_id, l.activity_id,
           array_agg(distinct k.classification_id) filter (where k.classification_id is not null) as class_ids,
           array_agg(distinct k.taxonomy_id) filter (where k.taxonomy_id is not null) as tax_ids
    from act x
    join public.location l on l.activity_id = x.activity_id and l.active
    left join public.location_taxonomy lt on lt.location_id = l.location_id and lt.field = 'location_id'
    left join known k on k.classification_id = lt.classification_id
    group by l.location_id, l.activity_id
  ), rows as (
    -- location_lookup: one row per location that has a participation and a classification
    select x.project_id, x.activity_id, x.start_date, x.end_date,
           coalesce(a.class_ids, '{}') || coalesce(l.class_ids, '{}') as class_ids,
           coalesce(a.tax_ids, '{}') || coalesce(l.tax_ids, '{}') as tax_ids,
           case when coalesce(a.entity_classified, false) or l.class_ids is not null then o.all_orgs
                else coalesce(o.classified_orgs, '{}') end as org_ids
    from act x
    join location_sets l on l.activity_id = x.activity_id
    join activity_orgs o on o.activity_id = x.activity_id
    left join activity_sets a on a.activity_id = x.activity_id
    where a.class_ids is not null or l.class_ids is not null
  ), classified as (
    -- activities with a classification of their own, their project's or a participation's
    select e.activity_id from entity_classes e join known k on k.classification_id = e.classification_id
    union
    select activity_id from classified_parts
  ), selected as (
    -- No filter (PMT reads its whole lookup): whether a location row exists is
    -- all that counts, found without building the rows' sets. The planner
    -- runs one branch only (its guard is a one-time filter).
    select x.project_id, x.activity_id
    from act x
    where (select not (has_w2 or has_w4) from mode)
      and x.activity_id in (select activity_id from parts)
      and ((x.activity_id in (select l.activity_id from public.location l where l.active)
            and x.activity_id in (select activity_id from classified))
           or x.activity_id in (select l.activity_id from public.location l
                                join public.location_taxonomy lt on lt.location_id = l.location_id and lt.field = 'location_id'
                                join known k on k.classification_id = lt.classification_id
                                where l.active))
    union all
    select distinct r.project_id, r.activity_id
    from rows r, f, mode m
    where (select has_w2 or has_w4 from mode)
      and ((m.has_w2
            and not exists (select 1 from groups g where not (r.class_ids && g.ids))
            and (cardinality(f.org_ids) = 0 or r.org_ids && f.org_ids)
            and (f.s is null or f.e is null or (r.start_date > f.s and r.end_date < f.e)))
        or (m.has_w4 and exists (select 1 from unnest(f.unassigned) u where not (u = any(r.tax_ids)))))
  )
  select project_id, activity_id from selected order by project_id, activity_id
$$;

comment on function pmt_jobs.filter_activities(jsonb) is
  'The activities an export holds: PMT 2.0''s pmt_filter_projects over the live tables (not its materialized lookups), ordered by project, activity.';

-- The rows an export renders: one per exported activity with its project's
-- fields, in project, activity order, so the worker can stream them. The
-- text columns are PMT's CSV values (pmt_filter_csv, its Sector bug fixed);
-- the jsonb ones feed the IATI XML and are built only when `iati` is true
-- (empty otherwise). Where PMT leaves the order of a list to the planner, it
-- is fixed here (by id; coordinates sorted as text).
create function pmt_jobs.export_rows(filters jsonb, iati boolean default false)
returns table (
  project_id integer, project_title text, project_description text, data_group text,
  project_start_date date, project_end_date date, project_budget numeric,
  activity_id integer, iati_identifier text, title text, description text,
  sector_names text, sector_codes text, coordinates text, country_names text,
  funding text, implementing text, start_date date, end_date date, budget numeric, status_names text,
  updated_date timestamp,
  sectors jsonb, country_codes jsonb, status_codes jsonb, currency text,
  participants jsonb, locations jsonb, budgets jsonb
)
language sql stable set search_path = pg_catalog, pg_temp as $$
  with matched as materialized (
    select m.project_id, m.activity_id from pmt_jobs.filter_activities(filters) m
  ), projects as materialized (
    select distinct project_id from matched
  ), tax as (
    select t.name, t.taxonomy_id from public.taxonomy t
    where t.name in ('Data Group', 'Sector', 'Country', 'Activity Status', 'Organisation Role', 'Currency')
  ), data_groups as (
    select pt.project_id, string_agg(c.name, ',' order by c.classification_id) as names
    from projects mp
    join public.project_taxonomy pt on pt.project_id = mp.project_id
    join public.classification c on c.classification_id = pt.classification_id and c.active
    join tax on tax.taxonomy_id = c.taxonomy_id and tax.name = 'Data Group'
    group by pt.project_id
  ), project_budgets as (
    select fi.project_id, sum(fi.amount) as amount
    from projects mp join public.financial fi on fi.project_id = mp.project_id and fi.activity_id is null and fi.active
    group by fi.project_id
  ), activity_terms as (
    select at.activity_id,
           string_agg(c.name, ',' order by c.classification_id) filter (where tax.name = 'Sector') as sector_names,
           string_agg(c.code, ',' order by c.classification_id) filter (where tax.name = 'Sector') as sector_codes,
           jsonb_agg(jsonb_build_object('code', coalesce(c.iati_code, c.code), 'name', coalesce(c.iati_name, c.name))
                     order by c.classification_id) filter (where iati and tax.name = 'Sector') as sectors,
           string_agg(c.name, ',' order by c.classification_id) filter (where tax.name = 'Activity Status') as status_names,
           jsonb_agg(coalesce(c.iati_code, c.code) order by c.classification_id) filter (where iati and tax.name = 'Activity Status') as status_codes
    from matched m
    join public.activity_taxonomy at on at.activity_id = m.activity_id
    join public.classification c on c.classification_id = at.classification_id and c.active
    join tax on tax.taxonomy_id = c.taxonomy_id and tax.name in ('Sector', 'Activity Status')
    group by at.activity_id
  ), places as (
    select l.activity_id,
           string_agg(distinct l.lat_dd || ' ' || l.long_dd, ',' order by l.lat_dd || ' ' || l.long_dd) as coordinates,
           jsonb_agg(jsonb_build_object('name', l.title, 'lat', l.lat_dd, 'long', l.long_dd) order by l.location_id) filter (where iati) as list
    from matched m join public.location l on l.activity_id = m.activity_id and l.active
    group by l.activity_id
  ), countries as (
    select l.activity_id,
           string_agg(c.name, ',' order by l.location_id, c.classification_id) as names,
           jsonb_agg(distinct coalesce(c.iati_code, c.code)) filter (where iati) as codes
    from matched m
    join public.location l on l.activity_id = m.activity_id and l.active
    join public.location_taxonomy lt on lt.location_id = l.location_id
    join public.classification c on c.classification_id = lt.classification_id and c.active
    join tax on tax.taxonomy_id = c.taxonomy_id and tax.name = 'Country'
    group by l.activity_id
  ), roles as (
    -- activity-level participations with their Organisation Role: PMT's CSV
    -- matches iati_name ('Funding', 'Implementing'); the IATI role comes from
    -- the code (PMT's words, or IATI 2.x's 1-4)
    select pp.activity_id, pp.participation_id, o.name, c.iati_name as role_name, coalesce(c.iati_code, c.code) as role_code
    from matched m
    join public.participation pp on pp.activity_id = m.activity_id and pp.active
    join public.organization o on o.organization_id = pp.organization_id and o.active
    join public.participation_taxonomy ppt on ppt.participation_id = pp.participation_id
    join public.classification c on c.classification_id = ppt.classification_id and c.active
    join tax on tax.taxonomy_id = c.taxonomy_id and tax.name = 'Organisation Role'
  ), partners as (
    select r.activity_id,
           string_agg(r.name, ',' order by r.participation_id) filter (where r.role_name = 'Funding') as funding,
           string_agg(r.name, ',' order by r.participation_id) filter (where r.role_name = 'Implementing') as implementing,
           jsonb_agg(jsonb_build_object('name', r.name, 'role', r.role_code) order by r.participation_id) filter (where iati) as list
    from roles r group by r.activity_id
  ), money as (
    select fi.activity_id, sum(fi.amount) as amount,
           jsonb_agg(jsonb_build_object('amount', fi.amount, 'start', fi.start_date, 'end', fi.end_date)
                     order by fi.start_date, fi.financial_id) filter (where iati) as list,
           min(c.code) as currency
    from matched m
    join public.financial fi on fi.activity_id = m.activity_id and fi.active
    left join public.financial_taxonomy ft on ft.financial_id = fi.financial_id
    left join public.classification c on c.classification_id = ft.classification_id
      and c.taxonomy_id = (select taxonomy_id from tax where name = 'Currency' limit 1)
    group by fi.activity_id
  )
  select p.project_id, p.title::text, p.description::text, dg.names, p.start_date, p.end_date, pb.amount,
         a.activity_id, a.iati_identifier::text, a.title::text, a.description::text,
         t.sector_names, t.sector_codes, pl.coordinates, co.names,
         pa.funding, pa.implementing, a.start_date, a.end_date, mo.amount, t.status_names,
         a.updated_date::timestamp,
         coalesce(t.sectors, '[]'), coalesce(co.codes, '[]'), coalesce(t.status_codes, '[]'), coalesce(mo.currency, 'USD'),
         coalesce(pa.list, '[]'), coalesce(pl.list, '[]'), coalesce(mo.list, '[]')
  from matched m
  join public.activity a on a.activity_id = m.activity_id
  join public.project p on p.project_id = m.project_id
  left join data_groups dg on dg.project_id = m.project_id
  left join project_budgets pb on pb.project_id = m.project_id
  left join activity_terms t on t.activity_id = m.activity_id
  left join places pl on pl.activity_id = m.activity_id
  left join countries co on co.activity_id = m.activity_id
  left join partners pa on pa.activity_id = m.activity_id
  left join money mo on mo.activity_id = m.activity_id
  order by m.project_id, m.activity_id
$$;

-- PMT's header line after "Filters: " (pmt_filter_csv), its bugs fixed:
-- 'none' when neither ids nor both dates filter, else per taxonomy
-- 'Sector=Education,Health | ', 'Organization=A,B | ', 'DateRange=<start> to <end> | '.
-- Unassigned taxonomies are not named, as in PMT.
create function pmt_jobs.describe_filters(filters jsonb) returns text
language sql stable set search_path = pg_catalog, pg_temp as $$
  with f as (
    select array(select jsonb_array_elements_text(filters -> 'classification_ids')::integer) as class_ids,
           array(select jsonb_array_elements_text(filters -> 'organization_ids')::integer) as org_ids,
           (filters ->> 'start_date')::date as s,
           (filters ->> 'end_date')::date as e
  )
  select case
    when cardinality(f.class_ids) = 0 and cardinality(f.org_ids) = 0 and (f.s is null or f.e is null) then 'none'
    else concat(
      (select string_agg(x.taxonomy || '=' || x.names || ' | ', '' order by x.taxonomy)
       from (select t.name as taxonomy, string_agg(c.name, ',' order by c.classification_id) as names
             from public.classification c join public.taxonomy t on t.taxonomy_id = c.taxonomy_id
             where c.classification_id = any(f.class_ids) and c.active and t.active
             group by t.name) x),
      (select 'Organization=' || string_agg(o.name, ',' order by o.organization_id) || ' | '
       from public.organization o where o.organization_id = any(f.org_ids)),
      case when f.s is not null and f.e is not null then 'DateRange=' || to_char(f.s, 'YYYY-MM-DD') || ' to ' || to_char(f.e, 'YYYY-MM-DD') || ' | ' end)
    end
  from f
$$;

-- PMT's version as its pmt_version() reports it (2.0.8.51, line 2415), for
-- the CSV's header; null where the database has no `version` table. Read
-- here rather than called: PMT's function finds its tables through the
-- caller's search_path, this one through none.
create function pmt_jobs.pmt_version() returns text
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
declare
  v text;
begin
  if to_regclass('public.version') is null then
    return null;
  end if;
  execute 'select version::text || ''.'' || iteration::text || ''.'' || changeset::text
           from public.version order by version, iteration, changeset desc limit 1' into v;
  return v;
exception when undefined_column then
  return null;
end
$$;

-- Unknown or inactive ids are errors (PMT silently dropped them from the
-- filter, which widened an export to everything).
create or replace function pmt_jobs.check_known(arg text, ids integer[], kind text) returns void
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
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

revoke execute on all functions in schema pmt_jobs from public;

-- Which activities an export holds: PMT 2.0's selection (upstream 2.0.8.51,
-- its pmt_filter_projects), computed from the live tables at the time of the
-- export rather than from PMT's materialized lookups (migration
-- 0009_pmt2_exports.sql describes the rules). With the internal keys
-- project_from and project_to, one range of projects: filter_matches goes
-- range by range.
--
-- These functions read PMT's tables (public.activity, ...), which need not
-- exist (a database that only hosts the queue): their bodies are checked
-- when first called, not now.
set local check_function_bodies = off;

create or replace function pmt_jobs.filter_activities(filters jsonb)
returns table (project_id integer, activity_id integer)
language sql stable set search_path = pg_catalog, pg_temp set row_security = off as $$
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
      -- one range of projects at a time when pmt_jobs.filter_matches asks (its keys are internal:
      -- check_filters refuses them in a request)
      and (filters ->> 'project_from' is null or a.project_id >= (filters ->> 'project_from')::integer)
      and (filters ->> 'project_to' is null or a.project_id <= (filters ->> 'project_to')::integer)
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

-- Whether the filter matches anything, within pmt_jobs.export_limits.filter_timeout:
-- the projects are taken in ranges (32 first, then sized to take about a
-- quarter of the timeout at the rate seen so far), and the time is checked
-- between ranges. A range under way is finished, so the bound is the timeout
-- plus one range (about a quarter more, when the projects are alike).
create or replace function pmt_jobs.filter_matches(filters jsonb) returns boolean
language plpgsql set search_path = pg_catalog, pg_temp set row_security = off as $$
declare
  budget interval := coalesce((select l.filter_timeout from pmt_jobs.export_limits l), interval '0');
  started timestamptz := pg_catalog.clock_timestamp();
  range_started timestamptz;
  projects integer[];
  i integer := 1;
  step integer := 32;
begin
  if budget <= interval '0' then
    return exists (select 1 from pmt_jobs.filter_activities(filters));
  end if;
  projects := array(select p.project_id from public.project p where p.active order by p.project_id);
  while i <= pg_catalog.cardinality(projects) loop
    range_started := pg_catalog.clock_timestamp();
    if exists (select 1 from pmt_jobs.filter_activities(filters || pg_catalog.jsonb_build_object(
                 'project_from', projects[i],
                 'project_to', projects[least(i + step - 1, pg_catalog.cardinality(projects))]))) then
      return true;
    end if;
    i := i + step;
    if i <= pg_catalog.cardinality(projects) and pg_catalog.clock_timestamp() - started > budget then
      raise exception using errcode = '57014',
        message = pg_catalog.format('the export filter was stopped after %s ms: finding whether it matches anything takes longer than filter_timeout (%s ms) allows; narrow it (fewer ids, a shorter date range)',
                                    pg_catalog.round(extract(epoch from pg_catalog.clock_timestamp() - started) * 1000),
                                    pg_catalog.round(extract(epoch from budget) * 1000)),
        hint = 'The limit is pmt_jobs.export_limits.filter_timeout (EXPORT_FILTER_TIMEOUT_MS).';
    end if;
    -- The next range: about a quarter of the budget at the rate just seen (each
    -- range also costs a fixed scan of PMT's link tables, so few large ones).
    step := greatest(1, least(step::bigint * 64, pg_catalog.cardinality(projects),
              (step * extract(epoch from budget) / 4
               / greatest(extract(epoch from pg_catalog.clock_timestamp() - range_started), 0.001))::bigint))::integer;
  end loop;
  return false;
end
$$;

-- PMT's header line after "Filters: " (pmt_filter_csv), its bugs fixed:
-- 'none' when neither ids nor both dates filter, else per taxonomy
-- 'Sector=Education,Health | ', 'Organization=A,B | ', 'DateRange=<start> to <end> | '.
-- Unassigned taxonomies are not named, as in PMT.
create or replace function pmt_jobs.describe_filters(filters jsonb) returns text
language sql stable set search_path = pg_catalog, pg_temp set row_security = off as $$
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
create or replace function pmt_jobs.pmt_version() returns text
language plpgsql stable set search_path = pg_catalog, pg_temp set row_security = off as $$
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

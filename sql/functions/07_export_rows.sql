-- Reads PMT's tables, which need not exist: checked when first called.
set local check_function_bodies = off;

-- The rows an export renders: one per exported activity with its project's
-- fields, in project, activity order, so the worker can stream them. The
-- text columns are PMT's CSV values (pmt_filter_csv, its Sector bug fixed);
-- the jsonb ones feed the IATI XML and are built only when `iati` is true
-- (empty otherwise). Where PMT leaves the order of a list to the planner, it
-- is fixed here (by id; coordinates sorted as text).
create or replace function pmt_jobs.export_rows(filters jsonb, iati boolean default false)
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
language sql stable set search_path = pg_catalog, pg_temp set row_security = off as $$
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

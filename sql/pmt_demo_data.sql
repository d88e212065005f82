-- Deterministic synthetic PMT data for the demo and the benchmarks:
--   select pmt_demo_seed(1000);   -- 100 projects, 1000 activities
-- Same input, same rows (no random()): ids, names, dates, coordinates and
-- amounts are all computed from the row number. Needs the sample schema
-- (pmt_sample_schema.sql) and empty activity/project tables.

create or replace function public.pmt_demo_seed(activities integer) returns integer
language plpgsql as $$
declare
  projects integer := greatest(1, ceil(activities / 10.0)::integer);
begin
  if activities is null or activities < 1 or activities > 10000000 then
    raise exception using errcode = '22023', message = 'activities: expected a whole number from 1 to 10000000';
  end if;
  if exists (select 1 from public.activity) or exists (select 1 from public.project) then
    raise exception using errcode = '55000', message = 'the PMT tables already hold data: seed an empty database (or reset it first)';
  end if;

  insert into public.config (version, iteration, changeset) values (2.0, 8, 79);

  insert into public.taxonomy (name, iati_codelist) values
    ('Data Group', null), ('Sector', 'Sector'), ('Activity Status', 'ActivityStatus'),
    ('Country', 'Country'), ('Organisation Role', 'OrganisationRole'), ('Currency', 'Currency')
  on conflict (name) do nothing;

  insert into public.classification (taxonomy_id, code, name)
  select t.taxonomy_id, v.code, v.name
  from (values
    ('Data Group', 'WB', 'World Bank'), ('Data Group', 'AGRA', 'AGRA'), ('Data Group', 'BMGF', 'BMGF'), ('Data Group', 'TZAIM', 'Tanzania AIM'),
    ('Sector', '11110', 'Education policy and administrative management'),
    ('Sector', '12220', 'Basic health care'),
    ('Sector', '14030', 'Basic drinking water supply and basic sanitation'),
    ('Sector', '15110', 'Public sector policy and administrative management'),
    ('Sector', '23110', 'Energy policy and administrative management'),
    ('Sector', '31110', 'Agricultural policy and administrative management'),
    ('Sector', '31161', 'Food crop production'),
    ('Sector', '41010', 'Environmental policy and administrative management'),
    ('Activity Status', '1', 'Pipeline/identification'), ('Activity Status', '2', 'Implementation'),
    ('Activity Status', '3', 'Finalisation'), ('Activity Status', '4', 'Closed'),
    ('Activity Status', '5', 'Cancelled'), ('Activity Status', '6', 'Suspended'),
    ('Country', 'TZ', 'Tanzania, United Republic of'), ('Country', 'NP', 'Nepal'), ('Country', 'BO', 'Bolivia'),
    ('Country', 'MW', 'Malawi'), ('Country', 'ET', 'Ethiopia'), ('Country', 'KE', 'Kenya'),
    ('Organisation Role', '1', 'Funding'), ('Organisation Role', '2', 'Accountable'),
    ('Organisation Role', '3', 'Extending'), ('Organisation Role', '4', 'Implementing'),
    ('Currency', 'USD', 'US Dollar'), ('Currency', 'EUR', 'Euro'), ('Currency', 'TZS', 'Tanzanian Shilling')
  ) as v(taxonomy, code, name)
  join public.taxonomy t on t.name = v.taxonomy
  where not exists (select 1 from public.classification c where c.taxonomy_id = t.taxonomy_id and c.code = v.code);

  insert into public.organization (name, iati_identifier, url)
  select 'Organization ' || o || (array[' Foundation', ' Ministry', ' NGO', ' Cooperative'])[1 + o % 4],
         'XI-PMT-' || lpad(o::text, 4, '0'), 'https://org' || o || '.example.org'
  from generate_series(1, 12) o
  where not exists (select 1 from public.organization);

  -- Projects: ten activities each.
  insert into public.project (project_id, iati_identifier, title, description, opportunity_id, start_date, end_date, url, tags)
  select p, 'XI-PMT-P' || lpad(p::text, 6, '0'),
         'Project ' || p || ': ' || (array['rural', 'urban', 'national', 'regional'])[1 + p % 4] || ' programme',
         'Programme ' || p || ' with "partners", commas, and <angle brackets> & ampersands',
         'OPP' || (1000 + p), date '2008-01-01' + (p::bigint * 37 % 1500)::integer, date '2008-01-01' + (p::bigint * 37 % 1500)::integer + 365 * (2 + p % 4),
         'https://pmt.example.org/project/' || p, 'tag' || (p % 7)
  from generate_series(1, projects) p;

  insert into public.activity (activity_id, project_id, iati_identifier, title, description, start_date, end_date, city_village, tags)
  select a, 1 + (a - 1) / 10, 'XI-PMT-A' || lpad(a::text, 8, '0'),
         'Activity ' || a,
         'Improve "access" to <services> & training, phase ' || (1 + a % 3) || E'\nSecond line',
         date '2009-01-01' + (a::bigint * 53 % 2000)::integer, date '2009-01-01' + (a::bigint * 53 % 2000)::integer + 90 * (1 + a % 12),
         'Village ' || (a % 97), 'keyword' || (a % 5)
  from generate_series(1, activities) a;

  insert into public.location (location_id, project_id, activity_id, title, lat_dd, long_dd)
  select a, 1 + (a - 1) / 10, a, 'Site ' || a,
         round((-10 + (a::bigint * 7919 % 2000) / 100.0)::numeric, 6), round((30 + (a::bigint * 104729 % 1500) / 100.0)::numeric, 6)
  from generate_series(1, activities) a;

  insert into public.financial (financial_id, project_id, activity_id, amount, start_date, end_date)
  select a, 1 + (a - 1) / 10, a, 1000 + (a::bigint * 7717 % 99000), date '2009-01-01' + (a::bigint * 53 % 2000)::integer,
         date '2009-01-01' + (a::bigint * 53 % 2000)::integer + 364
  from generate_series(1, activities) a;

  insert into public.participation (participation_id, project_id, activity_id, organization_id)
  select p, p, null::integer, (select min(organization_id) from public.organization) + p % 12 from generate_series(1, projects) p
  union all
  select projects + p, p, null, (select min(organization_id) from public.organization) + (p + 5) % 12 from generate_series(1, projects) p
  union all
  select 2 * projects + a, 1 + (a - 1) / 10, a, (select min(organization_id) from public.organization) + (a * 7) % 12
  from generate_series(1, activities) a;

  -- Roles: per project one accountable and one funding organization; each activity one implementer.
  insert into public.participation_taxonomy (participation_id, classification_id)
  select pp.participation_id, r.classification_id
  from public.participation pp
  join public.taxonomy t on t.name = 'Organisation Role'
  join public.classification r on r.taxonomy_id = t.taxonomy_id
   and r.code = case when pp.activity_id is not null then '4' when pp.participation_id <= projects then '2' else '1' end;

  insert into public.project_taxonomy (project_id, classification_id)
  select p, (select c.classification_id from public.classification c join public.taxonomy t using (taxonomy_id)
             where t.name = 'Data Group' order by c.classification_id offset p % 4 limit 1)
  from generate_series(1, projects) p;

  insert into public.activity_taxonomy (activity_id, classification_id)
  select a, (select c.classification_id from public.classification c join public.taxonomy t using (taxonomy_id)
             where t.name = 'Sector' order by c.code offset a % 8 limit 1)
  from generate_series(1, activities) a
  union all
  select a, (select c.classification_id from public.classification c join public.taxonomy t using (taxonomy_id)
             where t.name = 'Activity Status' order by c.code offset (array[1, 1, 1, 2, 3, 0])[1 + a % 6] limit 1)
  from generate_series(1, activities) a;

  insert into public.location_taxonomy (location_id, classification_id)
  select a, (select c.classification_id from public.classification c join public.taxonomy t using (taxonomy_id)
             where t.name = 'Country' order by c.code offset (1 + (a - 1) / 10) % 6 limit 1)
  from generate_series(1, activities) a;

  insert into public.financial_taxonomy (financial_id, classification_id)
  select a, (select c.classification_id from public.classification c join public.taxonomy t using (taxonomy_id)
             where t.name = 'Currency' order by c.code desc offset a % 3 limit 1)
  from generate_series(1, activities) a;

  perform setval('public.project_project_id_seq', projects);
  perform setval('public.activity_activity_id_seq', activities);
  perform setval('public.location_location_id_seq', activities);
  perform setval('public.financial_financial_id_seq', activities);
  perform setval('public.participation_participation_id_seq', 2 * projects + activities);
  return activities;
end
$$;

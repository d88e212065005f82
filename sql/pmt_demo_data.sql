-- Deterministic synthetic PMT 2.0 data for the demo, the tests and the
-- benchmarks:
--   select pmt_demo_seed(1000);   -- 100 projects, 1000 activities
-- Same input, same rows (no random()): everything is computed from the row
-- number. Works on the sample schema (pmt_sample_schema.sql) and on a real
-- PMT 2.0.8.51 database: classifications PMT's codelist loader made (Sector,
-- Country, Organisation Role, ...) are used where they exist, created where
-- they do not; locations get a PostGIS point where the table has one (PMT's
-- trigger derives lat_dd/long_dd from it).
--
-- Every rule PMT's export treats specially has cases (a is the activity
-- number, p its project's):
--   inactive project p%23=0, activity a%31=0, first location a%29=0,
--     activity participation a%8=0, organization 12, sector classification
--     '99999' (a%15=0), budgets;
--   no location a%13=0; two locations in two countries a%5=0, the second
--     with its own sector a%10=0; a location without country a%11=0;
--   no participation at all: a%7=0 in projects p%11=0; only the project's
--     participation a%7=0;
--   no classification at all: a%10=9 in projects p%9=0 (no data group, no
--     roles, organizations without type);
--   dates exactly 2010-01-01..2012-12-31 a%17=0, no end a%19=0, no start a%43=0;
--   project-level budgets p%3=0; two data groups p%10=1; Organisation Role
--   words (Accountable, Extending, Funding, Implementing) on project and
--   activity participations; organization types on organizations o%3=0.

create or replace function public.pmt_demo_seed(activities integer) returns integer
language plpgsql as $$
declare
  projects integer := greatest(1, ceil(activities / 10.0)::integer);
  o0 integer := coalesce((select max(organization_id) from public.organization), 0);
  l0 integer := coalesce((select max(location_id) from public.location), 0);
  pp0 integer := coalesce((select max(participation_id) from public.participation), 0);
  f0 integer := coalesce((select max(financial_id) from public.financial), 0);
  sectors integer[];
  countries integer[];
  statuses integer[];
  roles integer[];
  currencies integer[];
  org_types integer[];
  data_groups integer[];
  retired_sector integer;
begin
  if activities is null or activities < 1 or activities > 10000000 then
    raise exception using errcode = '22023', message = 'activities: expected a whole number from 1 to 10000000';
  end if;
  if exists (select 1 from public.activity) or exists (select 1 from public.project) then
    raise exception using errcode = '55000', message = 'the PMT tables already hold data: seed an empty database (or reset it first)';
  end if;

  insert into public.version (version, iteration, changeset) select 2.0, 8, 51 where not exists (select 1 from public.version);
  insert into public.config (version) select 2.0 where not exists (select 1 from public.config);

  -- The classifications used, found by code (by name for data groups), created where missing.
  create temporary table demo_term (taxonomy text, ord integer, code text, name text, active boolean default true) on commit drop;
  insert into demo_term (taxonomy, ord, code, name) values
    ('Data Group', 1, null, 'World Bank'), ('Data Group', 2, null, 'AGRA'), ('Data Group', 3, null, 'BMGF'), ('Data Group', 4, null, 'Tanzania AIM'),
    ('Sector', 1, '11110', 'Education policy and administrative management'), ('Sector', 2, '11220', 'Primary education'),
    ('Sector', 3, '12220', 'Basic health care'), ('Sector', 4, '14030', 'Basic drinking water supply and basic sanitation'),
    ('Sector', 5, '15110', 'Economic and development policy/planning'), ('Sector', 6, '31110', 'Agricultural policy and administrative management'),
    ('Sector', 7, '31161', 'Food crop production'), ('Sector', 8, '41010', 'Environmental policy and administrative management'),
    ('Country', 1, 'TZ', 'TANZANIA, UNITED REPUBLIC OF'), ('Country', 2, 'NP', 'NEPAL'), ('Country', 3, 'BO', 'BOLIVIA, PLURINATIONAL STATE OF'),
    ('Country', 4, 'MW', 'MALAWI'), ('Country', 5, 'ET', 'ETHIOPIA'), ('Country', 6, 'KE', 'KENYA'),
    ('Activity Status', 1, '1', 'Pipeline/identification'), ('Activity Status', 2, '2', 'Implementation'),
    ('Activity Status', 3, '3', 'Completion'), ('Activity Status', 4, '4', 'Post-completion'),
    ('Activity Status', 5, '5', 'Cancelled'), ('Activity Status', 6, '6', 'Suspended'),
    ('Organisation Role', 1, 'Accountable', 'Accountable'), ('Organisation Role', 2, 'Extending', 'Extending'),
    ('Organisation Role', 3, 'Funding', 'Funding'), ('Organisation Role', 4, 'Implementing', 'Implementing'),
    ('Currency', 1, 'USD', 'US Dollar'), ('Currency', 2, 'EUR', 'Euro'), ('Currency', 3, 'TZS', 'Tanzanian Shilling'),
    ('Organisation Type', 1, '10', 'Government'), ('Organisation Type', 2, '21', 'International NGO'),
    ('Organisation Type', 3, '40', 'Multilateral'), ('Organisation Type', 4, '60', 'Foundation');
  insert into demo_term (taxonomy, ord, code, name, active) values ('Sector', 9, '99999', 'Retired sector (inactive)', false);

  insert into public.taxonomy (name, iati_codelist, created_by, updated_by)
  select distinct d.taxonomy, case when d.taxonomy <> 'Data Group' then d.taxonomy end, 'pmt-worker demo', 'pmt-worker demo'
  from demo_term d where not exists (select 1 from public.taxonomy t where t.name = d.taxonomy);

  create temporary table demo_class on commit drop as
  select d.taxonomy, d.ord, d.code, d.name, d.active,
         (select min(taxonomy_id) from public.taxonomy t where t.name = d.taxonomy) as taxonomy_id,
         null::integer as classification_id
  from demo_term d;
  update demo_class dc set classification_id = (
    select min(c.classification_id) from public.classification c
    where c.taxonomy_id = dc.taxonomy_id and (c.code = dc.code or (dc.code is null and c.name = dc.name)));
  with added as (
    insert into public.classification (taxonomy_id, code, name, iati_code, iati_name, active, created_by, updated_by)
    select dc.taxonomy_id, dc.code, dc.name, dc.code, case when dc.taxonomy = 'Data Group' then null else dc.name end, dc.active,
           'pmt-worker demo', 'pmt-worker demo'
    from demo_class dc where dc.classification_id is null
    returning classification_id, taxonomy_id, code, name)
  update demo_class dc set classification_id = a.classification_id
  from added a where a.taxonomy_id = dc.taxonomy_id and a.name = dc.name and dc.classification_id is null;

  select array_agg(classification_id order by ord) into sectors from demo_class where taxonomy = 'Sector' and ord <= 8;
  select classification_id into retired_sector from demo_class where taxonomy = 'Sector' and ord = 9;
  select array_agg(classification_id order by ord) into countries from demo_class where taxonomy = 'Country';
  select array_agg(classification_id order by ord) into statuses from demo_class where taxonomy = 'Activity Status';
  select array_agg(classification_id order by ord) into roles from demo_class where taxonomy = 'Organisation Role';
  select array_agg(classification_id order by ord) into currencies from demo_class where taxonomy = 'Currency';
  select array_agg(classification_id order by ord) into org_types from demo_class where taxonomy = 'Organisation Type';
  select array_agg(classification_id order by ord) into data_groups from demo_class where taxonomy = 'Data Group';

  -- Organizations 1-12; 12 is inactive; a type on 3, 6, 9, 12. (Untyped: 1 2 4 5 7 8 10 11.)
  insert into public.organization (organization_id, name, url, active)
  select o0 + o, case when o % 5 = 0 then 'Organization ' || o || ' "Partners", Ltd' else 'Organization ' || o end
                 || (array[' Foundation', ' Ministry', ' NGO', ' Cooperative'])[1 + o % 4],
         'https://org' || o || '.example.org', o <> 12
  from generate_series(1, 12) o;
  insert into public.organization_taxonomy (organization_id, classification_id, field)
  select o0 + o, org_types[1 + o / 3 % 4], 'organization_id' from generate_series(3, 12, 3) o;

  insert into public.project (project_id, title, description, url, start_date, end_date, tags, active)
  select p,
         'Project ' || p || ': ' || (array['rural', 'urban', 'national', 'regional'])[1 + p % 4] || ' programme',
         'Programme ' || p || ' with "partners", commas, and <angle brackets> & ampersands',
         'https://pmt.example.org/project/' || p,
         date '2008-01-01' + (p::bigint * 37 % 1500)::integer, date '2008-01-01' + (p::bigint * 37 % 1500)::integer + 365 * (2 + p % 4),
         'tag' || (p % 7), p % 23 <> 0
  from generate_series(1, projects) p;

  insert into public.activity (activity_id, project_id, iati_identifier, title, description, start_date, end_date, tags, active, updated_date)
  select a, 1 + (a - 1) / 10, case when a % 4 <> 0 then 'XI-PMT-A' || lpad(a::text, 8, '0') end,
         'Activity ' || a,
         'Improve "access" to <services> & training, phase ' || (1 + a % 3) || E'\nSecond line',
         case when a % 43 = 0 then null when a % 17 = 0 then date '2010-01-01' else date '2009-01-01' + (a::bigint * 53 % 2000)::integer end,
         case when a % 19 = 0 then null when a % 17 = 0 then date '2012-12-31' else date '2009-01-01' + (a::bigint * 53 % 2000)::integer + 90 * (1 + a % 12) end,
         'keyword' || (a % 5), a % 31 <> 0,
         timestamp '2014-01-01' + (a % 500) * interval '1 day'
  from generate_series(1, activities) a;

  -- Locations: none a%13=0, two a%5=0 (k = 2 in the next country).
  create temporary table demo_location on commit drop as
  select l0 + row_number() over (order by a, k) as location_id, 1 + (a - 1) / 10 as project_id, a as activity_id, k,
         'Site ' || a || case when k = 2 then 'b' else '' end as title,
         round((-10 + ((a * 2 + k)::bigint * 7919 % 2000) / 100.0)::numeric, 6) as lat,
         round((30 + ((a * 2 + k)::bigint * 104729 % 1500) / 100.0)::numeric, 6) as long,
         not (k = 1 and a % 29 = 0) as active
  from generate_series(1, activities) a, generate_series(1, 2) k
  where a % 13 <> 0 and (k = 1 or a % 5 = 0);
  if exists (select 1 from information_schema.columns where table_schema = 'public' and table_name = 'location' and column_name = 'point') then
    execute 'insert into public.location (location_id, project_id, activity_id, title, point, active)
             select location_id, project_id, activity_id, title, public.st_setsrid(public.st_makepoint(long, lat), 4326), active from demo_location';
  else
    insert into public.location (location_id, project_id, activity_id, title, lat_dd, long_dd, active)
    select location_id, project_id, activity_id, title, lat, long, active from demo_location;
  end if;

  -- Participations: the project's accountable organization (none p%11=0;
  -- untyped, without role p%9=0) and funder (p even); the activity's
  -- implementer (none a%7=0, inactive a%8=0), funder (a%3=0), extending (a%20=0).
  create temporary table demo_participation on commit drop as
  select pp0 + row_number() over (order by project_id, activity_id nulls first, role) as participation_id, *
  from (
    select p as project_id, null::integer as activity_id,
           case when p % 9 = 0 then (array[1, 2, 4, 5, 7, 8, 10, 11])[1 + p % 8] else 1 + p % 12 end as org,
           case when p % 9 = 0 then null else 1 end as role, true as active
    from generate_series(1, projects) p where p % 11 <> 0
    union all
    select p, null, 1 + (p + 5) % 12, 3, true
    from generate_series(1, projects) p where p % 2 = 0 and p % 9 <> 0 and p % 11 <> 0
    union all
    select 1 + (a - 1) / 10, a,
           case when (1 + (a - 1) / 10) % 9 = 0 and a % 10 = 9 then (array[1, 2, 4, 5, 7, 8, 10, 11])[1 + a % 8] else 1 + (a * 7) % 12 end,
           case when (1 + (a - 1) / 10) % 9 = 0 and a % 10 = 9 then null else 4 end, a % 8 <> 0
    from generate_series(1, activities) a where a % 7 <> 0
    union all
    select 1 + (a - 1) / 10, a, 1 + (a * 5) % 12, 3, true
    from generate_series(1, activities) a where a % 3 = 0 and not ((1 + (a - 1) / 10) % 9 = 0 and a % 10 = 9)
    union all
    select 1 + (a - 1) / 10, a, 1 + (a * 11) % 12, 2, true
    from generate_series(1, activities) a where a % 20 = 0
  ) x;
  insert into public.participation (participation_id, project_id, activity_id, organization_id, active)
  select participation_id, project_id, activity_id, o0 + org, active from demo_participation;
  insert into public.participation_taxonomy (participation_id, classification_id, field)
  select participation_id, roles[role], 'participation_id' from demo_participation where role is not null;

  -- Classifications: data groups on projects; sector(s) and status on
  -- activities; countries (and a second sector) on locations.
  insert into public.project_taxonomy (project_id, classification_id, field)
  select p, data_groups[1 + p % 4], 'project_id' from generate_series(1, projects) p where p % 9 <> 0
  union all
  select p, data_groups[1 + (p + 1) % 4], 'project_id' from generate_series(1, projects) p where p % 10 = 1 and p % 9 <> 0;

  insert into public.activity_taxonomy (activity_id, classification_id, field)
  select a, c, 'activity_id'
  from generate_series(1, activities) a,
       lateral (values (sectors[1 + a % 8]),
                       (case when a % 4 = 1 then sectors[1 + (a + 2) % 8] end),
                       (case when a % 6 <> 5 then statuses[1 + a % 6] end),
                       (case when a % 15 = 0 then retired_sector end)) v(c)
  where c is not null and not ((1 + (a - 1) / 10) % 9 = 0 and a % 10 = 9);

  insert into public.location_taxonomy (location_id, classification_id, field)
  select l.location_id, countries[1 + (l.project_id + l.k - 1) % 6], 'location_id'
  from demo_location l
  where not (l.k = 1 and l.activity_id % 11 = 0) and not (l.project_id % 9 = 0 and l.activity_id % 10 = 9)
  union all
  select l.location_id, sectors[1 + (l.activity_id + 3) % 8], 'location_id'
  from demo_location l where l.k = 2 and l.activity_id % 10 = 0;

  -- Budgets: the activity's (none a%6=0; a second a%4=0; an inactive one
  -- a%10=3) and the project's own (p%3=0, one of them inactive).
  create temporary table demo_financial on commit drop as
  select f0 + row_number() over (order by project_id, activity_id nulls first, n) as financial_id, *
  from (
    select 1 + (a - 1) / 10 as project_id, a as activity_id, 1 as n, (1000 + (a::bigint * 7717 % 99000))::numeric(100,2) as amount,
           date '2009-01-01' + (a::bigint * 53 % 2000)::integer as start_date, date '2009-01-01' + (a::bigint * 53 % 2000)::integer + 364 as end_date,
           true as active
    from generate_series(1, activities) a where a % 6 <> 0
    union all
    select 1 + (a - 1) / 10, a, 2, 2500.50, date '2010-01-01' + (a % 700), date '2010-12-31' + (a % 700), true
    from generate_series(1, activities) a where a % 4 = 0 and a % 6 <> 0
    union all
    select 1 + (a - 1) / 10, a, 3, 777, null, null, false
    from generate_series(1, activities) a where a % 10 = 3
    union all
    select p, null, 1, 50000 + p * 10, date '2008-01-01', date '2012-12-31', true from generate_series(1, projects) p where p % 3 = 0
    union all
    select p, null, 2, 1234, null, null, false from generate_series(1, projects) p where p % 3 = 0
  ) x;
  insert into public.financial (financial_id, project_id, activity_id, amount, start_date, end_date, active)
  select financial_id, project_id, activity_id, amount, start_date, end_date, active from demo_financial;
  insert into public.financial_taxonomy (financial_id, classification_id, field)
  select financial_id, currencies[1 + coalesce(activity_id, project_id) % 3], 'financial_id' from demo_financial;

  perform setval(pg_get_serial_sequence('public.organization', 'organization_id'), o0 + 12);
  perform setval(pg_get_serial_sequence('public.project', 'project_id'), projects);
  perform setval(pg_get_serial_sequence('public.activity', 'activity_id'), activities);
  perform setval(pg_get_serial_sequence('public.location', 'location_id'), greatest(1, (select max(location_id) from public.location)));
  perform setval(pg_get_serial_sequence('public.participation', 'participation_id'), greatest(1, (select max(participation_id) from public.participation)));
  perform setval(pg_get_serial_sequence('public.financial', 'financial_id'), greatest(1, (select max(financial_id) from public.financial)));
  -- Statistics now, as a live database has them, not when autovacuum gets round to it: the export's plans depend on them.
  analyze public.organization, public.organization_taxonomy, public.project, public.project_taxonomy, public.activity,
          public.activity_taxonomy, public.location, public.location_taxonomy, public.participation,
          public.participation_taxonomy, public.financial, public.financial_taxonomy, public.classification, public.taxonomy;
  return activities;
end
$$;

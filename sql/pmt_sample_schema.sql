-- PMT 2.0 sample schema: the tables pmt-worker's exports read, exactly as
-- PMT 2.0.8.51 defines them (PMTCreateDatabase.sql): same table and column
-- names and types, PMT's `version` table and set-returning pmt_version().
-- For the embedded demo, the tests and the benchmarks, where the real schema
-- cannot load: it needs PostGIS, which the embedded PostgreSQL lacks. So
-- `location` has no `point` (PMT derives lat_dd/long_dd from it by trigger;
-- here they are stored directly), and the GAUL boundary tables, users, maps,
-- contacts and PMT's other functions are left out.
--
-- `pmt-worker demo seed --activities N` fills it with deterministic data.
-- Idempotent: existing tables are kept (a demo database made by an earlier
-- pmt-worker gains the columns it lacked).

create table if not exists public.activity (
  activity_id     serial primary key,
  project_id      integer not null,
  title           character varying,
  label           character varying,
  description     character varying,
  content         character varying,
  start_date      date,
  plan_start_date date,
  end_date        date,
  plan_end_date   date,
  tags            character varying,
  iati_identifier character varying(50),
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);
create index if not exists activity_project_id_idx on public.activity (project_id);

create table if not exists public.config (
  config_id       serial primary key,
  version         numeric(2,1),
  download_dir    text,
  created_date    timestamp without time zone not null default current_date,
  updated_date    timestamp without time zone not null default current_date
);

create table if not exists public.financial (
  financial_id    serial primary key,
  project_id      integer not null,
  activity_id     integer,
  amount          numeric(100,2),
  start_date      date,
  end_date        date,
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);
create index if not exists financial_activity_id_idx on public.financial (activity_id);
create index if not exists financial_project_id_idx on public.financial (project_id);

create table if not exists public.location (
  location_id     serial primary key,
  project_id      integer not null,
  activity_id     integer not null,
  boundary_id     integer,
  feature_id      integer,
  title           character varying,
  description     character varying,
  x               integer,
  y               integer,
  lat_dd          decimal,
  long_dd         decimal,
  latlong         character varying(100),
  georef          character varying(20),
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);
create index if not exists location_activity_id_idx on public.location (activity_id);

create table if not exists public.organization (
  organization_id serial primary key,
  name            character varying,
  address1        character varying(150),
  address2        character varying(150),
  city            character varying(30),
  state_providence character varying(50),
  postal_code     character varying(32),
  country         character varying(50),
  direct_phone    character varying(21),
  mobile_phone    character varying(21),
  fax             character varying(21),
  email           character varying(50),
  url             character varying(100),
  created_by      character varying(50),
  active          boolean not null default true,
  retired_by      integer,
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);

create table if not exists public.participation (
  participation_id serial primary key,
  project_id      integer not null,
  activity_id     integer,
  organization_id integer not null,
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);
create index if not exists participation_project_id_idx on public.participation (project_id);
create index if not exists participation_activity_id_idx on public.participation (activity_id);

create table if not exists public.project (
  project_id      serial primary key,
  title           character varying,
  label           character varying,
  description     character varying,
  url             character varying,
  start_date      date,
  end_date        date,
  tags            character varying,
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);

create table if not exists public.version (
  version_id      serial primary key,
  version         numeric(2,1),
  iteration       integer,
  changeset       integer,
  created_date    timestamp without time zone not null default current_date,
  updated_date    timestamp without time zone not null default current_date
);

create table if not exists public.taxonomy (
  taxonomy_id     serial primary key,
  name            character varying(255),
  description     character varying,
  iati_codelist   character varying(100),
  category_id     integer,
  is_category     boolean not null default false,
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);

create table if not exists public.classification (
  classification_id serial primary key,
  taxonomy_id     integer,
  identifier      integer,
  code            character varying(25),
  name            character varying(255),
  description     character varying,
  min             decimal,
  max             decimal,
  iati_code       character varying(25),
  iati_name       character varying(255),
  iati_description character varying,
  category_id     integer,
  active          boolean not null default true,
  retired_by      integer,
  created_by      character varying(50),
  created_date    timestamp without time zone not null default current_date,
  updated_by      character varying(50),
  updated_date    timestamp without time zone not null default current_date
);
create index if not exists classification_taxonomy_id_idx on public.classification (taxonomy_id);

-- The junction tables: a classification assigned to a row. `field` names the
-- column it classifies (PMT's lookups count only '<table>_id').
create table if not exists public.activity_taxonomy (
  activity_id     integer not null,
  classification_id integer not null,
  field           character varying(50) default 'activity_id',
  primary key (activity_id, classification_id, field)
);
create table if not exists public.financial_taxonomy (
  financial_id    integer not null,
  classification_id integer not null,
  field           character varying(50) default 'financial_id',
  primary key (financial_id, classification_id, field)
);
create table if not exists public.location_taxonomy (
  location_id     integer not null,
  classification_id integer not null,
  field           character varying(50) default 'location_id',
  primary key (location_id, classification_id, field)
);
create table if not exists public.organization_taxonomy (
  organization_id integer not null,
  classification_id integer not null,
  field           character varying(50) default 'organization_id',
  primary key (organization_id, classification_id, field)
);
create table if not exists public.participation_taxonomy (
  participation_id integer not null,
  classification_id integer not null,
  field           character varying(50) default 'participation_id',
  primary key (participation_id, classification_id, field)
);
create table if not exists public.project_taxonomy (
  project_id      integer not null,
  classification_id integer not null,
  field           character varying(50) default 'project_id',
  primary key (project_id, classification_id, field)
);

-- A demo database made by pmt-worker before it followed 2.0.8.51: the
-- IATI columns PMT's codelist loader fills (code and name) and PMT's export reads.
do $$
begin
  if not exists (select 1 from information_schema.columns
                 where table_schema = 'public' and table_name = 'classification' and column_name = 'iati_name') then
    alter table public.classification add column iati_code character varying(25), add column iati_name character varying(255);
    update public.classification c set iati_code = c.code, iati_name = c.name
    from public.taxonomy t where t.taxonomy_id = c.taxonomy_id and t.name <> 'Data Group';
  end if;
end
$$;
alter table public.activity add column if not exists iati_identifier character varying(50);

do $$
begin
  if not exists (select 1 from pg_type where typname = 'pmt_version_result_type' and typnamespace = 'public'::regnamespace) then
    create type public.pmt_version_result_type as (version text, last_update date, created date);
  end if;
  -- the earlier sample's pmt_version() returned text
  if (select prorettype from pg_proc where oid = to_regprocedure('public.pmt_version()')) = 'text'::regtype then
    drop function public.pmt_version();
  end if;
end
$$;

-- PMT's own (2.0.8.51, line 2415), unchanged.
create or replace function public.pmt_version() returns setof public.pmt_version_result_type as
$$
DECLARE
  rec record;
BEGIN
  FOR rec IN (  SELECT version::text||'.'||iteration::text||'.'||changeset::text AS pmt_version, updated_date::date as last_update, (SELECT created_date from config where config_id = (select min(config_id) from config))::date as created
		FROM version ORDER BY version, iteration, changeset DESC LIMIT 1
		) LOOP
	RETURN NEXT rec;
  END LOOP;
END;$$ language plpgsql;

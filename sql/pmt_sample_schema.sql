-- PMT 2.0 sample schema: the tables pmt-worker's exports read, with PMT's
-- table and column names (public schema, as in PMT). No public sample data
-- exists, so `pmt-worker demo seed --activities N` fills them with
-- deterministic synthetic data. Idempotent: existing tables are kept.
--
-- Simplified from PMT 2.0: no PostGIS (locations carry lat_dd/long_dd only),
-- no users, contacts or edit history.

create table if not exists public.config (
  config_id     serial primary key,
  version       numeric(4,2) not null,
  iteration     integer not null,
  changeset     integer not null,
  created_date  timestamptz not null default now()
);

create table if not exists public.taxonomy (
  taxonomy_id   serial primary key,
  name          character varying not null unique,
  description   character varying,
  iati_codelist character varying,
  active        boolean not null default true
);

create table if not exists public.classification (
  classification_id serial primary key,
  taxonomy_id   integer not null references public.taxonomy,
  code          character varying,
  name          character varying not null,
  description   character varying,
  active        boolean not null default true
);
create index if not exists classification_taxonomy_id_idx on public.classification (taxonomy_id);

create table if not exists public.organization (
  organization_id serial primary key,
  name          character varying not null,
  iati_identifier character varying,
  url           character varying,
  active        boolean not null default true
);

create table if not exists public.project (
  project_id    serial primary key,
  iati_identifier character varying,
  title         character varying,
  description   character varying,
  opportunity_id character varying,
  start_date    date,
  end_date      date,
  url           character varying,
  tags          character varying,
  active        boolean not null default true,
  updated_date  timestamptz not null default now()
);

create table if not exists public.activity (
  activity_id   serial primary key,
  project_id    integer not null references public.project,
  iati_identifier character varying,
  title         character varying,
  description   character varying,
  start_date    date,
  end_date      date,
  city_village  character varying,
  tags          character varying,
  active        boolean not null default true,
  updated_date  timestamptz not null default now()
);
create index if not exists activity_project_id_idx on public.activity (project_id);

create table if not exists public.location (
  location_id   serial primary key,
  project_id    integer not null references public.project,
  activity_id   integer not null references public.activity,
  title         character varying,
  lat_dd        numeric(9,6),
  long_dd       numeric(9,6),
  active        boolean not null default true
);
create index if not exists location_activity_id_idx on public.location (activity_id);

create table if not exists public.participation (
  participation_id serial primary key,
  project_id    integer not null references public.project,
  activity_id   integer references public.activity,
  organization_id integer not null references public.organization,
  active        boolean not null default true
);
create index if not exists participation_project_id_idx on public.participation (project_id);
create index if not exists participation_activity_id_idx on public.participation (activity_id);

create table if not exists public.financial (
  financial_id  serial primary key,
  project_id    integer not null references public.project,
  activity_id   integer references public.activity,
  amount        numeric(100,2),
  start_date    date,
  end_date      date,
  active        boolean not null default true
);
create index if not exists financial_activity_id_idx on public.financial (activity_id);

-- The *_taxonomy link tables: a classification assigned to a row.
create table if not exists public.project_taxonomy (
  project_id    integer not null references public.project,
  classification_id integer not null references public.classification,
  field         character varying not null default 'project_id',
  primary key (project_id, classification_id, field)
);
create table if not exists public.activity_taxonomy (
  activity_id   integer not null references public.activity,
  classification_id integer not null references public.classification,
  field         character varying not null default 'activity_id',
  primary key (activity_id, classification_id, field)
);
create table if not exists public.location_taxonomy (
  location_id   integer not null references public.location,
  classification_id integer not null references public.classification,
  field         character varying not null default 'location_id',
  primary key (location_id, classification_id, field)
);
create table if not exists public.participation_taxonomy (
  participation_id integer not null references public.participation,
  classification_id integer not null references public.classification,
  field         character varying not null default 'participation_id',
  primary key (participation_id, classification_id, field)
);
create table if not exists public.financial_taxonomy (
  financial_id  integer not null references public.financial,
  classification_id integer not null references public.classification,
  field         character varying not null default 'financial_id',
  primary key (financial_id, classification_id, field)
);
create index if not exists activity_taxonomy_classification_idx on public.activity_taxonomy (classification_id);
create index if not exists project_taxonomy_classification_idx on public.project_taxonomy (classification_id);
create index if not exists location_taxonomy_classification_idx on public.location_taxonomy (classification_id);

-- PMT's version, as its pmt_version() reports it.
create or replace function public.pmt_version() returns text
language sql stable as $$
  select version::numeric(4,1) || '.' || iteration || '.' || changeset
  from public.config order by created_date desc, config_id desc limit 1
$$;

-- Limits that protect the service (issue 12, point 7). One application
-- session queued 1,000 exports to one address in 15 s, all mailed, and a
-- filter matching nothing ran 4.6 s inside the caller's transaction.
--
-- * pmt_jobs.export_limits: one row the operator reads and changes from psql
--   (or pins with the EXPORT_LIMIT_* / EXPORT_QUEUE_MAX / EXPORT_FILTER_TIMEOUT_MS
--   variables, written at every `pmt-worker start` and `migrate`). 0 = no limit.
-- * Per recipient and per calling role, at most N requests in any hour, then
--   SQLSTATE 22023 naming the limit and when the next is possible. The role
--   is session_user: the export functions are SECURITY DEFINER (current_user
--   is their owner) and session_user cannot be changed by SET ROLE, only by a
--   superuser. Counting is race-safe: the caller upserts a key row per role
--   and per recipient before counting, holding both until its transaction
--   ends; under READ COMMITTED the count then sees every committed request,
--   under REPEATABLE READ / SERIALIZABLE a concurrent request makes the upsert
--   fail with 40001 (retry) instead of counting from an old snapshot.
-- * Queue depth: above max_queued unfinished requests, SQLSTATE 53400.
-- * The filter's check in the caller's transaction is bounded by
--   filter_timeout. A function's `set statement_timeout` clause does not work
--   for this: PostgreSQL arms the statement timer when a top-level statement
--   starts, and a SET inside the function changes the setting, not the
--   running timer (PostgreSQL 15: enable_statement_timeout() is called only
--   from start_xact_command()). So the check runs the filter over ranges of
--   projects, growing while they are quick, and stops with SQLSTATE 57014
--   (what statement_timeout raises) once the time is used up.
-- Superusers and the role owning pmt_jobs (the worker's: it could write the
-- queue directly anyway) are not limited; their requests still count for
-- their recipients.
set local check_function_bodies = off;

create table pmt_jobs.export_limits (
  singleton              boolean primary key default true check (singleton),
  per_recipient_per_hour integer not null default 20 check (per_recipient_per_hour >= 0),
  per_role_per_hour      integer not null default 200 check (per_role_per_hour >= 0),
  max_queued             integer not null default 1000 check (max_queued >= 0),
  filter_timeout         interval not null default '5 seconds' check (filter_timeout >= interval '0'),
  updated_at             timestamptz not null default now()
);
insert into pmt_jobs.export_limits default values;

comment on table pmt_jobs.export_limits is
  'Limits of pmt_filter_csv / pmt_filter_iati / request_export (one row; 0 = no limit). Change with update; EXPORT_LIMIT_* variables, when set, overwrite them at every worker start.';
comment on column pmt_jobs.export_limits.per_recipient_per_hour is
  'Requests to one mailbox (case and +tag ignored) in any hour, by any role.';
comment on column pmt_jobs.export_limits.per_role_per_hour is
  'Requests by one login role (session_user) in any hour, to any mailbox.';
comment on column pmt_jobs.export_limits.max_queued is
  'Unfinished requests (queued, rendering, sending) above which new ones are refused.';
comment on column pmt_jobs.export_limits.filter_timeout is
  'How long pmt_filter_csv / pmt_filter_iati may spend finding whether anything matches, in the caller''s transaction.';

create trigger export_limits_touch before update on pmt_jobs.export_limits
  for each row execute function pmt_jobs.export_request_touch(); -- sets updated_at

-- Serializes the requests of one role and of one recipient (see above). The
-- key is a hash: no second copy of the addresses. Rows older than an hour are
-- pruned with the history.
create table pmt_jobs.export_limit_key (
  key        bytea primary key,
  touched_at timestamptz not null
);

-- A mailbox as the limits count it: case and a +tag ignored
-- (Ann+1@example.org and ann@example.org reach one inbox).
create function pmt_jobs.recipient_key(recipient text) returns text
language sql immutable set search_path = pg_catalog, pg_temp as $$
  select pg_catalog.lower(pg_catalog.regexp_replace(recipient, '\+[^@]*@', '@'))
$$;

create index export_request_recipient_key_idx on pmt_jobs.export_request (pmt_jobs.recipient_key(recipient), requested_at);
create index export_request_requested_by_idx on pmt_jobs.export_request (requested_by, requested_at);

create function pmt_jobs.export_limits_exempt() returns boolean
language sql stable set search_path = pg_catalog, pg_temp as $$
  select pg_catalog.pg_has_role(session_user, n.nspowner, 'USAGE')
  from pg_catalog.pg_namespace n where n.nspname = 'pmt_jobs'
$$;

-- A request over a rate limit: `what` and when the next is possible, an hour
-- after `oldest` (the lim-th newest request), rounded up to the minute.
create function pmt_jobs.refuse_export(what text, oldest timestamptz, setting text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  next_at timestamptz := oldest + interval '1 hour';
begin
  raise exception using errcode = '22023',
    message = pg_catalog.format('%s; the next is possible after %s', what,
      pg_catalog.to_char(pg_catalog.date_trunc('minute', next_at + interval '59.999999 seconds') at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
    detail = pg_catalog.format('retry after %s', pg_catalog.to_char(next_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
    hint = pg_catalog.format('The limit is pmt_jobs.export_limits.%s.', setting);
end
$$;

-- Refuses a request over a limit (22023: rate; 53400: queue full). With
-- `reserve`, first takes the role's and the recipient's key rows (in that
-- order, the same for every caller of a role) until the transaction ends.
create function pmt_jobs.check_export_limits(recipient text, reserve boolean) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  lim pmt_jobs.export_limits;
  who text := session_user;
  mailbox text := pmt_jobs.recipient_key(recipient);
  n bigint;
  oldest timestamptz;
begin
  if pmt_jobs.export_limits_exempt() then
    return;
  end if;
  select * into lim from pmt_jobs.export_limits;
  if not found then
    return; -- the row was deleted: no limits
  end if;
  if reserve then
    insert into pmt_jobs.export_limit_key as k (key, touched_at)
    values (pg_catalog.sha256(pg_catalog.convert_to('role:' || who, 'UTF8')), pg_catalog.now()),
           (pg_catalog.sha256(pg_catalog.convert_to('recipient:' || mailbox, 'UTF8')), pg_catalog.now())
    on conflict (key) do update set touched_at = excluded.touched_at;
  end if;
  if lim.per_role_per_hour > 0 then
    select pg_catalog.count(*), pg_catalog.min(r.requested_at) into n, oldest
    from (select e.requested_at from pmt_jobs.export_request e
          where e.requested_by = who and e.requested_at > pg_catalog.now() - interval '1 hour'
          order by e.requested_at desc limit lim.per_role_per_hour) r;
    if n >= lim.per_role_per_hour then
      perform pmt_jobs.refuse_export(pg_catalog.format('at most %s exports per hour may be requested by the role %s', lim.per_role_per_hour, who),
                                     oldest, 'per_role_per_hour (EXPORT_LIMIT_PER_ROLE)');
    end if;
  end if;
  if lim.per_recipient_per_hour > 0 then
    select pg_catalog.count(*), pg_catalog.min(r.requested_at) into n, oldest
    from (select e.requested_at from pmt_jobs.export_request e
          where pmt_jobs.recipient_key(e.recipient) = mailbox and e.requested_at > pg_catalog.now() - interval '1 hour'
          order by e.requested_at desc limit lim.per_recipient_per_hour) r;
    if n >= lim.per_recipient_per_hour then
      perform pmt_jobs.refuse_export(pg_catalog.format('at most %s exports per hour to %s', lim.per_recipient_per_hour, recipient),
                                     oldest, 'per_recipient_per_hour (EXPORT_LIMIT_PER_RECIPIENT)');
    end if;
  end if;
  if lim.max_queued > 0 then
    select pg_catalog.count(*) into n
    from (select 1 from pmt_jobs.export_request e where e.status not in ('sent', 'failed') limit lim.max_queued) q;
    if n >= lim.max_queued then
      raise exception using errcode = '53400',
        message = pg_catalog.format('the export queue is full: %s exports are waiting (at most %s); try again later', n, lim.max_queued),
        hint = 'The limit is pmt_jobs.export_limits.max_queued (EXPORT_QUEUE_MAX).';
    end if;
  end if;
end
$$;

-- 0009's selection, unchanged but for an optional range of projects
-- (project_from, project_to), so the caller's check can go range by range.
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

-- Whether the filter matches anything, within pmt_jobs.export_limits.filter_timeout:
-- the projects are taken in ranges (32 first, then sized to take about a
-- quarter of the timeout at the rate seen so far), and the time is checked
-- between ranges. A range under way is finished, so the bound is the timeout
-- plus one range (about a quarter more, when the projects are alike).
create function pmt_jobs.filter_matches(filters jsonb) returns boolean
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

-- The general form: validate, check the limits, record the request, enqueue
-- its job, in the caller's transaction. Returns the request id.
-- (0003's body, with the limits.)
create or replace function pmt_jobs.request_export(format text, recipient text, filters jsonb) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  request_id bigint;
begin
  if format is null or format not in ('csv', 'iati') then
    perform pmt_jobs.invalid('format', format('%s: expected ''csv'' or ''iati''', coalesce(quote_literal(format), 'null')));
  end if;
  recipient := pmt_jobs.check_mailbox('recipient', recipient);
  filters := pmt_jobs.check_filters(filters);
  perform pmt_jobs.check_export_limits(recipient, true);
  insert into pmt_jobs.export_request (format, recipient, filters, instance)
  values (format, recipient, filters, current_database())
  returning id into request_id;
  perform pmt_jobs.enqueue_export(request_id);
  return request_id;
end
$$;

-- PMT 2.0's export functions, behind public.pmt_filter_csv / pmt_filter_iati
-- (0008's body, with the limits): a caller over a limit is refused before the
-- filter runs, and the filter's check is bounded by filter_timeout.
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
  -- Refused before the filter runs; request_export checks again holding the keys.
  perform pmt_jobs.check_export_limits(email, false);
  if not pmt_jobs.filter_matches(filters) then
    return false;
  end if;
  perform pmt_jobs.request_export(format, email, filters);
  return true;
end
$$;

revoke execute on all functions in schema pmt_jobs from public;

-- A worker process runs two graphile-worker runners (exports and other jobs;
-- maintenance in slots of its own): one heartbeat row, whose id is the first
-- runner's, and the others' ids here, so a dead process's jobs are all released.
alter table pmt_jobs.worker add column runner_ids text[] not null default '{}';
comment on column pmt_jobs.worker.runner_ids is
  'graphile-worker ids of this process''s other runners (maintenance), released with it when it stops heartbeating.';

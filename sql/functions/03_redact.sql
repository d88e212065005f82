-- The job payload as history keeps it: secrets removed (keys that look like
-- passwords, tokens, keys; passwords inside URLs and key=value strings),
-- the SQL form of src/redact.ts (SECRET_KEY, URL_PASSWORD, KV_PASSWORD: the
-- same patterns, character for character; test/rules/agreement.test.ts runs
-- one corpus of keys and texts through both),
-- strings cut to 200 characters, arrays to 20 items, depth to 4.
-- plpgsql, not SQL: a SQL function called from a trigger is planned anew on
-- every call (about 0.8 ms here), a plpgsql one once per session.
create or replace function pmt_jobs.redact_json(v jsonb, depth integer) returns jsonb
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
declare
  s text;
  n integer;
begin
  case jsonb_typeof(v)
    when 'object' then
      if depth >= 4 then return '"{…}"'::jsonb; end if;
      return coalesce((
        select jsonb_object_agg(key,
          case when key ~* 'pass(word)?|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth|cookie|session'
               then '"***"'::jsonb
               else pmt_jobs.redact_json(value, depth + 1) end)
        from jsonb_each(v)), '{}'::jsonb);
    when 'array' then
      n := jsonb_array_length(v);
      if depth >= 4 then return to_jsonb('[array of ' || n || ']'); end if;
      return coalesce((
          select jsonb_agg(pmt_jobs.redact_json(e, depth + 1) order by i)
          from jsonb_array_elements(v) with ordinality as a(e, i)
          where i <= 20), '[]'::jsonb)
        || case when n > 20 then jsonb_build_array('… (+' || (n - 20) || ' more)') else '[]'::jsonb end;
    when 'string' then
      s := regexp_replace(
             regexp_replace(v #>> '{}', '([a-z][a-z0-9+.-]*://[^:/?#@[:space:]]*):([^@/?#[:space:]]*)@', '\1:***@', 'gi'),
             '(password|passwd|pwd)=([^[:space:]&;]+)', '\1=***', 'gi');
      if length(s) > 200 then s := left(s, 200) || '… (' || length(s) || ' chars)'; end if;
      return to_jsonb(s);
    else
      return v;
  end case;
end
$$;

-- A payload summary is an object of at most 4000 characters of JSON.
create or replace function pmt_jobs.summarize_payload(payload json) returns jsonb
language plpgsql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
declare
  summary jsonb := pmt_jobs.redact_json(coalesce(payload::jsonb, 'null'::jsonb), 0);
begin
  if jsonb_typeof(summary) <> 'object' then
    summary := jsonb_build_object('value', summary);
  end if;
  if length(summary::text) <= 4000 then
    return summary;
  end if;
  return jsonb_build_object(
    'truncated', true,
    'bytes', length(summary::text),
    'keys', (select jsonb_agg(k) from (select k from jsonb_object_keys(summary) as k limit 50) as keys));
end
$$;

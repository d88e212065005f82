-- The mailbox rule, SQL's form: one mailbox, local@domain, nothing a shell,
-- a header, a path or a mail relay could misread; at most 254 characters,
-- 64 before the @ (RFC 5321). No % before @ (issue 12, point 8):
-- `user%host@relay` is old relay routing, which a permissive mail server
-- forwards to user@host, so an address that looks like the relay's could
-- reach any host.
--
-- TypeScript's form is src/mail/mailbox.ts (MAILBOX, mailboxProblem): the
-- pattern below is its MAILBOX's source, character for character, and
-- test/rules/agreement.test.ts runs one corpus of addresses through both.
create or replace function pmt_jobs.check_mailbox(arg text, value text) returns text
language plpgsql immutable set search_path = pg_catalog, pg_temp as $$
declare
  mailbox constant text := '^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$';
begin
  if value is null or value = '' then
    perform pmt_jobs.invalid(arg, 'an email address is required');
  end if;
  if length(value) > 254 then
    perform pmt_jobs.invalid(arg, 'is ' || length(value) || ' characters long; an email address has at most 254');
  end if;
  if value !~ mailbox then
    -- A mailbox but for a % before @: say so, it is a reason people would not guess.
    if replace(value, '%', '_') ~ mailbox then
      perform pmt_jobs.invalid(arg, format('%s: %% before @ (relay routing, user%%host@relay) is not accepted; expected name@example.org',
        quote_literal(value)));
    end if;
    perform pmt_jobs.invalid(arg, format('%s is not a single valid mailbox: expected name@example.org '
      '(letters, digits and . _ + - before one @; no spaces, quotes, slashes or shell characters)', quote_literal(value)));
  end if;
  if length(split_part(value, '@', 1)) > 64 then
    perform pmt_jobs.invalid(arg, format('%s...: the part before @ has %s characters; at most 64', left(value, 20), length(split_part(value, '@', 1))));
  end if;
  return value;
end
$$;

/**
 * The one rule for a recipient address, TypeScript's form (drop-folder names,
 * ALERT_EMAIL); SQL's is pmt_jobs.check_mailbox (sql/functions/02_mailbox.sql:
 * every export request), which holds MAILBOX's pattern character for character
 * (test/rules/agreement.test.ts runs one corpus through both). One plain
 * mailbox, nothing a shell, header, path or mail relay could misread. No `%`
 * in the part before @: `user%host@relay` is old relay routing, which a
 * permissive server would forward to `user@host`. Pure.
 */
export const MAILBOX =
  /^[A-Za-z0-9_+-]+(\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;

/** What is wrong with `address` as one recipient (check_mailbox's words), or undefined when nothing is. */
export function mailboxProblem(address: string): string | undefined {
  if (address.length > 254) return `is ${address.length} characters long; an email address has at most 254`;
  if (!MAILBOX.test(address)) {
    // A mailbox but for a % before @: say so, it is a reason people would not guess.
    if (MAILBOX.test(address.replace(/%/g, "_")))
      return `${JSON.stringify(address)}: % before @ (relay routing, user%host@relay) is not accepted; expected name@example.org`;
    return `${JSON.stringify(address)} is not a single valid mailbox`;
  }
  const local = address.slice(0, address.lastIndexOf("@"));
  if (local.length > 64) return `the part before @ has ${local.length} characters; at most 64`;
  return undefined;
}

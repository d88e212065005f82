import { InvalidArgumentError } from "commander";
import { UserError } from "../errors.js";

export function positiveInt(max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new InvalidArgumentError(`expected a whole number from 1 to ${max}`);
    }
    return Number(value);
  };
}

export function oneOf<T extends string>(values: readonly T[]) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) {
      throw new InvalidArgumentError(`expected one of ${values.join(", ")}`);
    }
    return value as T;
  };
}

/**
 * A backup's catalog id. Checked in the action (commander reports a bad
 * argument only through an error the action would swallow), before any database is opened.
 */
export function backupId(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 2 ** 31) {
    throw new UserError(`${JSON.stringify(value.slice(0, 40))} is not a backup id: expected the number in the id column of pmt-worker backup list`);
  }
  return Number(value);
}

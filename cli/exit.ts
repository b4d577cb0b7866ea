import { ConfigError } from '../schemas/errors.js';

/** Exit codes: 0 ok, 1 failure at run time (or differences found), 2 bad configuration. */
export const EXIT = { ok: 0, failure: 1, config: 2 } as const;

/** Prints an error the way users should see it (no stack for expected errors) and returns its exit code. */
export function reportError(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const line of err.problems) process.stderr.write(`${line}\n`);
    return EXIT.config;
  }
  const e = err as Error;
  process.stderr.write(`error: ${e.message ?? String(err)}\n`);
  if (process.env.CDC_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
  return EXIT.failure;
}

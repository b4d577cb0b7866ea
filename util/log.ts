import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger (pino: JSON lines on stderr, so stdout stays for command output).
 * Fields that may hold secrets are redacted wherever they appear.
 */
export function createLogger(level: string = process.env.CDC_LOG_LEVEL ?? 'info', name = 'cdc'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['password', '*.password', 'url', '*.url', 'connectionString', '*.connectionString'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}

let root: Logger | undefined;

/** Shared root logger; modules take a child of it. */
export function logger(): Logger {
  root ??= createLogger();
  return root;
}

export function setLogger(l: Logger): void {
  root = l;
}

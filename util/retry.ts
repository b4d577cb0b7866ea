import { isRetriable } from '../schemas/errors.js';

/**
 * The one retry function (kafkajs `src/retry`): exponential backoff with jitter, retrying only
 * errors marked retriable. Defaults suit production; tests pass {@link TEST_RETRY}.
 */
export interface RetryOptions {
  /** @defaultValue 300 */
  initialDelayMs: number;
  /** @defaultValue 30000 */
  maxDelayMs: number;
  /** @defaultValue 2 */
  factor: number;
  /** Fraction of the delay randomised, 0..1. @defaultValue 0.2 */
  jitter: number;
  /** Attempts before giving up; Infinity retries forever. @defaultValue Infinity */
  maxAttempts: number;
  /** Which errors to retry. @defaultValue isRetriable */
  retriable: (err: unknown) => boolean;
  /** Called before each wait. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

export const DEFAULT_RETRY: RetryOptions = {
  initialDelayMs: 300,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.2,
  maxAttempts: Number.POSITIVE_INFINITY,
  retriable: isRetriable,
};

export const TEST_RETRY: Partial<RetryOptions> = { initialDelayMs: 20, maxDelayMs: 500, maxAttempts: 50 };

export function backoffDelay(attempt: number, o: Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs' | 'factor' | 'jitter'>, rand = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** (attempt - 1));
  return Math.round(base * (1 - o.jitter + 2 * o.jitter * rand()));
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: Partial<RetryOptions> = {}): Promise<T> {
  const o = { ...DEFAULT_RETRY, ...opts };
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.maxAttempts || !o.retriable(err) || o.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, o);
      o.onRetry?.(err, attempt, delay);
      await sleep(delay, o.signal);
    }
  }
}

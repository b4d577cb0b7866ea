import { type ConnectionOptions, type JobsOptions, Queue, QueueEvents, Worker, type Processor } from 'bullmq';
import { Redis } from 'ioredis';
import { CdcError } from '../../schemas/errors.js';

/**
 * bullmq plumbing for snapshot, backfill and verify jobs. One set of queues per pipeline, under
 * the Redis key prefix `cdc:<pipeline>` so pipelines (and test runs) never see each other's jobs.
 *
 * Crash safety: a worker killed with -9 stops renewing its job lock; after `lockDurationMs` the
 * stalled-job check puts the job back in the wait list and another worker (or the restarted one)
 * runs it again. Processors are therefore idempotent (see snapshot-chunk.ts, verify.ts).
 */

/** Queue names; `snapshot-local-<run>` holds chunks only the process holding their consistent read can run (MySQL). */
export type JobKind = 'snapshot' | 'verify' | 'incremental' | `snapshot-local-${string}`;

export interface JobsConfig {
  pipeline: string;
  redisUrl: string;
}

export function keyPrefix(pipeline: string): string {
  return `cdc:${pipeline}`;
}

/** A Redis connection bullmq can block on (workers need maxRetriesPerRequest: null). */
export function redisConnection(url: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false });
  r.on('error', () => undefined); // ioredis reconnects by itself; commands report failures
  return r;
}

/**
 * Lock and stall settings. A short lock means a killed worker's chunk is picked up again
 * quickly; the lock is renewed at half its duration while the job runs.
 */
export interface WorkerTuning {
  /** @defaultValue 15000 (CDC_JOB_LOCK_MS) */
  lockDurationMs: number;
  /** @defaultValue 5000 (CDC_JOB_STALLED_MS) */
  stalledIntervalMs: number;
  /** Times a job may be found stalled (its worker died) before it fails. @defaultValue 10 */
  maxStalledCount: number;
}

export function workerTuning(): WorkerTuning {
  return {
    lockDurationMs: Number(process.env.CDC_JOB_LOCK_MS ?? 15_000),
    stalledIntervalMs: Number(process.env.CDC_JOB_STALLED_MS ?? 5_000),
    maxStalledCount: 10,
  };
}

export function jobOptions(attempts: number, backoffMs: number): JobsOptions {
  return {
    attempts,
    backoff: { type: 'exponential', delay: backoffMs },
    // Keep finished jobs for `cdc status` and the report; the run's own records outlive them.
    removeOnComplete: { age: 7 * 24 * 3600, count: 100_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export function createQueue<T = unknown, R = unknown>(c: JobsConfig, kind: JobKind, connection?: ConnectionOptions): Queue<T, R> {
  return new Queue<T, R>(kind, { connection: connection ?? redisConnection(c.redisUrl), prefix: keyPrefix(c.pipeline) });
}

export function createQueueEvents(c: JobsConfig, kind: JobKind): QueueEvents {
  return new QueueEvents(kind, { connection: redisConnection(c.redisUrl), prefix: keyPrefix(c.pipeline) });
}

export function createWorker<T, R>(c: JobsConfig, kind: JobKind, processor: Processor<T, R>, concurrency: number): Worker<T, R> {
  const t = workerTuning();
  const w = new Worker<T, R>(kind, processor, {
    connection: redisConnection(c.redisUrl),
    prefix: keyPrefix(c.pipeline),
    concurrency,
    lockDuration: t.lockDurationMs,
    stalledInterval: t.stalledIntervalMs,
    maxStalledCount: t.maxStalledCount,
  });
  w.on('error', () => undefined); // connection errors: bullmq retries; job errors arrive as 'failed'
  return w;
}

/** Fails fast with a clear message when Redis does not answer. */
export async function checkRedis(url: string): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true, connectTimeout: 3000, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
  } catch (err) {
    throw new CdcError(`Redis at ${url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@')} does not answer (redis.url): ${(err as Error).message}`, { retriable: true, code: 'REDIS', cause: err });
  } finally {
    r.disconnect();
  }
}

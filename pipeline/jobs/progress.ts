import type { Redis } from 'ioredis';
import { keyPrefix } from './queues.js';

/**
 * Run records in Redis, shared by the process that plans a run, the workers that execute its
 * chunks and `cdc status`. Counters are only ever incremented by a chunk that actually finished
 * (after its effect committed), so the numbers are what is done, not what was attempted.
 *
 *   cdc:<pipeline>:runs                       zset  runId by start time
 *   cdc:<pipeline>:run:<id>                   hash  kind, source, sink, status, startedAt, finishedAt, note
 *   cdc:<pipeline>:run:<id>:tables            hash  table -> JSON {chunks, estRows}
 *   cdc:<pipeline>:run:<id>:rows              hash  table -> rows done
 *   cdc:<pipeline>:run:<id>:chunks            hash  table -> chunks done
 *   cdc:<pipeline>:run:<id>:done              set   finished chunk ids
 *   cdc:<pipeline>:run:<id>:tstart / :tend    hash  table -> ms of first chunk start / last chunk end
 */

export type RunKind = 'snapshot' | 'verify' | 'incremental';
export type RunStatus = 'planning' | 'running' | 'done' | 'failed';

export interface RunInfo {
  id: string;
  kind: RunKind;
  source: string;
  sink: string | null;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | null;
  note: string;
}

export interface TableProgress {
  table: string;
  chunks: number;
  chunksDone: number;
  estRows: number;
  rowsDone: number;
  startedAt: number | null;
  endedAt: number | null;
}

export interface ProgressView extends TableProgress {
  /** Rows per second since the table's first chunk started. */
  rate: number;
  /** Seconds to go at that rate, null when unknown. */
  etaS: number | null;
  done: boolean;
}

export function runKey(pipeline: string, runId: string): string {
  return `${keyPrefix(pipeline)}:run:${runId}`;
}

/** KEYS: done set, rows hash, chunks hash, tend hash. ARGV: chunk id, table, rows, now (ms). */
const CHUNK_DONE = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[4])
return 1
`;

export class RunStore {
  constructor(
    private readonly redis: Redis,
    readonly pipeline: string,
  ) {}

  private k(runId: string, part = ''): string {
    return `${runKey(this.pipeline, runId)}${part ? `:${part}` : ''}`;
  }

  async create(run: Omit<RunInfo, 'finishedAt' | 'status'> & { status?: RunStatus }): Promise<void> {
    await this.redis
      .multi()
      .hset(this.k(run.id), { kind: run.kind, source: run.source, sink: run.sink ?? '', status: run.status ?? 'planning', startedAt: String(run.startedAt), note: run.note })
      .zadd(`${keyPrefix(this.pipeline)}:runs`, run.startedAt, run.id)
      .exec();
  }

  async exists(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.k(runId))) === 1;
  }

  async setStatus(runId: string, status: RunStatus, note?: string): Promise<void> {
    const fields: Record<string, string> = { status };
    if (status === 'done' || status === 'failed') fields.finishedAt = String(Date.now());
    if (note !== undefined) fields.note = note;
    await this.redis.hset(this.k(runId), fields);
  }

  async setMeta(runId: string, field: string, value: string): Promise<void> {
    await this.redis.hset(this.k(runId), `meta:${field}`, value);
  }

  async getMeta(runId: string, field: string): Promise<string | null> {
    return this.redis.hget(this.k(runId), `meta:${field}`);
  }

  async get(runId: string): Promise<RunInfo | null> {
    const h = await this.redis.hgetall(this.k(runId));
    if (!h.kind) return null;
    return {
      id: runId,
      kind: h.kind as RunKind,
      source: h.source ?? '',
      sink: h.sink ? h.sink : null,
      status: (h.status ?? 'planning') as RunStatus,
      startedAt: Number(h.startedAt ?? 0),
      finishedAt: h.finishedAt ? Number(h.finishedAt) : null,
      note: h.note ?? '',
    };
  }

  /** Latest runs first. */
  async list(limit = 20): Promise<RunInfo[]> {
    const ids = await this.redis.zrevrange(`${keyPrefix(this.pipeline)}:runs`, 0, limit - 1);
    const runs = await Promise.all(ids.map((id) => this.get(id)));
    return runs.filter((r): r is RunInfo => r !== null);
  }

  async addTable(runId: string, table: string, chunks: number, estRows: number): Promise<void> {
    await this.redis.hset(this.k(runId, 'tables'), table, JSON.stringify({ chunks, estRows }));
  }

  /** Marks the run as driven by a live process for `ttlMs` (refreshed while it runs). */
  async lease(runId: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.k(runId, 'lease'), String(process.pid), 'PX', ttlMs);
  }

  async leaseAlive(runId: string): Promise<boolean> {
    return (await this.redis.exists(this.k(runId, 'lease'))) === 1;
  }

  /** Keeps a table's chunk plan with the run, so a crashed run's unfinished chunks can be found. */
  async savePlan(runId: string, table: string, plan: unknown): Promise<void> {
    await this.redis.hset(this.k(runId, 'plan'), table, JSON.stringify(plan));
  }

  async plans<T>(runId: string): Promise<Map<string, T>> {
    const h = await this.redis.hgetall(this.k(runId, 'plan'));
    return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as T]));
  }

  async isChunkDone(runId: string, chunkId: string): Promise<boolean> {
    return (await this.redis.sismember(this.k(runId, 'done'), chunkId)) === 1;
  }

  async doneChunks(runId: string): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.k(runId, 'done')));
  }

  async chunkStarted(runId: string, table: string): Promise<void> {
    await this.redis.hsetnx(this.k(runId, 'tstart'), table, String(Date.now()));
  }

  /**
   * Records a finished chunk once, in one Lua script so Redis runs it as a unit: SADD decides,
   * so a chunk redone after a crash between its commit and this call is not counted twice, and
   * the counters move with the set: a worker killed while recording leaves both or neither (a
   * chunk in the set but not counted would be skipped by its retry and keep its run from ending).
   */
  async chunkDone(runId: string, table: string, chunkId: string, rows: number): Promise<boolean> {
    const keys = ['done', 'rows', 'chunks', 'tend'].map((p) => this.k(runId, p));
    const added = await this.redis.eval(CHUNK_DONE, keys.length, ...keys, chunkId, table, rows, Date.now());
    return added === 1;
  }

  /** Adds rows to a table's counter without finishing a chunk (incremental windows). */
  async addRows(runId: string, table: string, rows: number): Promise<void> {
    await this.redis.multi().hincrby(this.k(runId, 'rows'), table, rows).hset(this.k(runId, 'tend'), table, String(Date.now())).exec();
  }

  async tables(runId: string): Promise<TableProgress[]> {
    const [tables, rows, chunks, tstart, tend] = await Promise.all(
      ['tables', 'rows', 'chunks', 'tstart', 'tend'].map((p) => this.redis.hgetall(this.k(runId, p))),
    );
    return Object.entries(tables!)
      .map(([table, json]) => {
        const t = JSON.parse(json) as { chunks: number; estRows: number };
        return {
          table,
          chunks: t.chunks,
          chunksDone: Number(chunks![table] ?? 0),
          estRows: t.estRows,
          rowsDone: Number(rows![table] ?? 0),
          startedAt: tstart![table] ? Number(tstart![table]) : null,
          endedAt: tend![table] ? Number(tend![table]) : null,
        };
      })
      .sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0));
  }

  /** Deletes a run's records (tests; `cdc status --prune`). */
  async remove(runId: string): Promise<void> {
    await this.redis.del(...['', 'tables', 'rows', 'chunks', 'done', 'tstart', 'tend', 'plan', 'lease'].map((p) => this.k(runId, p)));
    await this.redis.zrem(`${keyPrefix(this.pipeline)}:runs`, runId);
  }
}

/** Rate and ETA of one table. Pure, so `cdc status` and the progress bars agree. */
export function progressView(t: TableProgress, now = Date.now()): ProgressView {
  const done = t.chunksDone >= t.chunks && t.chunks > 0;
  const end = done && t.endedAt !== null ? t.endedAt : now;
  const elapsedS = t.startedAt === null ? 0 : Math.max(0.001, (end - t.startedAt) / 1000);
  const rate = elapsedS > 0 ? t.rowsDone / elapsedS : 0;
  // The estimate can be below the truth (statistics); never show less to do than is done.
  const total = Math.max(t.estRows, t.rowsDone);
  const etaS = done ? 0 : rate > 0 ? Math.max(0, (total - t.rowsDone) / rate) : null;
  return { ...t, estRows: done ? t.rowsDone : total, rate, etaS, done };
}

export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--';
  const sec = Math.round(s);
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const r = sec % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

export function formatRate(rate: number): string {
  if (rate >= 1e6) return `${(rate / 1e6).toFixed(2)}M/s`;
  if (rate >= 1e3) return `${(rate / 1e3).toFixed(1)}k/s`;
  return `${Math.round(rate)}/s`;
}

/** One line per table: `table  rows/total  pct  rate  eta`, for `cdc status` and non-TTY output. */
export function formatProgressLine(v: ProgressView): string {
  const pct = v.estRows > 0 ? Math.min(100, (100 * v.rowsDone) / v.estRows) : v.done ? 100 : 0;
  return `${v.table}  ${v.rowsDone}/${v.estRows} rows  ${pct.toFixed(1)}%  chunks ${v.chunksDone}/${v.chunks}  ${formatRate(v.rate)}  ETA ${v.done ? 'done' : formatDuration(v.etaS)}`;
}

import type { SourceBatch, SourceRecord } from '../../connectors/source.js';
import { type ChangeEvent, eventKey, eventOldKey } from '../../schemas/change-event.js';
import type { Row, SourcePosition, TableId, TableSchema } from '../../schemas/index.js';
import { snapshotEvent } from './events.js';

/**
 * The watermark window processor of incremental snapshots (DBLog, Debezium's incremental
 * snapshots). It sits in the source runner's path and sees every record in log order.
 *
 * A window job writes a LOW watermark row into the signal table, reads one key-range chunk of a
 * table, stores the rows, and writes a HIGH watermark row. Both rows arrive here in log order:
 *
 *  - between LOW and HIGH, every key of that table that the log changes is noted;
 *  - at HIGH, the chunk's rows whose keys were not changed in the window are emitted as `op: r`
 *    events at HIGH's place in the log, followed by deletes for replica keys the chunk lacks.
 *
 * Why that is exact: a row the log did not touch between LOW and HIGH had the same value during
 * the whole window, so the value read (at some instant inside it) is its value at HIGH; a row
 * the log touched is left to the log, whose events before and after HIGH are published in order
 * anyway. No event is held back or reordered, and the stream never stops.
 */

/** Signal row types written by window jobs (the `type` column of the signal table). */
export const SIGNAL = { open: 'snapshot-window-open', close: 'snapshot-window-close' } as const;

/** What the window job stored for the processor, by window id. */
export interface WindowPayload {
  window: string;
  schema: TableSchema;
  rows: Row[];
  /** Replica keys in the chunk's range that the source chunk lacks (canonical, source key types). */
  extraKeys: Row[];
}

export interface WindowStore {
  /** The chunk read for a window, or null when it is unknown (expired, or never written). */
  load(window: string): Promise<WindowPayload | null>;
  /** The window's events are in Kafka: its job may finish. */
  emitted(window: string, rows: number, deletes: number): Promise<void>;
  /** The window cannot be completed (its LOW watermark was not seen): its job retries with a new window. */
  abandoned(window: string, reason: string): Promise<void>;
}

interface OpenWindow {
  table: string;
  keys: Set<string>;
}

function tableOf(id: TableId): string {
  return `${id.db}\u0000${id.schema ?? ''}\u0000${id.table}`;
}

function keyString(row: Row | null): string | null {
  return row === null ? null : JSON.stringify(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => (typeof v === 'number' ? String(v) : v)));
}

function keyOfRow(schema: TableSchema, row: Row): string {
  return keyString(Object.fromEntries(schema.primaryKey.map((k) => [k, row[k] ?? null])))!;
}

export interface WindowProcessorOptions {
  sourceName: string;
  /** The signal table's identity at the source (db is matched when not empty). */
  signal: { schema: string | null; table: string; db?: string };
  store: WindowStore;
  /** `source.origin` of the stream's events (defaults to the source name). */
  origin?: string;
  now?: () => number;
}

export class WindowProcessor {
  private readonly open = new Map<string, OpenWindow>();
  private readonly now: () => number;

  constructor(private readonly o: WindowProcessorOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Windows currently open (for tests and status). */
  get openWindows(): string[] {
    return [...this.open.keys()];
  }

  private isSignal(e: ChangeEvent): boolean {
    const id = e.schema.id;
    return id.table === this.o.signal.table && id.schema === this.o.signal.schema && (!this.o.signal.db || id.db === this.o.signal.db);
  }

  /**
   * Rewrites one batch: signal rows are consumed, window rows are inserted at their HIGH
   * watermark. Returns the batch to publish and what to confirm once it is published.
   */
  async process(batch: SourceBatch): Promise<{ batch: SourceBatch; closed: { window: string; rows: number; deletes: number }[] }> {
    const out: SourceRecord[] = [];
    const closed: { window: string; rows: number; deletes: number }[] = [];
    for (const rec of batch.records) {
      if (rec.type !== 'change') {
        out.push(rec);
        continue;
      }
      const e = rec.event;
      if (this.isSignal(e)) {
        const after = e.after;
        if (e.op !== 'c' || after === null) continue;
        const type = String(after.type ?? '');
        const data = safeJson(String(after.data ?? '{}'));
        const window = String(data.window ?? '');
        if (type === SIGNAL.open && window) {
          this.open.set(window, { table: String(data.table ?? ''), keys: new Set() });
        } else if (type === SIGNAL.close && window) {
          const w = this.open.get(window);
          this.open.delete(window);
          if (!w) {
            // LOW is behind our resume point (restart inside the window): what changed in the
            // window is unknown, so nothing from this chunk may be emitted.
            await this.o.store.abandoned(window, 'low watermark not seen');
            continue;
          }
          const payload = await this.o.store.load(window);
          if (!payload) {
            await this.o.store.abandoned(window, 'chunk rows not found');
            continue;
          }
          const emitted = this.emit(payload, w.keys, e, out);
          closed.push({ window, ...emitted });
        }
        continue; // signal rows never reach Kafka
      }
      if (this.open.size > 0 && (e.op === 'c' || e.op === 'u' || e.op === 'd' || e.op === 't')) {
        const t = tableOf(e.schema.id);
        for (const w of this.open.values()) {
          if (w.table !== t) continue;
          if (e.op === 't') {
            // A truncate changes every key: mark the window as fully touched.
            w.keys.add('*');
            continue;
          }
          const k = keyString(eventKey(e));
          if (k !== null) w.keys.add(k);
          const old = keyString(eventOldKey(e));
          if (old !== null) w.keys.add(old);
        }
      }
      out.push(rec);
    }
    return { batch: { records: out, checkpoint: batch.checkpoint }, closed };
  }

  /**
   * The window's rows take the HIGH watermark's place in the log: its position and its commit
   * time, so a last-writer-wins sink orders them after every change before HIGH and before every
   * change after it.
   */
  private emit(p: WindowPayload, touched: Set<string>, high: ChangeEvent, out: SourceRecord[]): { rows: number; deletes: number } {
    if (touched.has('*')) return { rows: 0, deletes: 0 };
    const at: SourcePosition = high.position;
    const ts = { tsMs: high.source.ts_ms, ...(high.source.ts_us !== undefined ? { tsUs: high.source.ts_us } : {}), origin: high.source.origin ?? this.o.origin ?? this.o.sourceName };
    let seq = 1_000_000;
    let rows = 0;
    for (const r of p.rows) {
      if (touched.has(keyOfRow(p.schema, r))) continue;
      out.push({ type: 'change', event: snapshotEvent(this.o.sourceName, p.schema, r, at, seq++, ts, 'incremental') });
      rows++;
    }
    let deletes = 0;
    for (const k of p.extraKeys) {
      if (touched.has(keyOfRow(p.schema, k))) continue;
      const ev = snapshotEvent(this.o.sourceName, p.schema, k, at, seq++, ts, 'incremental');
      out.push({ type: 'change', event: { ...ev, op: 'd', before: k, after: null } });
      deletes++;
    }
    return { rows, deletes };
  }
}

function safeJson(s: string): Record<string, unknown> {
  try {
    const v = JSON.parse(s) as unknown;
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** `table` value a window job writes, matching `tableOf` above. */
export function windowTable(id: TableId): string {
  return tableOf(id);
}

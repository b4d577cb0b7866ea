import type { SourceBatch, SourceConnector, SourceRecord } from '../../connectors/source.js';
import { type ChangeEvent, eventKey, type TransactionEvent } from '../../schemas/change-event.js';
import type { ColumnValue, Row } from '../../schemas/column-types.js';
import { tableName, type TableSchema } from '../../schemas/table-schema.js';
import { keyText } from '../../sinks/apply.js';
import { VERSION_COLUMNS } from '../../sinks/dialect.js';
import { logger } from '../../util/log.js';
import { counter } from '../../util/metrics.js';
import { OUTBOX_TABLE } from './config.js';

/**
 * The source side of a mesh node. The node's connector already skips what the node's sink
 * applied (`localOnly`); this wrapper turns what is left (local writes) into mesh events:
 *
 * - the event's version is the one the node's triggers gave the write (`_cdc_ts`, a hybrid
 *   logical clock reading) and its origin is the node: `source.ts_us` / `ts_ms` / `origin` carry
 *   them, so the sinks' LWW compares exactly what the writing node stored;
 * - a delete takes its version from the outbox record the delete trigger wrote just before it,
 *   in the same transaction (the deleted row is gone, the tombstone is in the bookkeeping schema);
 * - the version columns are removed from rows and schemas (the sinks write their own);
 * - outbox records are dropped, and transaction END counts corrected for them.
 */

const meshEvents = counter('cdc_mesh_events_total', 'Local changes a mesh node published, by how their version was found', ['node', 'version']);

export interface MeshSourceOptions {
  node: string;
  /** Schema (PostgreSQL) / database (MySQL) of the mesh bookkeeping tables. */
  metaSchema: string;
}

const HIDDEN = new Set<string>(Object.values(VERSION_COLUMNS));

function strip(row: Row | null): Row | null {
  if (row === null) return null;
  let out: Row | null = null;
  for (const k of Object.keys(row)) {
    if (HIDDEN.has(k)) {
      out ??= { ...row };
      delete out[k];
    }
  }
  return out ?? row;
}

function bigintOf(v: ColumnValue | undefined): bigint | null {
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return null;
}

/** Commit time of the event in microseconds (the fallback version). */
function commitUs(e: ChangeEvent): bigint {
  return e.source.ts_us !== undefined ? BigInt(e.source.ts_us) : BigInt(e.source.ts_ms) * 1000n;
}

export interface MeshTransform {
  (batch: SourceBatch): SourceBatch;
}

/** The stateful batch transform (state: the open transaction's outbox records). Exported for tests. */
export function meshTransform(o: MeshSourceOptions): MeshTransform {
  const schemas = new WeakMap<TableSchema, TableSchema>();
  /** Outbox records of the open transactions: txId → `<table>\0<keyText>` → version (and vector). */
  const outbox = new Map<string, Map<string, { ts: bigint; vv: string | null }>>();
  /** Outbox events dropped per open transaction and data collection (END counts). */
  const dropped = new Map<string, Map<string, number>>();
  const log = logger().child({ component: 'mesh-source', node: o.node });
  let warned = false;

  const stripSchema = (s: TableSchema): TableSchema => {
    let out = schemas.get(s);
    if (!out) {
      out = s.columns.some((c) => HIDDEN.has(c.name)) ? { ...s, columns: s.columns.filter((c) => !HIDDEN.has(c.name)) } : s;
      schemas.set(s, out);
    }
    return out;
  };

  const isOutbox = (e: ChangeEvent) => e.schema.id.table === OUTBOX_TABLE && (e.schema.id.schema ?? e.schema.id.db) === o.metaSchema;

  function version(e: ChangeEvent): { ts: bigint; how: string; vv?: string | null } {
    if (e.op === 'd') {
      const key = eventKey(e);
      const hit = key && e.transaction ? outbox.get(e.transaction.id)?.get(`${e.schema.id.table}\u0000${keyText(key, e.schema.primaryKey)}`) : undefined;
      if (hit !== undefined) return { ts: hit.ts, how: 'outbox', vv: hit.vv };
      // No outbox record (a delete the triggers did not see): just above the deleted version.
      const before = bigintOf(e.before?.[VERSION_COLUMNS.ts]);
      const c = commitUs(e);
      if (!warned) {
        warned = true;
        log.warn({ table: tableName(e.schema.id) }, 'delete without its outbox record (are the mesh triggers installed?); versioned by commit time');
      }
      return { ts: before !== null && before + 1n > c ? before + 1n : c, how: 'commit' };
    }
    if (e.op === 't') return { ts: commitUs(e), how: 'commit' };
    const ts = bigintOf(e.after?.[VERSION_COLUMNS.ts]);
    // 0: a row written before the triggers existed (or not by them).
    if (ts !== null && ts > 0n) return { ts, how: 'row' };
    return { ts: commitUs(e), how: 'commit' };
  }

  function change(e: ChangeEvent): ChangeEvent | null {
    const tx = e.transaction?.id;
    if (isOutbox(e)) {
      if (e.op === 'c' && e.after && tx !== undefined) {
        const ts = bigintOf(e.after.ts);
        if (ts !== null) {
          let m = outbox.get(tx);
          if (!m) outbox.set(tx, (m = new Map()));
          const vv = e.after.vv;
          m.set(`${String(e.after.tbl)}\u0000${String(e.after.key_text)}`, { ts, vv: typeof vv === 'string' ? vv : null });
        }
      }
      if (tx !== undefined) {
        let m = dropped.get(tx);
        if (!m) dropped.set(tx, (m = new Map()));
        const coll = tableName(e.schema.id);
        m.set(coll, (m.get(coll) ?? 0) + 1);
      }
      return null;
    }
    const v = version(e);
    meshEvents.inc({ node: o.node, version: v.how });
    const ts = v.ts;
    // Version-vector tables: the delete carries the vector of what it deleted (conflict detection).
    let before = strip(e.before);
    if (v.vv && before && e.schema.columns.some((c) => c.name === '_cdc_vv')) before = { ...before, _cdc_vv: v.vv };
    return {
      ...e,
      before,
      after: strip(e.after),
      schema: stripSchema(e.schema),
      source: { ...e.source, ts_us: Number(ts), ts_ms: Number(ts / 1000n), origin: o.node },
    };
  }

  function end(t: TransactionEvent): TransactionEvent {
    outbox.delete(t.id);
    const counts = dropped.get(t.id);
    if (!counts) return t;
    dropped.delete(t.id);
    let total = 0;
    for (const n of counts.values()) total += n;
    return {
      ...t,
      event_count: t.event_count === null ? null : t.event_count - total,
      data_collections:
        t.data_collections === null
          ? null
          : t.data_collections.map((d) => ({ ...d, event_count: d.event_count - (counts.get(d.data_collection) ?? 0) })).filter((d) => d.event_count > 0),
    };
  }

  return (batch) => {
    const records: SourceRecord[] = [];
    for (const rec of batch.records) {
      if (rec.type === 'change') {
        const e = change(rec.event);
        if (e) records.push({ type: 'change', event: e });
      } else if (rec.type === 'transaction' && rec.event.status === 'END') {
        records.push({ type: 'transaction', event: end(rec.event) });
      } else {
        records.push(rec);
      }
    }
    return { records, checkpoint: batch.checkpoint };
  };
}

/** Wraps a node's connector so what it publishes is mesh events (see {@link meshTransform}). */
export function meshSource(inner: SourceConnector, o: MeshSourceOptions): SourceConnector {
  return {
    name: inner.name,
    kind: inner.kind,
    validate: () => inner.validate(),
    async run(ctx) {
      // A fresh transform per run: a restarted stream re-reads open transactions from their start.
      const transform = meshTransform(o);
      await inner.run({ ...ctx, publish: (batch) => ctx.publish(transform(batch)) });
    },
    close: () => inner.close(),
  };
}

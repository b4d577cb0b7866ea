import type { SourceRecord } from '../source.js';
import type { ChangeEvent, Op, SourceInfo, TransactionEvent } from '../../schemas/change-event.js';
import { type ColumnValue, type Row, UNCHANGED } from '../../schemas/column-types.js';
import { CdcError } from '../../schemas/errors.js';
import type { PgPosition } from '../../schemas/position.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { type PgoutputMessage, TOAST_UNCHANGED, type TupleValue } from './decode.js';
import { type Lsn, formatLsn } from './lsn.js';
import type { ColumnCodec } from './type-map.js';

/**
 * Turns decoded pgoutput messages into SourceRecords: Debezium-shaped change events with
 * canonical values, and BEGIN/END transaction metadata. Pure and synchronous (relation
 * descriptions are built elsewhere, with catalog reads, and registered here).
 */

/** table: captured; heartbeat: our heartbeat table (becomes heartbeat records); skip: filtered out. */
export type RelationRole = 'table' | 'heartbeat' | 'skip';

export interface RelationState {
  relationId: number;
  role: RelationRole;
  schema: TableSchema;
  codecs: ColumnCodec[];
  names: string[];
  /** Indexes of the replica-identity columns (what a 'K' old tuple carries). */
  keyIdx: number[];
  /** `db.schema.table`, Debezium's data collection. */
  collection: string;
  /** Size of the schema as JSON: every record carries it in a header. */
  schemaBytes: number;
}

type ChangeMessage = Extract<PgoutputMessage, { tag: 'insert' | 'update' | 'delete' }>;

interface OpenTransaction {
  xid: string;
  beginLsn: Lsn;
  finalLsn: string;
  commitUs: bigint;
  /** Index of the next change message (all of them, captured or not): `position.seq`. */
  seq: number;
  /** Data events emitted so far. */
  total: number;
  perTable: Map<string, number>;
  begun: boolean;
  heartbeat: boolean;
  origin: string | null;
  /** Applied by a replication process and `localOnly` is set: its changes are not captured. */
  skip: boolean;
}

export interface AssemblerOptions {
  sourceName: string;
  version: string;
  /** `source.origin` for transactions without a replication origin. */
  origin: string;
  /** Skip transactions that carry a replication origin (written by a replication process, not a local client). */
  localOnly?: boolean;
  now?: () => number;
}

/** Fixed part of an encoded event (envelope keys, source block, headers) in bytes, for batch sizing. */
const EVENT_OVERHEAD = 450;

export class TransactionAssembler {
  readonly relations = new Map<number, RelationState>();
  private tx: OpenTransaction | null = null;
  private readonly now: () => number;

  constructor(private readonly o: AssemblerOptions) {
    this.now = o.now ?? Date.now;
  }

  get inTransaction(): boolean {
    return this.tx !== null;
  }

  begin(msg: Extract<PgoutputMessage, { tag: 'begin' }>, lsn: Lsn): void {
    this.tx = {
      xid: String(msg.xid),
      beginLsn: lsn,
      finalLsn: formatLsn(msg.finalLsn),
      commitUs: msg.commitTimeUs,
      seq: 0,
      total: 0,
      perTable: new Map(),
      begun: false,
      heartbeat: false,
      origin: null,
      skip: false,
    };
  }

  /** pgoutput sends an Origin message right after Begin for transactions applied under a replication origin. */
  origin(name: string): void {
    if (!this.tx) return;
    this.tx.origin = name;
    if (this.o.localOnly) this.tx.skip = true;
  }

  private open(what: string): OpenTransaction {
    if (!this.tx) throw new CdcError(`pgoutput ${what} outside a transaction`, { retriable: true, code: 'PG_PROTOCOL' });
    return this.tx;
  }

  private relation(id: number): RelationState {
    const r = this.relations.get(id);
    if (!r) throw new CdcError(`pgoutput change for relation ${id} before its Relation message`, { retriable: true, code: 'PG_PROTOCOL' });
    return r;
  }

  private sourceInfo(tx: OpenTransaction, rel: RelationState, lsn: Lsn): SourceInfo {
    return {
      version: this.o.version,
      connector: 'postgresql',
      name: this.o.sourceName,
      ts_ms: Number(tx.commitUs / 1000n),
      ts_us: Number(tx.commitUs),
      snapshot: 'false',
      db: rel.schema.id.db,
      schema: rel.schema.id.schema,
      table: rel.schema.id.table,
      txId: tx.xid,
      lsn: formatLsn(lsn),
      commit_lsn: tx.finalLsn,
      origin: tx.origin ?? this.o.origin,
    };
  }

  private beginRecord(tx: OpenTransaction, out: SourceRecord[]): void {
    if (tx.begun) return;
    tx.begun = true;
    const event: TransactionEvent = {
      status: 'BEGIN',
      id: tx.xid,
      event_count: null,
      data_collections: null,
      ts_ms: Number(tx.commitUs / 1000n),
      source: this.o.sourceName,
      position: { kind: 'pg', lsn: formatLsn(tx.beginLsn), commitLsn: tx.finalLsn },
    };
    out.push({ type: 'transaction', event });
  }

  private emit(tx: OpenTransaction, rel: RelationState, op: Op, before: Row | null, after: Row | null, lsn: Lsn, seq: number, out: SourceRecord[]): void {
    this.beginRecord(tx, out);
    tx.total++;
    const perTable = (tx.perTable.get(rel.collection) ?? 0) + 1;
    tx.perTable.set(rel.collection, perTable);
    const position: PgPosition = { kind: 'pg', lsn: formatLsn(lsn), commitLsn: tx.finalLsn, seq };
    const event: ChangeEvent = {
      op,
      before,
      after,
      source: this.sourceInfo(tx, rel, lsn),
      ts_ms: this.now(),
      transaction: { id: tx.xid, total_order: tx.total, data_collection_order: perTable },
      schema: rel.schema,
      position,
    };
    out.push({ type: 'change', event });
  }

  /** Appends the records of one insert/update/delete; returns their estimated encoded size. */
  change(msg: ChangeMessage, lsn: Lsn, out: SourceRecord[]): number {
    const tx = this.open(msg.tag);
    const seq = tx.seq++;
    const rel = this.relation(msg.relationId);
    if (rel.role === 'heartbeat') {
      tx.heartbeat = true;
      return 0;
    }
    if (rel.role === 'skip' || tx.skip) return 0;
    switch (msg.tag) {
      case 'insert':
        this.emit(tx, rel, 'c', null, this.row(rel, msg.newTuple, null), lsn, seq, out);
        break;
      case 'update': {
        const old = msg.oldTuple;
        const before = old === null ? null : msg.oldKind === 'O' ? this.row(rel, old, null) : this.keyRow(rel, old);
        this.emit(tx, rel, 'u', before, this.row(rel, msg.newTuple, msg.oldKind === 'O' ? old : null), lsn, seq, out);
        break;
      }
      case 'delete':
        this.emit(tx, rel, 'd', msg.oldKind === 'O' ? this.row(rel, msg.oldTuple, null) : this.keyRow(rel, msg.oldTuple), null, lsn, seq, out);
        break;
    }
    return Math.ceil(msg.bytes * 1.4) + EVENT_OVERHEAD + rel.schemaBytes;
  }

  /** One 't' event per captured relation of the TRUNCATE. */
  truncate(msg: Extract<PgoutputMessage, { tag: 'truncate' }>, lsn: Lsn, out: SourceRecord[]): number {
    const tx = this.open('truncate');
    let bytes = 0;
    for (const id of msg.relationIds) {
      const seq = tx.seq++;
      const rel = this.relation(id);
      if (rel.role === 'heartbeat') tx.heartbeat = true;
      if (rel.role !== 'table' || tx.skip) continue;
      this.emit(tx, rel, 't', null, null, lsn, seq, out);
      bytes += EVENT_OVERHEAD + rel.schemaBytes;
    }
    return bytes;
  }

  /** Closes the transaction: END record (when it had data events) and a heartbeat record (when it wrote the heartbeat table). */
  commit(msg: Extract<PgoutputMessage, { tag: 'commit' }>, out: SourceRecord[]): void {
    const tx = this.open('commit');
    this.tx = null;
    const ts_ms = Number(tx.commitUs / 1000n);
    const position: PgPosition = { kind: 'pg', lsn: formatLsn(msg.endLsn), commitLsn: tx.finalLsn };
    if (tx.begun) {
      const event: TransactionEvent = {
        status: 'END',
        id: tx.xid,
        event_count: tx.total,
        data_collections: [...tx.perTable].map(([data_collection, event_count]) => ({ data_collection, event_count })),
        ts_ms,
        source: this.o.sourceName,
        position,
      };
      out.push({ type: 'transaction', event });
    }
    if (tx.heartbeat) out.push({ type: 'heartbeat', position, ts_ms });
  }

  /** Drops a half-received transaction (the stream broke; it will be sent again). */
  reset(): void {
    this.tx = null;
  }

  private decode(rel: RelationState, i: number, text: string): ColumnValue {
    try {
      return rel.codecs[i]!.decode(text);
    } catch (err) {
      throw new CdcError(
        `cannot decode ${rel.collection}.${rel.names[i]} (${rel.schema.columns[i]?.sourceType}): ${(err as Error).message}; value starts ${JSON.stringify(text.slice(0, 60))}`,
        { retriable: false, code: 'PG_VALUE', cause: err },
      );
    }
  }

  /**
   * A full row. An unchanged TOASTed column takes its value from the old tuple when REPLICA
   * IDENTITY FULL sent one, else the UNCHANGED placeholder (never null: that would erase data).
   */
  private row(rel: RelationState, t: TupleValue[], old: TupleValue[] | null): Row {
    const row: Row = {};
    const names = rel.names;
    for (let i = 0; i < names.length; i++) {
      const v = t[i];
      if (v === null || v === undefined) row[names[i]!] = null;
      else if (v === TOAST_UNCHANGED) {
        const o = old?.[i];
        row[names[i]!] = typeof o === 'string' ? this.decode(rel, i, o) : o === null ? null : UNCHANGED;
      } else row[names[i]!] = this.decode(rel, i, v);
    }
    return row;
  }

  /** The replica-identity columns of a 'K' old tuple (the others are sent as nulls that mean "not sent"). */
  private keyRow(rel: RelationState, t: TupleValue[]): Row {
    const row: Row = {};
    for (const i of rel.keyIdx) {
      const v = t[i];
      row[rel.names[i]!] = v === null || v === undefined ? null : v === TOAST_UNCHANGED ? UNCHANGED : this.decode(rel, i, v);
    }
    return row;
  }
}

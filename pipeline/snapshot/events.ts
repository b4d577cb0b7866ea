import type { ChangeEvent, Row, SourcePosition, TableSchema } from '../../schemas/index.js';

export interface SnapshotEventTime {
  /** ms since epoch: the read time (initial snapshot) or the HIGH watermark's commit time (incremental). */
  tsMs: number;
  /** Commit time in µs of the HIGH watermark (incremental), so LWW sinks order the row at HIGH. */
  tsUs?: number;
  /** `source.origin` (multi-master); the stream's own events carry the same. */
  origin?: string;
}

/**
 * An `op: r` event for one snapshot row, positioned at the snapshot's stream position (initial:
 * the slot's consistent point / binlog position; incremental: the HIGH watermark). `seq` makes
 * positions unique and deterministic per row, so a republished chunk repeats its positions.
 */
export function snapshotEvent(sourceName: string, schema: TableSchema, row: Row, position: SourcePosition, seq: number, time: SnapshotEventTime, flag: 'true' | 'incremental' = 'true'): ChangeEvent {
  const pos: SourcePosition = position.kind === 'pg' ? { ...position, commitLsn: position.commitLsn ?? position.lsn, seq } : { ...position, seq };
  return {
    op: 'r',
    before: null,
    after: row,
    source: {
      version: '0.1.0',
      connector: schema.dialect === 'postgres' ? 'postgresql' : 'mysql',
      name: sourceName,
      ts_ms: time.tsMs,
      ...(time.tsUs !== undefined ? { ts_us: time.tsUs } : {}),
      snapshot: flag,
      db: schema.id.db,
      schema: schema.id.schema,
      table: schema.id.table,
      txId: null,
      ...(position.kind === 'pg' ? { lsn: position.lsn } : { file: position.file, pos: position.pos, gtid: null }),
      ...(time.origin !== undefined ? { origin: time.origin } : {}),
    },
    ts_ms: Date.now(),
    transaction: null,
    schema,
    position: pos,
  };
}

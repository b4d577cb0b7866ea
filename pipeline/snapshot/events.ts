import type { ChangeEvent, Row, SourcePosition, TableSchema } from '../../schemas/index.js';

/** An `op: r` event for one snapshot row, positioned at the snapshot's stream position. */
export function snapshotEvent(sourceName: string, schema: TableSchema, row: Row, position: SourcePosition, seq: number, tsMs: number, flag: 'true' | 'incremental' = 'true'): ChangeEvent {
  const pos: SourcePosition = position.kind === 'pg' ? { ...position, commitLsn: position.commitLsn ?? position.lsn, seq } : { ...position, seq };
  return {
    op: 'r',
    before: null,
    after: row,
    source: {
      version: '0.1.0',
      connector: schema.dialect === 'postgres' ? 'postgresql' : 'mysql',
      name: sourceName,
      ts_ms: tsMs,
      snapshot: flag,
      db: schema.id.db,
      schema: schema.id.schema,
      table: schema.id.table,
      txId: null,
      ...(position.kind === 'pg' ? { lsn: position.lsn } : { file: position.file, pos: position.pos, gtid: null }),
    },
    ts_ms: Date.now(),
    transaction: null,
    schema,
    position: pos,
  };
}

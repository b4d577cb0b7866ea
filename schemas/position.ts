/**
 * Where in the source log an event (or a resume point) sits. The pipeline stores and passes
 * positions around without looking inside; only the connector of the same `kind` compares them
 * (PeerDB's `CdcCheckpoint`, Debezium's `OffsetContext`).
 */
export type SourcePosition = PgPosition | MysqlPosition;

export interface PgPosition {
  kind: 'pg';
  /** LSN of the change itself ('X/Y' hex form). For a resume point: the LSN to confirm. */
  lsn: string;
  /** Commit LSN of the enclosing transaction; with `seq` it identifies a change uniquely. */
  commitLsn?: string;
  /** 0-based index of the change within its transaction. */
  seq?: number;
}

export interface MysqlPosition {
  kind: 'mysql';
  /** Binlog file and the offset of the next event to read (resume point) or of the event. */
  file: string;
  pos: number;
  /** Executed GTID set to resume from (MySQL UUID:ranges or MariaDB domain-server-seq list). */
  gtidSet?: string;
  /** GTID of the enclosing transaction; with `seq` it identifies a change uniquely. */
  gtid?: string;
  /** 0-based index of the row change within its transaction. */
  seq?: number;
}

/** Deterministic text form (keys sorted), for storage, headers and equality checks. */
export function encodePosition(p: SourcePosition): string {
  const sorted = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted);
}

export function decodePosition(text: string): SourcePosition {
  const v = JSON.parse(text) as unknown;
  if (typeof v !== 'object' || v === null || !('kind' in v) || (v.kind !== 'pg' && v.kind !== 'mysql')) {
    throw new Error(`not a source position: ${text.slice(0, 200)}`);
  }
  return v as SourcePosition;
}

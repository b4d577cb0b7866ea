import type { SourceRecord } from '../../connectors/source.js';

/** Consecutive slices of at most `maxBytes` (estimated) and `maxRecords` records, order kept. */
export function sliceRecords(records: SourceRecord[], maxBytes: number, maxRecords: number): SourceRecord[][] {
  const out: SourceRecord[][] = [];
  let cur: SourceRecord[] = [];
  let bytes = 0;
  for (const r of records) {
    const size = r.type === 'change' ? JSON.stringify(r.event.after ?? r.event.before ?? null).length + 400 : 300;
    if (cur.length > 0 && (bytes + size > maxBytes || cur.length >= maxRecords)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length > 0 || out.length === 0) out.push(cur);
  return out;
}

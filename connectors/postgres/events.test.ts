import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../source.js';
import { UNCHANGED } from '../../schemas/column-types.js';
import type { ChangeEvent, TransactionEvent } from '../../schemas/change-event.js';
import { type ReplicationFrame, decodeFrame, decodePgoutput } from './decode.js';
import { type RelationState, TransactionAssembler } from './events.js';
import { formatLsn } from './lsn.js';
import { columnCodec } from './type-map.js';
import { asText } from './values.js';

// The same captured stream as decode.test.ts, through the assembler with hand-made relation
// descriptions (relations.ts builds them from the catalog at run time).
const fixture = JSON.parse(readFileSync(new URL('./fixtures/pgoutput-frames.json', import.meta.url), 'utf8')) as { frames: string[] };

function run(roles: Record<string, RelationState['role']> = {}) {
  const a = new TransactionAssembler({ sourceName: 'pg', version: 'test', origin: 'node-a', now: () => 42 });
  const out: SourceRecord[] = [];
  for (const hex of fixture.frames) {
    const f = decodeFrame(Buffer.from(hex, 'hex')) as Extract<ReplicationFrame, { kind: 'xlog' }>;
    const m = decodePgoutput(f.data);
    switch (m.tag) {
      case 'relation': {
        const codecs = m.columns.map((c) => (c.typeOid === 1700 || c.typeOid === 23 || c.typeOid === 25 || c.typeOid === 1184 ? columnCodec(c.typeOid, c.typmod, () => undefined) : { type: { kind: 'enum' as const, values: [] }, decode: asText }));
        const schema = {
          id: { db: 'app', schema: m.namespace, table: m.name },
          columns: m.columns.map((c, i) => ({ name: c.name, type: codecs[i]!.type, nullable: true, sourceType: String(c.typeOid) })),
          primaryKey: ['id'],
          dialect: 'postgres' as const,
        };
        a.relations.set(m.relationId, {
          relationId: m.relationId,
          role: roles[m.name] ?? 'table',
          schema,
          codecs,
          names: m.columns.map((c) => c.name),
          keyIdx: m.columns.flatMap((c, i) => (c.flags & 1 ? [i] : [])),
          collection: `app.${m.namespace}.${m.name}`,
          schemaBytes: 100,
        });
        break;
      }
      case 'begin':
        a.begin(m, f.dataStart);
        break;
      case 'commit':
        a.commit(m, out);
        break;
      case 'insert':
      case 'update':
      case 'delete':
        a.change(m, f.dataStart, out);
        break;
      case 'truncate':
        a.truncate(m, f.dataStart, out);
        break;
      default:
        break;
    }
  }
  return out;
}

const changes = (out: SourceRecord[]) => out.flatMap((r) => (r.type === 'change' ? [r.event] : []));
const txs = (out: SourceRecord[]) => out.flatMap((r) => (r.type === 'transaction' ? [r.event] : []));

describe('transaction assembler', () => {
  const out = run();
  const ev = changes(out);

  it('emits Debezium-shaped events with canonical values', () => {
    expect(ev.map((e) => `${e.op}:${e.schema.id.table}`)).toEqual(['c:t', 'u:t', 'u:t', 'd:t', 'c:full_t', 'u:full_t', 't:t', 't:full_t']);
    const c = ev[0]!;
    expect(c.after).toEqual({ id: 1, big: 'x'.repeat(3000), m: 'happy', n: '12.34', ts: '2026-01-02T03:04:05.678901Z' });
    expect(c.source).toMatchObject({ connector: 'postgresql', name: 'pg', db: 'app', schema: 'public', table: 't', snapshot: 'false', origin: 'node-a' });
    expect(c.source.ts_us! % 1000).toBe(Number(BigInt(c.source.ts_us!) % 1000n));
    expect(c.source.ts_ms).toBe(Math.floor(c.source.ts_us! / 1000));
    expect(c.ts_ms).toBe(42);
    expect(c.transaction).toEqual({ id: c.source.txId, total_order: 1, data_collection_order: 1 });
    expect(c.position).toEqual({ kind: 'pg', lsn: c.source.lsn, commitLsn: c.source.commit_lsn, seq: 0 });
  });

  it('marks an unchanged TOASTed column with the placeholder, never null', () => {
    const u = ev[1]!;
    expect(u.before).toBeNull();
    expect(u.after).toMatchObject({ id: 1, big: UNCHANGED, n: '1.00' });
  });

  it('carries only the key in before for a default-identity key change and delete', () => {
    expect(ev[2]!.before).toEqual({ id: 1 });
    expect(ev[2]!.after).toMatchObject({ id: 2, big: UNCHANGED });
    expect(ev[3]!.before).toEqual({ id: 2 });
    expect(ev[3]!.after).toBeNull();
  });

  it('gives the whole old row with REPLICA IDENTITY FULL', () => {
    expect(ev[5]!.before).toEqual({ id: 1, v: 'a' });
    expect(ev[5]!.after).toEqual({ id: 1, v: 'b' });
  });

  it('emits one truncate per relation, sharing the LSN but not the seq', () => {
    const [t1, t2] = [ev[6]!, ev[7]!];
    expect(t1.position.kind === 'pg' && t2.position.kind === 'pg' && t1.position.lsn === t2.position.lsn).toBe(true);
    expect([(t1.position as { seq: number }).seq, (t2.position as { seq: number }).seq]).toEqual([0, 1]);
    expect(t1.before).toBeNull();
    expect(t1.after).toBeNull();
  });

  it('frames each transaction with BEGIN and END carrying per-table counts', () => {
    const t = txs(out);
    expect(t.map((x) => x.status)).toEqual(Array(7).fill(['BEGIN', 'END']).flat());
    const last = t.at(-1) as TransactionEvent;
    expect(last.event_count).toBe(2);
    expect(last.data_collections).toEqual([
      { data_collection: 'app.public.t', event_count: 1 },
      { data_collection: 'app.public.full_t', event_count: 1 },
    ]);
    // Records of one transaction sit between its BEGIN and END.
    const order = out.map((r) => (r.type === 'transaction' ? r.event.status : r.type));
    expect(order.slice(0, 3)).toEqual(['BEGIN', 'change', 'END']);
    const end = t[1]!;
    expect(end.position.kind === 'pg' && end.position.commitLsn).toBe((ev[0] as ChangeEvent).source.commit_lsn);
  });

  it('turns heartbeat-table writes into heartbeat records and drops skipped tables', () => {
    const o = run({ full_t: 'heartbeat', t: 'skip' });
    expect(changes(o)).toEqual([]);
    expect(txs(o)).toEqual([]);
    const hb = o.filter((r) => r.type === 'heartbeat');
    expect(hb).toHaveLength(3); // insert, update, truncate transactions touched full_t
    expect(hb.every((r) => r.type === 'heartbeat' && r.position.kind === 'pg' && /^[0-9A-F]+\/[0-9A-F]+$/.test(r.position.lsn))).toBe(true);
  });

  it('refuses a change outside a transaction or for an unknown relation', () => {
    const a = new TransactionAssembler({ sourceName: 'pg', version: 't', origin: 'o' });
    expect(() => a.change({ tag: 'insert', relationId: 1, newTuple: [], bytes: 0 }, 0n, [])).toThrow(/outside a transaction/);
    a.begin({ tag: 'begin', finalLsn: 16n, commitTimeUs: 0n, xid: 5 }, 8n);
    expect(() => a.change({ tag: 'insert', relationId: 1, newTuple: [], bytes: 0 }, 8n, [])).toThrow(/before its Relation/);
    expect(formatLsn(16n)).toBe('0/10');
  });
});

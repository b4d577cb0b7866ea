import { describe, expect, it } from 'vitest';
import type { ChangeEvent, TransactionEvent } from '../schemas/change-event.js';
import type { TableSchema } from '../schemas/table-schema.js';
import type { SinkChange } from '../sinks/sink.js';
import { type BufferedChange, TransactionMerger } from './transaction-merger.js';

const schema: TableSchema = {
  id: { db: 'd', schema: 'public', table: 't' },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [{ name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' }],
};

function ev(tx: string | null, order: number, id: number): ChangeEvent {
  return {
    op: 'c',
    before: null,
    after: { id },
    source: { version: 't', connector: 'postgresql', name: 's', ts_ms: 1, snapshot: 'false', db: 'd', schema: 'public', table: 't', txId: tx },
    ts_ms: 1,
    transaction: tx === null ? null : { id: tx, total_order: order, data_collection_order: order },
    schema,
    position: { kind: 'pg', lsn: `0/${order}` },
  };
}

function item(tx: string | null, order: number, id: number, partition: string, offset: number): BufferedChange {
  const change: SinkChange = { event: ev(tx, order, id), ref: { topic: partition, partition: 0, offset: String(offset) } };
  return { change, offset: BigInt(offset) };
}

const begin = (id: string): TransactionEvent => ({ status: 'BEGIN', id, event_count: null, data_collections: null, ts_ms: 1, source: 's', position: { kind: 'pg', lsn: '0/1' } });
const end = (id: string, n: number): TransactionEvent => ({ status: 'END', id, event_count: n, data_collections: null, ts_ms: 1, source: 's', position: { kind: 'pg', lsn: '0/1' } });

const ids = (changes: SinkChange[]) => changes.map((c) => c.event.after!.id);

describe('TransactionMerger', () => {
  it('hands a transaction out in total_order across partitions, only once it is complete', () => {
    const m = new TransactionMerger('tx');
    m.pushTransaction(begin('1'), 0n);
    m.pushChanges('a', [item('1', 1, 10, 'a', 0), item('1', 3, 30, 'a', 1)]);
    m.pushChanges('b', [item('1', 2, 20, 'b', 0)]);
    const s1 = m.next(100);
    expect(s1).toMatchObject({ kind: 'transaction', id: '1', complete: false });
    expect(ids(s1!.changes)).toEqual([10, 20, 30]);
    expect(m.midTransaction).toBe(true);
    // the END arrives: complete, nothing more to hand out
    m.pushTransaction(end('1', 3), 1n);
    expect(m.next(100)).toMatchObject({ kind: 'transaction', id: '1', changes: [], complete: true });
    expect(m.offsets()).toEqual(new Map([['a', 2n], ['b', 1n], ['tx', 2n]]));
  });

  it('waits for a missing event instead of reordering', () => {
    const m = new TransactionMerger('tx');
    m.pushTransaction(begin('1'), 0n);
    m.pushTransaction(end('1', 2), 1n);
    m.pushChanges('a', [item('1', 2, 20, 'a', 0)]);
    expect(m.next(100)).toBeNull();
    m.pushChanges('b', [item('1', 1, 10, 'b', 0)]);
    const s = m.next(100)!;
    expect(ids(s.changes)).toEqual([10, 20]);
    expect(s).toMatchObject({ complete: true });
  });

  it('keeps the next transaction behind the current one and chunks large transactions', () => {
    const m = new TransactionMerger('tx');
    m.pushTransaction(begin('1'), 0n);
    m.pushTransaction(end('1', 3), 1n);
    m.pushTransaction(begin('2'), 2n);
    m.pushTransaction(end('2', 1), 3n);
    m.pushChanges('a', [item('1', 1, 1, 'a', 0), item('1', 2, 2, 'a', 1), item('1', 3, 3, 'a', 2), item('2', 1, 4, 'a', 3)]);
    const s1 = m.next(2)!;
    expect([ids(s1.changes), s1.kind === 'transaction' && s1.complete]).toEqual([[1, 2], false]);
    // the transaction topic stays at the open transaction's BEGIN until it completes
    expect(m.offsets().get('tx')).toBe(0n);
    const s2 = m.next(2)!;
    expect([ids(s2.changes), s2.kind === 'transaction' && s2.complete]).toEqual([[3], true]);
    expect(m.offsets().get('tx')).toBe(2n);
    const s3 = m.next(2)!;
    expect([ids(s3.changes), s3.kind === 'transaction' && s3.id]).toEqual([[4], '2']);
    expect(m.offsets()).toEqual(new Map([['a', 4n], ['tx', 4n]]));
  });

  it('drops what a source restart republished: duplicate BEGIN/END, events of applied transactions, repeated orders', () => {
    const m = new TransactionMerger('tx');
    m.pushTransaction(begin('1'), 0n);
    // a part of tx 1 reached Kafka, then the source restarted and republished all of it
    m.pushChanges('a', [item('1', 1, 1, 'a', 0), item('1', 1, 1, 'a', 1), item('1', 2, 2, 'a', 2)]);
    m.pushTransaction(begin('1'), 1n);
    m.pushTransaction(end('1', 2), 2n);
    const s = m.next(100)!;
    expect(ids(s.changes)).toEqual([1, 2]);
    expect(s).toMatchObject({ complete: true });
    // and later another copy of the whole transaction
    m.pushTransaction(begin('1'), 3n);
    m.pushTransaction(end('1', 2), 4n);
    m.pushChanges('a', [item('1', 1, 1, 'a', 3), item('1', 2, 2, 'a', 4)]);
    expect(m.next(100)).toBeNull();
    expect(m.offsets()).toEqual(new Map([['a', 5n], ['tx', 5n]]));
  });

  it('moves the offset past records with nothing to apply (delete tombstones) once they reach the head', () => {
    const m = new TransactionMerger('tx');
    m.pushTransaction(begin('1'), 0n);
    m.pushTransaction(end('1', 1), 1n);
    m.pushChanges('a', [item('1', 1, 1, 'a', 0), { change: null, offset: 1n }]);
    expect(ids(m.next(100)!.changes)).toEqual([1]);
    expect(m.next(100)).toBeNull();
    expect(m.offsets().get('a')).toBe(2n);
  });

  it('hands out events without transaction metadata on their own, in partition order', () => {
    const m = new TransactionMerger('tx');
    m.pushChanges('a', [item(null, 0, 1, 'a', 0), item(null, 0, 2, 'a', 1), item('9', 1, 3, 'a', 2)]);
    const s = m.next(100)!;
    expect(s.kind).toBe('standalone');
    expect(ids(s.changes)).toEqual([1, 2]);
    // tx 9's BEGIN has not arrived: wait
    expect(m.next(100)).toBeNull();
    expect(m.buffered('a')).toBe(1);
  });
});

// The slot must not hold WAL back while its published tables are idle and another database
// writes: the connector confirms the server's WAL end on keepalives when nothing is pending.
// Heartbeats are off here, so only that mechanism can move the slot.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { parseLsn } from '../../connectors/postgres/lsn.js';
import { registry } from '../../util/metrics.js';
import { type Running, type TestDb, createTestDb, deleteTopics, dropTestDb, sleep, startSource, testConfig } from './harness.js';

const MB = 1024 * 1024;

describe('postgres source: retained WAL on an idle published database', () => {
  let captured: TestDb;
  let busy: TestDb;
  let cfg: PipelineConfig;
  let src: Running;
  const logLines: string[] = [];

  beforeAll(async () => {
    captured = await createTestDb('t_idle');
    busy = await createTestDb('t_busy');
    await captured.q(`create table idle (id int primary key)`);
    await busy.q(`create table junk (id int, pad text)`);
    cfg = testConfig(captured, { postgres: { heartbeatIntervalMs: 0, statusIntervalMs: 1000, walCheckIntervalMs: 500, maxRetainedWalMb: 8 } });
    const log = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) });
    src = startSource(cfg, {}, log);
    for (let i = 0; i < 200; i++) {
      if ((await captured.q(`select 1 from pg_replication_slots where slot_name = $1 and active`, [captured.name])).length > 0) break;
      await sleep(100);
    }
  });

  afterAll(async () => {
    await src?.stop();
    await dropTestDb(captured);
    await dropTestDb(busy);
    if (cfg) await deleteTopics(cfg.name);
  });

  it('keeps retained WAL bounded while another database writes, and reports it', async () => {
    const slot = async () =>
      (
        await captured.q(
          `select (pg_current_wal_lsn() - restart_lsn)::int8::text as retained, confirmed_flush_lsn::text as confirmed, pg_current_wal_lsn()::text as now
             from pg_replication_slots where slot_name = $1`,
          [captured.name],
        )
      )[0]!;
    const start = parseLsn((await slot()).now!);
    for (let i = 0; i < 12; i++) await busy.q(`insert into junk select g, repeat('x', 300) from generate_series(1, 20000) g`);
    const end = parseLsn((await slot()).now!);
    const written = Number(end - start);
    expect(written).toBeGreaterThan(64 * MB);

    // Confirmed LSN follows the server's WAL end even though none of it was ours.
    let s = await slot();
    for (let i = 0; i < 100 && parseLsn(s.confirmed!) < end; i++) {
      await sleep(200);
      s = await slot();
    }
    expect(parseLsn(s.confirmed!) >= end).toBe(true);

    // restart_lsn follows once the server logs running transactions (every 15 s with activity).
    let retained = Number(s.retained);
    for (let i = 0; i < 90 && retained > 16 * MB; i++) {
      await busy.q(`insert into junk values (0, 'tick')`);
      await sleep(500);
      retained = Number((await slot()).retained);
    }
    expect(retained).toBeLessThan(16 * MB);

    const gauge = await registry.getSingleMetric('cdc_pg_slot_retained_wal_bytes')?.get();
    const mine = gauge?.values.find((v) => v.labels.slot === captured.name);
    expect(mine).toBeDefined();
    // While the busy database wrote, restart_lsn lagged by more than maxRetainedWalMb (8): warned, once (throttled).
    expect(logLines.filter((l) => l.includes('retains more WAL than postgres.maxRetainedWalMb'))).toHaveLength(1);
    console.log(`retained WAL: ${(retained / MB).toFixed(1)} MB after ${(written / MB).toFixed(0)} MB written by another database`);
  });
});

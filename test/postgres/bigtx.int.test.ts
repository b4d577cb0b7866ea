// One big source transaction streams through the connector process with bounded memory: the
// Kafka publish is the back-pressure point, and the replication socket pauses behind it.
// 200k rows by default (the suite stays fast); CDC_SOAK=1 runs the 1M rows of the issue,
// CDC_BIGTX_ROWS any count.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../connectors/postgres/lsn.js';
import { repoRoot } from '../../infra/servers.js';
import { env, uniq } from '../helpers.js';
import { type TestDb, createTestDb, deleteTopics, dropTestDb, kafka, readAll, sleep, txEvent } from './harness.js';

const ROWS = Number(process.env.CDC_BIGTX_ROWS ?? (process.env.CDC_SOAK ? 1_000_000 : 200_000));
const RSS_LIMIT_MB = 300;

/** CPU seconds (user + system) the process has used: a throughput measure that machine load does not skew. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

describe('postgres source: one big transaction', () => {
  let db: TestDb;
  const prefix = uniq('pgbig');
  const dir = mkdtempSync(join(tmpdir(), 'cdc-pg-big-'));
  const cfgFile = join(dir, 'pipeline.json');
  const logFile = join(dir, 'connector.log');
  let proc: ChildProcess | null = null;

  beforeAll(async () => {
    db = await createTestDb('t_bigtx');
    await db.q(`create table big (id bigint primary key, name text, amount numeric(12,2), at timestamptz)`);
    writeFileSync(
      cfgFile,
      JSON.stringify({
        name: prefix,
        kafka: { brokers: env.kafka.split(','), partitions: 3 },
        sources: [{ name: 'pg', url: db.url, postgres: { slot: db.name, publication: db.name, heartbeatIntervalMs: 0 } }],
        // The stream alone: no initial snapshot (its r events, and its resumption after a kill, are the snapshot engine's).
        snapshot: { mode: 'never' },
        log: { level: 'info' },
      }),
    );
  });

  afterAll(async () => {
    proc?.kill('SIGKILL');
    await dropTestDb(db);
    await deleteTopics(prefix);
  });

  it(`streams ${ROWS} rows of one transaction with connector RSS below ${RSS_LIMIT_MB} MB`, { timeout: 900_000 }, async () => {
    const out = openSync(logFile, 'a');
    // The CLI as deployed: compiled JavaScript (here one esbuild bundle, packages from
    // node_modules), not the TypeScript sources through tsx, whose compiler adds ~40 MB of RSS.
    const bundle = join(repoRoot, 'node_modules', '.cache', 'cdc-bigtx', 'cdc.mjs');
    await build({
      stdin: { contents: "import { main } from './cli/main.ts';\nprocess.exit(await main(process.argv));\n", resolveDir: repoRoot, loader: 'ts', sourcefile: 'cdc-entry.ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      outfile: bundle,
      logLevel: 'error',
    });
    proc = spawn(process.execPath, [bundle, 'run', '-c', cfgFile, '--only', 'pg'], { cwd: repoRoot, stdio: ['ignore', out, out] });
    const pid = proc.pid!;
    for (let i = 0; (await db.q(`select 1 from pg_replication_slots where slot_name = $1 and active`, [db.name])).length === 0; i++) {
      if (i > 600) throw new Error(`no slot; log:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
      await sleep(100);
    }
    const idleRss = rssKb(pid, 'VmRSS');
    const cpu0 = cpuSeconds(pid);

    const t0 = Date.now();
    await db.q(
      `insert into big select g, 'name ' || g || repeat('x', 60), g * 1.25, '2026-01-01'::timestamptz + g * interval '1 second' from generate_series(1, ${ROWS}) g`,
    );
    const committedAt = Date.now();
    const endLsn = parseLsn((await db.q(`select pg_current_wal_lsn()::text as l`))[0]!.l!);
    let peakRss = 0;
    for (let i = 0; ; i++) {
      peakRss = Math.max(peakRss, rssKb(pid, 'VmRSS'));
      const [s] = await db.q(`select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1`, [db.name]);
      if (s?.l && parseLsn(s.l) >= endLsn) break;
      if (proc.exitCode !== null) throw new Error(`connector exited; log:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
      if (i > 6000) throw new Error('connector did not finish the transaction in 10 minutes');
      await sleep(100);
    }
    const doneAt = Date.now();
    const hwm = rssKb(pid, 'VmHWM');
    const cpu = cpuSeconds(pid) - cpu0;
    proc.kill('SIGTERM');

    // Exactly one copy of every row (no crash here), and the transaction's END says 1M events.
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(`${prefix}.pg.${db.name}.public.big`);
    await admin.disconnect();
    const records = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
    expect(records).toBe(ROWS);
    const tx = await Promise.all((await readAll([`${prefix}.pg.transaction`])).map(txEvent));
    expect(tx.map((t) => t.status)).toEqual(['BEGIN', 'END']);
    expect(tx[1]!.event_count).toBe(ROWS);

    const streamS = (doneAt - committedAt) / 1000;
    console.log(
      `big transaction: ${ROWS} rows, insert ${((committedAt - t0) / 1000).toFixed(1)} s, streamed to Kafka in ${streamS.toFixed(1)} s ` +
        `(${Math.round(ROWS / streamS)} events/s; connector CPU ${cpu.toFixed(1)} s = ${Math.round((cpu * 1e6) / ROWS)} µs/event), connector RSS idle ${Math.round(idleRss / 1024)} MB, peak sampled ${Math.round(peakRss / 1024)} MB, VmHWM ${Math.round(hwm / 1024)} MB`,
    );
    expect(hwm / 1024).toBeLessThan(RSS_LIMIT_MB);
  });
});

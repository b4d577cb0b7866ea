import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults } from '../../infra/servers.js';
import { sourceTopics } from '../../pipeline/topics.js';
import { env, testKafka, uniq, until } from '../helpers.js';
import { testPublisher } from './kafka-support.js';
import { EventFactory, type Replica, replicaOf } from './support.js';
import { auditedTable, doubleWrites, history, model, schemaOf, spawnWorker, TABLE } from './crash-support.js';
import { pipelineConfig } from '../../config/schema.js';

/**
 * kill -9 of sink worker processes at random moments while they apply a stream: the replica ends
 * equal to the history, and no change is written twice. The sink runs with conflict strategy
 * `none` here, so nothing but the offsets stored with the rows can stop a replay; a trigger on
 * the replica table records every row write with its version, and a version written twice is a
 * double apply.
 */

describe.each(['postgres', 'mysql'] as const)('kill -9 of sink workers under load: %s replica', (kind) => {
  const kafka = testKafka();
  let replica: Replica;
  let dir: string;
  const workers = new Set<ChildProcess>();

  beforeAll(async () => {
    replica = await replicaOf(kind);
    dir = mkdtempSync(join(tmpdir(), 'cdc-crash-'));
  });
  afterAll(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await replica?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends with 0 differences and no change applied twice', async () => {
    const db = uniq('crash');
    const meta = uniq('meta');
    replica.track(db);
    replica.track(meta);
    const container = kind === 'postgres' ? 'public' : db;
    await auditedTable(replica, container);
    const prefix = uniq('crash');
    const raw = {
      name: prefix,
      kafka: { brokers: [env.kafka], topicPrefix: prefix, partitions: 3 },
      sources: [{ name: 'src', url: env.pgSource }],
      sinks: [{ name: 'r', url: replica.url, metaSchema: meta, batchSize: 20, concurrency: 3, topicRefreshIntervalMs: 1000, conflict: { strategy: 'none' } }],
      log: { level: 'warn' },
    };
    const file = join(dir, `${prefix}.yaml`);
    writeFileSync(file, JSON.stringify(raw));
    const cfg = pipelineConfig.parse(raw);
    const logFile = join(dir, `${prefix}.log`);

    const f = new EventFactory(schemaOf(db));
    // Strategy none: only the stored offsets prevent a replay (no key changes: see history()).
    const events = history(f, 20_000, { keyChanges: false });
    const pub = await testPublisher(kafka, cfg);
    // A backlog first, so the workers are busy applying when they are killed.
    await pub.publish({ records: events.slice(0, 3000).map((event) => ({ type: 'change', event })), checkpoint: null });
    let seq = 0;
    /** Worker processes by the application_name their replica sessions carry. */
    const byApp = new Map<string, ChildProcess>();
    const start = () => {
      const app = `crashw_${prefix}_${seq++}`;
      const w = spawnWorker(file, 'r', logFile, { PGAPPNAME: app });
      workers.add(w);
      byApp.set(app, w);
      w.once('exit', () => {
        workers.delete(w);
        byApp.delete(app);
      });
    };
    start();
    start();
    // Kills are meant to land mid-apply: wait until a worker has created the sink's tables and
    // stored offsets (on a loaded machine a worker's start can take longer than the first kills'
    // 1-3 s pauses; the offset lock below needs the table).
    const offsetsTable = kind === 'postgres' ? `"${meta}".offsets` : `\`${meta}\`.offsets`;
    await until('a worker to store its first offsets', async () => Number((await replica.query(`select count(*) as n from ${offsetsTable}`))[0]?.n) > 0, 60_000, { everyMs: 200 });

    // Writes keep coming for as long as workers are killed (else late kills hit idle workers).
    let published = 3000;
    let killing = true;
    const publishing = (async () => {
      while (published < events.length && (killing || published < 8000)) {
        const n = 100;
        await pub.publish({ records: events.slice(published, published + n).map((event) => ({ type: 'change', event })), checkpoint: null });
        published += n;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    // PostgreSQL logs a client that died inside a transaction: proof a kill hit one.
    const pgLogStart = kind === 'postgres' ? statSync(defaults.pgReplica.logFile).size : 0;
    const killsInsideTransactions = () => {
      if (kind !== 'postgres') return Number.POSITIVE_INFINITY;
      const text = readFileSync(defaults.pgReplica.logFile, 'utf8').slice(pgLogStart);
      const db = replica.url.split('/').pop()!;
      return text.split('\n').filter((l) => l.includes(`@${db} `) && l.includes('open transaction')).length;
    };
    /** PostgreSQL: a worker whose replica session is in `condition` right now (pg_stat_activity). */
    const workerWhose = async (condition: string): Promise<ChildProcess | undefined> => {
      if (kind !== 'postgres') return undefined;
      const rows = await replica.query(`select application_name as app from pg_stat_activity where application_name like 'crashw_%' and ${condition} and datname = current_database()`);
      return rows.map((r) => byApp.get(String(r.app))).find((w) => w !== undefined);
    };
    // Idle in transaction: the session waits for the worker's next statement, so a kill now
    // leaves it inside the transaction for sure.
    const inTransaction = () => workerWhose(`state = 'idle in transaction'`);
    /**
     * PostgreSQL: a kill inside a replica transaction for certain. A test session holds the sink's
     * offset rows (FOR UPDATE), so a worker that has written a batch's rows blocks on its offset
     * update, inside its transaction; that worker is killed, then the rows are let go.
     */
    const killBehindOffsetLock = async (): Promise<ChildProcess | undefined> => {
      if (kind !== 'postgres') return undefined;
      const c = new pg.Client({ connectionString: replica.url });
      await c.connect();
      try {
        await c.query(`set lock_timeout = '5s'`);
        await c.query('begin');
        await c.query(`select 1 from ${offsetsTable} for update`);
        // Workers apply only between group rebalances (every kill starts one): wait long enough for one.
        const aimUntil = Date.now() + 10_000;
        while (Date.now() < aimUntil) {
          // Asked on another session: pg_stat_activity does not change inside one transaction.
          const v = await workerWhose(`wait_event_type = 'Lock'`);
          if (v) {
            v.kill('SIGKILL');
            await new Promise((r) => setTimeout(r, 100));
            return v;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        return undefined;
      } finally {
        await c.query('rollback').catch(() => undefined);
        await c.end().catch(() => undefined);
      }
    };
    // Kill a worker every 1-3 s, mid-apply (PostgreSQL: every other kill behind a held offset row
    // lock, one in four aimed at a worker seen idle inside a replica transaction); start a replacement each time.
    let kills = 0;
    let aimed = 0;
    let locked = 0;
    const killUntil = Date.now() + 60_000;
    while ((kills < 8 || killsInsideTransactions() < 2) && kills < 20 && Date.now() < killUntil) {
      await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
      let v: ChildProcess | undefined;
      if (kills % 2 === 1) {
        // Killed there already (before the offset rows were let go).
        v = await killBehindOffsetLock();
        if (v) locked++;
      }
      if (!v && kills % 4 !== 0) {
        const aimUntil = Date.now() + 4000;
        while (!v && Date.now() < aimUntil) v = (await inTransaction()) ?? (await new Promise<undefined>((r) => setImmediate(() => r(undefined))));
      }
      const victims = [...workers];
      if (v) aimed++;
      v ??= victims[Math.floor(Math.random() * victims.length)];
      if (!v) continue;
      v.kill('SIGKILL');
      kills++;
      start();
    }
    killing = false;
    await publishing;
    await pub.close();
    const expected = model(events.slice(0, published));
    try {
      await until('the replica to match the history', async () => JSON.stringify(await replica.rows(container, TABLE, ['id'])) === JSON.stringify(expected), 120_000, { everyMs: 500 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- worker log tail ---\n${readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
    }
    console.log(`${kind} sink crash test: ${kills} kill -9, ${aimed} aimed inside a replica transaction (${locked} behind the offset lock), ${kind === 'postgres' ? killsInsideTransactions() : 'n/a'} logged by PostgreSQL as ended with an open transaction`);
    expect(kills).toBeGreaterThanOrEqual(8);
    expect(killsInsideTransactions(), `kills ${kills}, of them aimed at a session inside a transaction ${aimed} (${locked} behind the offset lock)`).toBeGreaterThanOrEqual(2);
    const audit = await doubleWrites(replica, container);
    expect(audit.doubles).toEqual([]);
    expect(audit.writes).toBeGreaterThan(1000);
    // every partition's stored offset is at the end of the topic
    const topic = sourceTopics(prefix, 'src').table(f.schema.id);
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    const stored = await replica.query(
      kind === 'postgres' ? `select "partition" as p, next_offset::text as o from "${meta}".offsets where topic = $1` : `select \`partition\` as p, cast(next_offset as char) as o from \`${meta}\`.offsets where topic = ?`,
      [topic],
    );
    expect(Object.fromEntries(stored.map((r) => [Number(r.p), String(r.o)]))).toEqual(Object.fromEntries(ends.map((e) => [e.partition, e.high])));
    for (const w of workers) w.kill('SIGTERM');
  });
});

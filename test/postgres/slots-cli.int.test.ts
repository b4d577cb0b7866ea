// `cdc slots list|drop` and `cdc publications list|drop` against a real source database.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.js';
import { env } from '../helpers.js';
import { type TestDb, createTestDb, dropTestDb } from './harness.js';

async function cdc(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    const code = await main(['node', 'cdc', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
}

describe('cdc slots / publications', () => {
  let db: TestDb;
  let file: string;

  beforeAll(async () => {
    db = await createTestDb('t_cli');
    await db.q(`create table t (id int primary key); create publication ${db.name} for table t`);
    await db.q(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [db.name]);
    file = join(mkdtempSync(join(tmpdir(), 'cdc-cli-')), 'p.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'cli', kafka: { brokers: [env.kafka] }, sources: [{ name: 'src', url: db.url, postgres: { slot: db.name, publication: db.name } }] }),
    );
  });
  afterAll(() => dropTestDb(db));

  it('lists the slot with its retained WAL and marks the configured one', async () => {
    const r = await cdc('slots', 'list', '-c', file);
    expect(r.code).toBe(0);
    const line = r.out.split('\n').find((l) => l.startsWith(db.name));
    expect(line).toMatch(new RegExp(`^${db.name}\\s+pgoutput\\s+${db.name}\\s+no\\s+-\\s+[0-9A-F]+/[0-9A-F]+\\s+[0-9.]+\\s+\\w+\\s+<- source src$`));
  });

  it('lists and drops the publication and the slot', async () => {
    const pubs = await cdc('publications', 'list', '-c', file);
    expect(pubs.out).toMatch(new RegExp(`${db.name}\\s+postgres\\s+no\\s+1\\s+insert,update,delete,truncate\\s+<- source src`));
    expect((await cdc('slots', 'drop', '-c', file)).code).toBe(0);
    expect(await db.q(`select 1 from pg_replication_slots where slot_name = $1`, [db.name])).toEqual([]);
    const again = await cdc('slots', 'drop', '-c', file);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`no replication slot named ${db.name}`);
    expect((await cdc('publications', 'drop', '-c', file)).code).toBe(0);
    expect(await db.q(`select 1 from pg_publication where pubname = $1`, [db.name])).toEqual([]);
    expect((await cdc('slots', 'list', '-c', file, '--source', 'nope')).code).toBe(2);
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, uniq } from '../helpers.js';

const run = promisify(execFile);

async function cdc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/cdc.js', ...args], { env: { ...process.env, CDC_LOG_LEVEL: 'warn' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function pgExec(url: string, sqlText: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sqlText);
  } finally {
    await c.end();
  }
}

async function myExec(url: string, sqlText: string): Promise<void> {
  const c = await mysql.createConnection({ uri: url, multipleStatements: true });
  try {
    await c.query(sqlText);
  } finally {
    await c.end();
  }
}

const PG_TABLE = `
create table public.items (id bigint primary key, name text not null, price numeric(12,2), at timestamp(6), doc jsonb, ok boolean);
create table public.tags (a int, b varchar(20), note text, primary key (a, b));
insert into public.items select g, 'item ' || g, g * 1.25, timestamp '2026-01-01 00:00:00' + g * interval '1.5 second', jsonb_build_object('n', g), g % 2 = 0 from generate_series(1, 2500) g;
insert into public.tags select g % 50, 'tag' || g, null from generate_series(1, 300) g;`;

const MY_TABLE = (db: string) => `set session max_recursive_iterations = 100000;
create table \`${db}\`.items (id bigint primary key, name text not null, price decimal(12,2), at datetime(6), doc longtext, ok tinyint(1));
create table \`${db}\`.tags (a int, b varchar(20), note text, primary key (a, b));
insert into \`${db}\`.items with recursive g(n) as (select 1 union all select n + 1 from g where n < 2500)
  select n, concat('item ', n), n * 1.25, timestamp'2026-01-01 00:00:00' + interval (n * 1.5) second, concat('{"n": ', n, '}'), n % 2 = 0 from g;
insert into \`${db}\`.tags with recursive g(n) as (select 1 union all select n + 1 from g where n < 300) select n % 50, concat('tag', n), null from g;`;

function config(name: string, sourceUrl: string, sinkUrl: string, include: string): string {
  return `name: ${name}
kafka: { brokers: ["${env.kafka}"] }
redis: { url: "${env.redis}" }
sources:
  - name: src
    url: ${sourceUrl}
    tables: { include: ["${include}"] }
sinks:
  - name: dst
    url: ${sinkUrl}
verify: { chunkRows: 400, concurrency: 2 }
`;
}

describe('cdc verify', () => {
  const db = uniq('verify');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdc-verify-'));
    await Promise.all([pgExec(env.pgSource, `create database ${db}`), pgExec(env.pgReplica, `create database ${db}`), myExec(env.mariaSource, `create database ${db}`), myExec(env.mariaReplica, `create database ${db}`)]);
    await Promise.all([
      pgExec(withDb(env.pgSource, db), PG_TABLE),
      pgExec(withDb(env.pgReplica, db), PG_TABLE),
      myExec(env.mariaSource, MY_TABLE(db)),
      myExec(env.mariaReplica, MY_TABLE(db)),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled([
      pgExec(env.pgSource, `drop database if exists ${db} with (force)`),
      pgExec(env.pgReplica, `drop database if exists ${db} with (force)`),
      myExec(env.mariaSource, `drop database if exists ${db}`),
      myExec(env.mariaReplica, `drop database if exists ${db}`),
    ]);
    await rm(dir, { recursive: true, force: true });
  });

  async function verify(src: string, dst: string, include: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const file = join(dir, `${uniq('cfg')}.yaml`);
    await writeFile(file, config(uniq('vp'), src, dst, include));
    return cdc('verify', '-c', file);
  }

  it('PostgreSQL -> PostgreSQL: equal, then names a changed cell, a missing row and an extra row', async () => {
    const src = withDb(env.pgSource, db);
    const dst = withDb(env.pgReplica, db);
    const same = await verify(src, dst, 'public.*');
    expect(same.stderr).toBe('');
    expect(same.stdout).toContain('result: equal');
    expect(same.stdout).toMatch(/equal\s+public\.items -> public\.items: source 2500 rows, replica 2500 rows/);
    expect(same.code).toBe(0);

    await pgExec(dst, `update public.items set price = 99.99 where id = 1234; delete from public.items where id = 77; insert into public.items values (100000, 'ghost', 1, null, null, null); update public.tags set note = 'x' where a = 7 and b = 'tag7'`);
    const diff = await verify(src, dst, 'public.*');
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('changed {"id":"1234"}: price');
    expect(diff.stdout).toContain('missing {"id":"77"} (in source, not in replica)');
    expect(diff.stdout).toContain('extra   {"id":"100000"} (in replica, not in source)');
    expect(diff.stdout).toContain('changed {"a":7,"b":"tag7"}: note');
    expect(diff.stdout).toContain('result: DIFFERENT');
  });

  it('MariaDB -> MariaDB: names the differing keys', async () => {
    const src = withDb(env.mariaSource, db);
    const dst = withDb(env.mariaReplica, db);
    const same = await verify(src, dst, `${db}.*`);
    expect(same.stdout).toContain('result: equal');
    expect(same.code).toBe(0);
    await myExec(env.mariaReplica, `update \`${db}\`.items set name = 'changed' where id = 5; delete from \`${db}\`.items where id = 2500; insert into \`${db}\`.items (id, name) values (0, 'extra')`);
    const diff = await verify(src, dst, `${db}.*`);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('changed {"id":"5"}: name');
    expect(diff.stdout).toContain('missing {"id":"2500"}');
    expect(diff.stdout).toContain('extra   {"id":"0"}');
  });

  it('PostgreSQL -> MariaDB across dialects: equal data compares equal, a changed cell is found', async () => {
    // Fresh copies on both sides of the cross-dialect pair.
    const x = `${db}x`;
    await myExec(env.mariaReplica, `create database ${x}`);
    try {
      await myExec(env.mariaReplica, MY_TABLE(x));
      const src = withDb(env.pgSource, db);
      const dst = withDb(env.mariaReplica, x);
      const same = await verify(src, dst, 'public.*');
      expect(same.stdout).toContain('result: equal');
      expect(same.code).toBe(0);
      await myExec(env.mariaReplica, `update \`${x}\`.items set at = '2026-01-01 00:00:01.000001' where id = 42`);
      const diff = await verify(src, dst, 'public.*');
      expect(diff.code).toBe(1);
      expect(diff.stdout).toContain('changed {"id":"42"}: at');
      expect(diff.stdout.match(/changed /g)).toHaveLength(1);
    } finally {
      await myExec(env.mariaReplica, `drop database if exists ${x}`);
    }
  });
});

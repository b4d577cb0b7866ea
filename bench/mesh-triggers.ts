// Cost of the mesh triggers on local writes (docs/multi-master.md): the same single-row
// autocommit inserts, updates and deletes on a plain table and on a mesh table (lww, and
// version-vector), PostgreSQL and MariaDB, 1 and 4 concurrent writers, against the shared servers.
//
//   npx tsx bench/mesh-triggers.ts [ops-per-writer]      (infra/up first)
//
// Writes bench/results/mesh-triggers.{json,md}. Measured on a machine that may be running other
// work: the result file records the load average; compare rows of the same run only.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pipelineConfig } from '../config/schema.js';
import { meshNodes } from '../pipeline/mesh/config.js';
import { prepareMeshNode } from '../pipeline/mesh/setup.js';
import { createLogger } from '../util/log.js';

const N = Number(process.argv[2] ?? 2000);
const PG = process.env.CDC_PG_SOURCE_URL ?? `postgres://postgres@127.0.0.1:${process.env.CDC_PG_SOURCE_PORT ?? 55432}/postgres`;
const MARIA = process.env.CDC_MARIA_SOURCE_URL ?? `mysql://root@127.0.0.1:${process.env.CDC_MARIA_SOURCE_PORT ?? 33306}`;
const log = createLogger('warn');

interface Exec {
  run(sql: string, params: unknown[]): Promise<void>;
  close(): Promise<void>;
}

async function pgDb(db: string): Promise<{ url: string; exec: () => Promise<Exec>; drop: () => Promise<void> }> {
  const admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${db}`);
  const u = new URL(PG);
  u.pathname = `/${db}`;
  return {
    url: u.toString(),
    exec: async () => {
      const c = new pg.Client({ connectionString: u.toString() });
      await c.connect();
      return { run: async (sql, params) => void (await c.query(sql, params)), close: () => c.end() };
    },
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.end();
    },
  };
}

async function mariaDb(db: string, meta: string): Promise<{ url: string; exec: () => Promise<Exec>; drop: () => Promise<void> }> {
  const admin = await mysql.createConnection({ uri: MARIA });
  await admin.query(`CREATE DATABASE \`${db}\``);
  return {
    url: `${MARIA}/${db}`,
    exec: async () => {
      const c = await mysql.createConnection({ uri: `${MARIA}/${db}` });
      return { run: async (sql, params) => void (await c.query(sql, params)), close: () => c.end() };
    },
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await admin.query(`DROP DATABASE IF EXISTS \`${meta}\``);
      await admin.end();
    },
  };
}

/** ops/s of inserts, updates and deletes by `writers` connections, each on its own key range. */
async function workload(kind: 'postgres' | 'mysql', exec: () => Promise<Exec>, table: string, writers: number) {
  const p = (i: number) => (kind === 'postgres' ? `$${i}` : '?');
  const conns = await Promise.all(Array.from({ length: writers }, () => exec()));
  const phase = async (f: (c: Exec, id: number) => Promise<void>) => {
    const t0 = process.hrtime.bigint();
    await Promise.all(conns.map(async (c, w) => { for (let i = 0; i < N; i++) await f(c, w * N + i + 1); }));
    return Math.round((writers * N) / (Number(process.hrtime.bigint() - t0) / 1e9));
  };
  const insert = await phase((c, id) => c.run(`INSERT INTO ${table} (id, name, qty) VALUES (${p(1)}, ${p(2)}, 1)`, [id, `n${id}`]));
  const update = await phase((c, id) => c.run(`UPDATE ${table} SET qty = qty + 1, name = ${p(1)} WHERE id = ${p(2)}`, [`u${id}`, id]));
  const del = await phase((c, id) => c.run(`DELETE FROM ${table} WHERE id = ${p(1)}`, [id]));
  await Promise.all(conns.map((c) => c.close()));
  return { insert, update, delete: del };
}

interface Row {
  server: string;
  table: string;
  writers: number;
  insertPerS: number;
  updatePerS: number;
  deletePerS: number;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const kind of ['postgres', 'mysql'] as const) {
    const db = `bench_mesh_${randomBytes(3).toString('hex')}`;
    const meta = `${db}_meta`;
    const h = kind === 'postgres' ? await pgDb(db) : await mariaDb(db, meta);
    try {
      const setup = await h.exec();
      const q = (t: string) => (kind === 'postgres' ? `public.${t}` : `\`${db}\`.\`${t}\``);
      for (const t of ['plain', 'mesh_lww', 'mesh_vv']) await setup.run(`CREATE TABLE ${q(t)} (id int PRIMARY KEY, name varchar(64), qty int)`, []);
      await setup.close();
      const cfg = pipelineConfig.parse({
        name: 'bench',
        kafka: { brokers: ['127.0.0.1:1'] },
        mesh: {
          nodes: [{ name: 'here', url: h.url }, { name: 'elsewhere', url: h.url }],
          tables: ['mesh_lww', 'mesh_vv'],
          metaSchema: kind === 'postgres' ? 'cdc_meta' : meta,
          conflict: { strategy: 'lww', tables: { mesh_vv: { strategy: 'version-vector' } } },
        },
      });
      await prepareMeshNode(cfg.mesh!, meshNodes(cfg.mesh!)[0]!, log);
      for (const writers of [1, 4]) {
        for (const t of ['plain', 'mesh_lww', 'mesh_vv']) {
          const r = await workload(kind, h.exec, q(t), writers);
          rows.push({ server: kind === 'postgres' ? 'PostgreSQL 15' : 'MariaDB 10.11', table: t, writers, insertPerS: r.insert, updatePerS: r.update, deletePerS: r.delete });
          console.log(JSON.stringify(rows.at(-1)));
        }
      }
    } finally {
      await h.drop();
    }
  }
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  fs.mkdirSync(out, { recursive: true });
  const meta = { when: new Date().toISOString(), opsPerWriter: N, loadavg: loadavg(), note: 'single-row autocommit statements on the shared infra servers (fsync on); other work may have been running' };
  fs.writeFileSync(join(out, 'mesh-triggers.json'), `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
  const md = [
    '# Mesh triggers: cost on local writes',
    '',
    `${meta.when}, ${N} operations per writer, load average ${meta.loadavg.map((x) => x.toFixed(2)).join(' ')}. ${meta.note}.`,
    '`plain`: no mesh; `mesh_lww`: version columns + HLC triggers + tombstone/outbox on delete; `mesh_vv`: + version vector and per-column versions.',
    '',
    '| server | table | writers | inserts/s | updates/s | deletes/s |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.server} | ${r.table} | ${r.writers} | ${r.insertPerS} | ${r.updatePerS} | ${r.deletePerS} |`),
    '',
  ].join('\n');
  fs.writeFileSync(join(out, 'mesh-triggers.md'), md);
  console.log(md);
}

await main();

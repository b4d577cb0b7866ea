import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stringify } from 'yaml';
import { repoRoot } from '../../infra/servers.js';

/**
 * Multi-master test support: one database per mesh node (own name), the node's pipeline as a
 * real `cdc run --only <node>` child process (its Kafka endpoint from the environment, so each
 * region can go through its own link), and canonical per-node dumps for comparison.
 */

export type Cell = string | null;

export interface NodeDb {
  name: string;
  kind: 'postgres' | 'mysql';
  /** URL of the node's database (what the mesh config gets). */
  url: string;
  /** Database (PostgreSQL) created for this test. */
  database: string;
  /** Runs one statement on the node's pooled connection. */
  exec(sql: string, params?: unknown[]): Promise<number>;
  /** Runs statements in one transaction; returns each statement's affected rows. */
  tx(statements: { sql: string; params?: unknown[] }[]): Promise<number[]>;
  /** Rows as objects (values as the driver returns them). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Quotes an identifier. */
  q(id: string): string;
  /** Placeholder for parameter i (1-based). */
  p(i: number): string;
  /** Schema-qualified table name. */
  t(table: string): string;
  /** Meta schema name qualified. */
  meta(table: string, metaSchema?: string): string;
  close(): Promise<void>;
  /** Drops the database (and, on MariaDB, the mesh's meta database `metaSchema`: server-wide there). */
  drop(metaSchema?: string): Promise<void>;
}

/** A database on a PostgreSQL server (`serverUrl` to its postgres database). */
export async function pgNode(name: string, serverUrl: string, database: string): Promise<NodeDb> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  const q = (id: string) => `"${id.replace(/"/g, '""')}"`;
  return {
    name,
    kind: 'postgres',
    url,
    database,
    async exec(sql, params) {
      const r = await pool.query(sql, params as unknown[]);
      return r.rowCount ?? 0;
    },
    async query(sql, params) {
      return (await pool.query(sql, params as unknown[])).rows as Record<string, unknown>[];
    },
    async tx(statements) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const out: number[] = [];
        for (const st of statements) out.push((await c.query(st.sql, st.params as unknown[])).rowCount ?? 0);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    },
    q,
    p: (i) => `$${i}`,
    t: (table) => `public.${q(table)}`,
    meta: (table, m = 'cdc_meta') => `${q(m)}.${q(table)}`,
    async close() {
      await pool.end().catch(() => undefined);
    },
    async drop() {
      await pool.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        for (let i = 0; i < 50; i++) {
          await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [database]);
          for (const r of (await c.query(`SELECT slot_name FROM pg_replication_slots WHERE database = $1 AND NOT active`, [database])).rows as { slot_name: string }[]) {
            await c.query(`SELECT pg_drop_replication_slot($1)`, [r.slot_name]).catch(() => undefined);
          }
          const left = await c.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1`, [database]);
          if (Number((left.rows[0] as { n: number }).n) === 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
        // Replication origins are server-wide: drop the ones this node's sink created.
        for (const r of (await c.query(`SELECT roname FROM pg_replication_origin WHERE roname LIKE $1`, [`cdc_mesh_${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_%`])).rows as { roname: string }[]) {
          await c.query(`SELECT pg_replication_origin_drop($1)`, [r.roname]).catch(() => undefined);
        }
      } finally {
        await c.end();
      }
    },
  };
}

/** A database on a MariaDB server (`serverUrl` without a database). */
export async function mariaNode(name: string, serverUrl: string, database: string): Promise<NodeDb> {
  const pool = mysql.createPool({ uri: serverUrl, connectionLimit: 4, charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
  await pool.query(`CREATE DATABASE \`${database}\``);
  const q = (id: string) => `\`${id.replace(/`/g, '``')}\``;
  return {
    name,
    kind: 'mysql',
    url: `${serverUrl.replace(/\/$/, '')}/${database}`,
    database,
    async exec(sql, params) {
      const [r] = await pool.query(sql, params);
      return (r as { affectedRows?: number }).affectedRows ?? 0;
    },
    async query(sql, params) {
      const [rows] = await pool.query(sql, params);
      return rows as Record<string, unknown>[];
    },
    async tx(statements) {
      const c = await pool.getConnection();
      try {
        await c.beginTransaction();
        const out: number[] = [];
        for (const st of statements) {
          const [r] = await c.query(st.sql, st.params);
          out.push((r as { affectedRows?: number }).affectedRows ?? 0);
        }
        await c.commit();
        return out;
      } catch (err) {
        await c.rollback().catch(() => undefined);
        throw err;
      } finally {
        c.release();
      }
    },
    q,
    p: () => '?',
    t: (table) => `${q(database)}.${q(table)}`,
    meta: (table, m = 'cdc_meta') => `${q(m)}.${q(table)}`,
    async close() {
      await pool.end().catch(() => undefined);
    },
    async drop(metaSchema) {
      await pool.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => undefined);
      if (metaSchema !== undefined) await pool.query(`DROP DATABASE IF EXISTS ${q(metaSchema)}`).catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}

/**
 * Writes the mesh config YAML (brokers from `${MESH_KAFKA}` so each node's process can use its own
 * link). With `metricsPorts`, one file per node (`<name>.<node>.yaml`) serving /metrics on its port.
 */
export function writeMeshConfig(dir: string, o: { name: string; nodes: NodeDb[]; tables: string[]; metaSchema: string; conflict?: Record<string, unknown>; extra?: Record<string, unknown>; metricsPorts?: Record<string, number> }): string {
  const file = join(dir, `${o.name}.yaml`);
  const cfg = {
    name: o.name,
    kafka: { brokers: ['${MESH_KAFKA}'], topicPrefix: o.name, partitions: 3 },
    log: { level: '${MESH_LOG_LEVEL:-warn}' },
    mesh: {
      nodes: o.nodes.map((n, i) => ({ name: n.name, url: n.url, ...(n.kind === 'mysql' ? { applyServerId: 3_900_000_000 + i, readerServerId: 7_000_000 + i + Math.floor(Math.random() * 1_000_000) } : {}) })),
      tables: o.tables,
      metaSchema: o.metaSchema,
      heartbeatIntervalMs: 2000,
      ...(o.conflict ? { conflict: o.conflict } : {}),
    },
    ...o.extra,
  };
  fs.writeFileSync(file, stringify(cfg));
  for (const [node, port] of Object.entries(o.metricsPorts ?? {})) fs.writeFileSync(join(dir, `${o.name}.${node}.yaml`), stringify({ ...cfg, metrics: { port } }));
  return file;
}

/** A free TCP port on 127.0.0.1 (for a child's metrics endpoint). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Sum of a Prometheus counter's samples whose labels include `labels`. */
export async function scrapeCounter(port: number, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

export interface NodeProcess {
  node: string;
  configFile: string;
  child: ChildProcess;
  /** stderr lines of the process (JSON logs). */
  logs: string[];
  exited: Promise<number | null>;
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

/** Runs `cdc run -c <file> --only <node>` with the node's Kafka endpoint. */
export function runNode(configFile: string, node: string, kafka: string, env: Record<string, string> = {}): NodeProcess {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'cdc.js'), 'run', '-c', configFile, '--only', node], {
    cwd: repoRoot,
    env: { ...process.env, MESH_KAFKA: kafka, CDC_SINK_SESSION_TIMEOUT_MS: '10000', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: string[] = [];
  let buf = '';
  child.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      logs.push(buf.slice(0, i));
      if (logs.length > 5000) logs.shift();
      buf = buf.slice(i + 1);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    node,
    configFile,
    child,
    logs,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Canonical dump of a table: one line per row, user columns as text, sorted by key. */
export async function dump(n: NodeDb, table: string, columns: string[], key: string): Promise<string[]> {
  const cast = (c: string) => (n.kind === 'postgres' ? `${n.q(c)}::text` : `CAST(${n.q(c)} AS CHAR)`);
  const rows = await n.query(`SELECT ${columns.map((c) => `${cast(c)} AS ${n.q(c)}`).join(', ')} FROM ${n.t(table)} ORDER BY ${n.q(key)}`);
  return rows.map((r) => JSON.stringify(columns.map((c) => (r[c] === null || r[c] === undefined ? null : String(r[c])))));
}

export function checksum(lines: string[]): string {
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}

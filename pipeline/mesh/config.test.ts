import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import { ConfigError } from '../../schemas/errors.js';
import { expandMesh, MESH_LOCK_KEY } from './config.js';

const base = `
name: m
kafka: { brokers: ["127.0.0.1:9092"] }
mesh:
  nodes:
    - { name: pg-eu, url: "postgres://u@eu/app" }
    - { name: pg-us, url: "postgres://u@us/app", schema: shop }
    - { name: maria-ap, url: "mysql://u@ap/app", applyServerId: 4000000009 }
  tables: [items, carts]
  conflict: { strategy: lww, tables: { carts: { strategy: version-vector } } }
`;

function problems(text: string): string[] {
  try {
    parseConfig(text);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('mesh config expansion', () => {
  it('gives every node a local-only source and a sink of all the other nodes', () => {
    const cfg = expandMesh(parseConfig(base));
    expect(cfg.sources.map((s) => s.name)).toEqual(['pg-eu', 'pg-us', 'maria-ap']);
    expect(cfg.sinks.map((s) => [s.name, s.sources])).toEqual([
      ['pg-eu', ['pg-us', 'maria-ap']],
      ['pg-us', ['pg-eu', 'maria-ap']],
      ['maria-ap', ['pg-eu', 'pg-us']],
    ]);
    for (const s of cfg.sources) {
      expect(s.localOnly).toBe(true);
      expect(s.origin).toBe(s.name);
    }
    expect(cfg.sources[1]!.tables.include).toEqual(['shop.items', 'shop.carts', 'cdc_meta.mesh_outbox']);
    expect(cfg.sources[2]!.tables.include).toEqual(['app.items', 'app.carts', 'cdc_meta.mesh_outbox']);
    expect(cfg.sources[0]!.postgres?.slot).toBe('cdc_mesh_pg_eu');
    expect(cfg.sinks[1]!.targetSchema).toBe('shop');
    expect(cfg.sinks[2]!.targetSchema).toBe('app');
    expect(cfg.sinks[0]!.conflict.tables?.carts?.strategy).toBe('version-vector');
  });

  it('marks apply sessions: replication origins on PostgreSQL, server_id on MariaDB, and the apply lock', () => {
    const cfg = expandMesh(parseConfig(base));
    expect(cfg.sinks[0]!.initSql[0]).toContain(`cdc_mesh_apply_session('cdc_mesh_pg_eu'`);
    expect(cfg.sinks[0]!.beginSql).toEqual([`SELECT pg_advisory_xact_lock(${MESH_LOCK_KEY})`]);
    expect(cfg.sinks[2]!.initSql).toEqual(['SET SESSION server_id = 4000000009']);
    expect(cfg.sinks[2]!.beginSql[0]).toMatch(/FOR UPDATE$/);
  });

  it('is a no-op without a mesh block', () => {
    const cfg = parseConfig(`name: m\nkafka: { brokers: ["127.0.0.1:9092"] }\n`);
    expect(expandMesh(cfg)).toBe(cfg);
  });

  it('names each mistake in one line', () => {
    const p = problems(`
name: m
kafka: { brokers: ["127.0.0.1:9092"] }
mesh:
  nodes:
    - { name: a, url: "postgres://u@x/app", applyServerId: 5 }
    - { name: a, url: "mysql://u@y" }
  tables: [public.items]
  conflict: { strategy: none }
`);
    expect(p).toEqual(
      expect.arrayContaining([
        'mesh.tables[0]: expected a table name without schema',
        'mesh.nodes[1].name: duplicate mesh node "a"',
        'mesh.nodes[1].url: a MySQL/MariaDB node URL must name the database holding the mesh tables',
        'mesh.nodes[0]: applyServerId / readerServerId are only for MySQL/MariaDB nodes',
        'mesh.conflict.strategy: a mesh needs lww, version-vector or custom (none cannot converge)',
      ]),
    );
  });
});

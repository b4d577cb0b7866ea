import type pg from 'pg';
import type { Logger } from 'pino';
import { schemaBytesPerRecord } from '../../config/schema.js';
import { type TableSchema, schemaFingerprint, tableName } from '../../schemas/table-schema.js';
import { type TypeCache, formatTypes, relationFacts } from './catalog.js';
import type { PgoutputMessage } from './decode.js';
import type { RelationRole, RelationState } from './events.js';
import type { ResolvedOptions } from './options.js';
import { columnCodec } from './type-map.js';

/** First OID of user-defined objects; below it the catalog is fixed. */
const FIRST_NORMAL_OID = 16384;

export interface DescribeContext {
  client: pg.Client;
  types: TypeCache;
  db: string;
  o: ResolvedOptions;
  log: Logger;
  /** Keys already warned about (once per run). */
  warned: Set<string>;
  previous?: RelationState;
}

function roleOf(o: ResolvedOptions, schema: string, table: string): RelationRole {
  const name = `${schema}.${table}`;
  if (o.heartbeatEnabled && name === o.heartbeatTable) return 'heartbeat';
  if (o.signalTable !== undefined && name === o.signalTable) return 'table';
  return o.filter(schema, table) ? 'table' : 'skip';
}

/**
 * Builds the state of one relation version from its Relation message. Column names, types and
 * typmods come from the message (they are as of the WAL position, so events before an ALTER
 * keep their old shape); nullability and the primary key's order come from the catalog now,
 * used only where they agree with the message.
 */
export async function describeRelation(msg: Extract<PgoutputMessage, { tag: 'relation' }>, c: DescribeContext): Promise<RelationState> {
  const { client, types, o, log, warned } = c;
  const schemaName = msg.namespace === '' ? 'pg_catalog' : msg.namespace;
  const id = { db: c.db, schema: schemaName, table: msg.name };
  const collection = tableName(id);
  let role = roleOf(o, schemaName, msg.name);

  const oids = msg.columns.map((col) => col.typeOid);
  types.forget(oids.filter((oid) => oid >= FIRST_NORMAL_OID));
  await types.ensure(client, oids);
  // One query at a time: pg queues concurrent queries on a client but warns (pg@9 will refuse).
  const facts = await relationFacts(client, msg.relationId);
  const sourceTypes = await formatTypes(client, msg.columns);

  const names = msg.columns.map((col) => col.name);
  const codecs = msg.columns.map((col) => columnCodec(col.typeOid, col.typmod, (oid) => types.get(oid)));
  codecs.forEach((codec, i) => {
    const key = `${collection}.${names[i]}`;
    if (codec.passthrough && role === 'table' && !warned.has(key)) {
      warned.add(key);
      log.warn({ table: collection, column: names[i], type: sourceTypes[i] }, `column values pass through as text: ${codec.passthrough}`);
    }
  });

  const keyIdx = msg.columns.flatMap((col, i) => ((col.flags & 1) !== 0 ? [i] : []));
  const catalogPkValid = facts.primaryKey.length > 0 && facts.primaryKey.every((k) => names.includes(k));
  let primaryKey: string[];
  if (msg.replicaIdentity === 'd' || msg.replicaIdentity === 'i') {
    const flagged = keyIdx.map((i) => names[i]!);
    const sameSet = catalogPkValid && facts.primaryKey.length === flagged.length && facts.primaryKey.every((k) => flagged.includes(k));
    primaryKey = sameSet ? facts.primaryKey : flagged;
  } else {
    // FULL flags every column; NOTHING flags none: the catalog's primary key is the row's key.
    primaryKey = catalogPkValid ? facts.primaryKey : [];
  }

  if (role === 'table' && primaryKey.length === 0 && o.keylessTables === 'skip' && `${schemaName}.${msg.name}` !== o.signalTable) {
    role = 'skip';
    const key = `${collection}:keyless`;
    if (!warned.has(key)) {
      warned.add(key);
      log.warn({ table: collection }, 'table has no primary key: its changes are skipped (postgres.keylessTables: skip)');
    }
  }

  let schema: TableSchema = {
    id,
    columns: msg.columns.map((col, i) => ({
      name: col.name,
      type: codecs[i]!.type,
      nullable: !facts.notNull.has(col.name),
      sourceType: sourceTypes[i] ?? 'unknown',
      defaultExpr: facts.defaults.get(col.name) ?? null,
    })),
    primaryKey,
    dialect: 'postgres',
  };
  // Relation messages repeat after reconnects and cache invalidations: keep one object per shape
  // so the codec serialises it once.
  if (c.previous && schemaFingerprint(c.previous.schema) === schemaFingerprint(schema)) schema = c.previous.schema;
  else if (c.previous && c.previous.role === 'table') log.info({ table: collection }, 'table shape changed');

  return { relationId: msg.relationId, role, schema, codecs, names, keyIdx, collection, schemaBytes: schemaBytesPerRecord(o.pipeline, () => JSON.stringify(schema)) };
}

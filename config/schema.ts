import { z } from 'zod';

/**
 * The config file's schema: the one source of the option types used across the project
 * (bullmq's composed `*Options` interfaces; here each block is a zod object and its type is
 * inferred). Every object is strict, so a misspelt key is an error, not a silently ignored option.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const name = (what: string) =>
  z.string({ error: `expected a ${what} name` }).regex(NAME, { error: `expected a ${what} name of letters, digits, _ and - (starting with a letter or digit)` });

export type DbKind = 'postgres' | 'mysql';

/** postgres://, postgresql://, mysql://, mariadb:// */
export function urlKind(url: string): DbKind | undefined {
  const m = /^([a-z]+):\/\//i.exec(url);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  if (scheme === 'mysql' || scheme === 'mariadb') return 'mysql';
  return undefined;
}

const dbUrl = z.string({ error: 'expected postgres:// or mysql:// URL' }).refine(
  (u) => {
    if (urlKind(u) === undefined) return false;
    try {
      new URL(u.replace(/^mariadb:/i, 'mysql:'));
      return true;
    } catch {
      return false;
    }
  },
  { error: 'expected postgres:// or mysql:// URL' },
);

const tableFilter = z
  .strictObject({
    /** Tables to capture, `schema.table` (PostgreSQL) or `db.table` (MySQL); `*` wildcards allowed. @defaultValue all */
    include: z.array(z.string()).optional(),
    /** Tables to leave out, same form as include. */
    exclude: z.array(z.string()).default([]),
  })
  .default({ exclude: [] });

export const postgresSourceOptions = z.strictObject({
  /** Replication slot name. @defaultValue `cdc_<source name>` */
  slot: z.string().regex(/^[a-z0-9_]+$/, { error: 'expected a slot name of lower-case letters, digits and _' }).optional(),
  /** Publication name. @defaultValue `cdc_<source name>` */
  publication: z.string().optional(),
  /** Milliseconds between heartbeat writes that keep the slot advancing; 0 disables. @defaultValue 10000 */
  heartbeatIntervalMs: z.number().int().min(0).default(10_000),
  /** Table the heartbeat writes to (created if absent). @defaultValue `cdc_heartbeat` in schema public */
  heartbeatTable: z.string().default('public.cdc_heartbeat'),
  /** Warn (and expose a metric) when the slot retains more WAL than this. @defaultValue 1024 */
  maxRetainedWalMb: z.number().int().positive().default(1024),
  /** Tables without a primary key: skip them with a warning, or set REPLICA IDENTITY FULL. @defaultValue skip */
  keylessTables: z.enum(['skip', 'replica-identity-full']).default('skip'),
  /**
   * filtered: the publication lists the matching tables, and tables created later are added every
   * `tableRefreshIntervalMs` (rows written before that need a snapshot). all-tables: FOR ALL
   * TABLES (superuser), new tables are captured from their first row and filtered here.
   * @defaultValue filtered
   */
  publicationMode: z.enum(['filtered', 'all-tables']).default('filtered'),
  /** Milliseconds between looks for new tables to add to a filtered publication; 0 disables. @defaultValue 60000 */
  tableRefreshIntervalMs: z.number().int().min(0).default(60_000),
  /** Table always added to the publication, whatever the filter (incremental-snapshot signals), `schema.table`. */
  signalTable: z.string().optional(),
  /** Milliseconds between standby status updates (the walsender's liveness signal; keep below wal_sender_timeout). @defaultValue 10000 */
  statusIntervalMs: z.number().int().positive().default(10_000),
  /** Milliseconds between retained-WAL checks. @defaultValue 30000 */
  walCheckIntervalMs: z.number().int().positive().default(30_000),
  /** Most change events in one Kafka batch. @defaultValue 2000 */
  maxBatchEvents: z.number().int().positive().default(2000),
  /**
   * Approximate encoded bytes of one Kafka batch. Kafka refuses a partition's record batch above
   * the topic's max.message.bytes (1 MiB by default), so keep this below it. @defaultValue 786432
   */
  maxBatchBytes: z.number().int().positive().default(768 * 1024),
});

export const mysqlSourceOptions = z.strictObject({
  /** server_id this connector registers with; must differ from every server and other replica. @defaultValue 5400 + source index */
  serverId: z.number().int().min(1).max(4294967295).optional(),
  /** Where to start when there is no stored offset: the current end of the binlog, or a snapshot. @defaultValue end */
  startFrom: z.enum(['end', 'snapshot']).default('end'),
  /**
   * Milliseconds of source silence after which the server sends a binlog heartbeat; the
   * connector then publishes a heartbeat record and stores its position. 0 turns heartbeat
   * records off (the server heartbeat stays at 10 s for liveness). @defaultValue 10000
   */
  heartbeatIntervalMs: z.number().int().min(0).default(10_000),
  /** Table always captured whatever the filter (incremental-snapshot signals), `db.table`. */
  signalTable: z.string().regex(/^[^.\s]+\.[^.\s]+$/, { error: 'expected db.table' }).optional(),
  /** Topic of the schema history (one partition, kept forever). @defaultValue `<prefix>.<source>.schema-history` */
  schemaHistoryTopic: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected letters, digits, ., _ and -' }).optional(),
  /** Most change events in one Kafka transaction. @defaultValue 2000 */
  maxBatchEvents: z.number().int().positive().default(2000),
  /**
   * Most estimated encoded bytes of one table's events in one Kafka transaction (all tables
   * together: four times this); keep it under the topics' max.message.bytes. A source
   * transaction larger than this is published in chunks. @defaultValue 786432
   */
  maxBatchBytes: z.number().int().min(16 * 1024).default(768 * 1024),
  /** Binlog bytes read ahead of Kafka before the replication socket is paused. @defaultValue 33554432 */
  readAheadBytes: z.number().int().min(1024 * 1024).default(32 * 1024 * 1024),
  /** Host name this connector registers with (SHOW SLAVE HOSTS). @defaultValue `cdc-<pipeline>-<source>` */
  reportHost: z.string().max(60).optional(),
});

export const sourceConfig = z.strictObject({
  name: name('source'),
  url: dbUrl,
  tables: tableFilter,
  /** Node id written as `source.origin` (multi-master). @defaultValue the source name */
  origin: z.string().optional(),
  /**
   * Capture only what local clients wrote: skip transactions a replication process applied
   * (PostgreSQL: under a replication origin; MySQL/MariaDB: with another server_id), like
   * PostgreSQL 16's `origin = none`. A `mesh` sets it on its sources (docs/multi-master.md).
   * @defaultValue false
   */
  localOnly: z.boolean().default(false),
  postgres: postgresSourceOptions.optional(),
  mysql: mysqlSourceOptions.optional(),
});

export const conflictOptions = z
  .strictObject({
    /** none: apply in log order; lww: last writer wins by source commit timestamp. @defaultValue lww */
    strategy: z.enum(['none', 'lww', 'version-vector', 'custom']).default('lww'),
    /** Days a delete tombstone is kept so a late older write cannot resurrect the row. @defaultValue 7 */
    tombstoneHorizonDays: z.number().positive().default(7),
    /** Record every conflict in a conflicts table on the replica. @defaultValue true */
    logConflicts: z.boolean().default(true),
    /** Module exporting the custom resolver (strategy custom), or the name it was registered under. */
    resolver: z.string().optional(),
    /**
     * Per-table overrides of strategy and resolver, keyed by the replica table (`schema.table` /
     * `db.table`, or the bare table name). See docs/multi-master.md.
     */
    tables: z
      .record(
        z.string(),
        z.strictObject({
          strategy: z.enum(['none', 'lww', 'version-vector', 'custom']),
          resolver: z.string().optional(),
        }),
      )
      .optional(),
  })
  .default({ strategy: 'lww', tombstoneHorizonDays: 7, logConflicts: true });

export const sinkConfig = z.strictObject({
  name: name('sink'),
  url: dbUrl,
  /** Sources whose topics this sink consumes. @defaultValue all sources */
  sources: z.array(z.string()).optional(),
  /** key: parallel, per-key order; transaction: whole source transactions in commit order. @defaultValue key */
  mode: z.enum(['key', 'transaction']).default('key'),
  /** Kafka consumer group. @defaultValue `cdc-sink-<pipeline name>-<sink name>` */
  group: z.string().optional(),
  /** Schema (PostgreSQL) or database (MySQL) on the replica that receives the tables. @defaultValue the source's */
  targetSchema: z.string().optional(),
  /** What a dropped source column does to the replica. @defaultValue keep */
  dropColumns: z.enum(['drop', 'keep']).default('keep'),
  /** Most changes applied in one replica transaction. @defaultValue 1000 */
  batchSize: z.number().int().positive().default(1000),
  conflict: conflictOptions,
  /** Schema (PostgreSQL) or database (MySQL) on the replica for the sink's offsets, tombstones and conflicts. @defaultValue cdc_meta */
  metaSchema: z.string().min(1).max(63).default('cdc_meta'),
  /** Partitions one worker applies at once (key mode); each holds a replica connection. @defaultValue 3 */
  concurrency: z.number().int().positive().max(64).default(3),
  /** Milliseconds between looks for new table topics of the sink's sources. @defaultValue 10000 */
  topicRefreshIntervalMs: z.number().int().positive().default(10_000),
  /**
   * Transaction mode: most change events buffered per partition while waiting for the rest of a
   * source transaction; past it the partition pauses. A larger transaction is applied in chunks
   * inside one open replica transaction, so memory stays bounded. @defaultValue 20000
   */
  maxBufferedEvents: z.number().int().positive().default(20_000),
  /**
   * Key mode: how long a key change whose new row lacks columns the source did not send (unchanged
   * TOASTed values) waits for the old row, whose earlier changes are in another partition, before
   * writing the new row without them (NULL; logged). @defaultValue 30000
   */
  keyChangeWaitMs: z.number().int().min(0).default(30_000),
  /** SQL run once on every new replica connection (Debezium's `database.initial.statements`); a `mesh` marks its apply sessions with it. */
  initSql: z.array(z.string()).default([]),
  /** SQL run at the start of every replica transaction. */
  beginSql: z.array(z.string()).default([]),
});

export const kafkaConfig = z.strictObject({
  brokers: z.array(z.string().regex(/^[^:\s]+:\d+$/, { error: 'expected host:port' })).min(1, { error: 'expected at least one broker' }),
  clientId: z.string().default('cdc'),
  /** First part of every topic name. @defaultValue the pipeline name */
  topicPrefix: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'expected letters, digits, ., _ and -' }).optional(),
  /** Partitions of topics the pipeline creates. @defaultValue 3 */
  partitions: z.number().int().positive().default(3),
  /** @defaultValue 1 */
  replicationFactor: z.number().int().positive().default(1),
  /** Write a null-value record after each delete, for log-compacted topics. @defaultValue true */
  tombstones: z.boolean().default(true),
  /**
   * `max.message.bytes` of the topics the pipeline creates: the largest record batch a partition
   * accepts. Rows with large text/bytea/blob values need more than Kafka's 1 MiB default.
   * @defaultValue 16777216
   */
  maxMessageBytes: z.number().int().min(1024).default(16 * 1024 * 1024),
  /** @defaultValue json */
  encoding: z.enum(['json', 'avro']).default('json'),
  /**
   * JSON encoding: where a record's table schema is. `reference`: a `cdc.schema.ref` header names
   * it in the compacted `<prefix>.schemas` topic (small records; our sinks resolve it). `inline`:
   * every record carries it whole in `cdc.schema` (~2 KB each; for readers that cannot look it up).
   * @defaultValue reference
   */
  jsonSchemas: z.enum(['reference', 'inline']).default('reference'),
  /**
   * Confluent-compatible schema registry for `encoding: avro` (Confluent, Apicurio's
   * `/apis/ccompat/v7`, Karapace, Redpanda). See docs/avro.md.
   */
  schemaRegistry: z
    .strictObject({
      /** Base URL of the Confluent-compatible API; `user:password@` becomes basic auth. */
      url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
      /** Level set on the subjects the pipeline creates; changes are checked against it before publishing. @defaultValue BACKWARD */
      compatibility: z.enum(['BACKWARD', 'BACKWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE']).default('BACKWARD'),
      /** Per-request timeout in milliseconds. @defaultValue 10000 */
      timeoutMs: z.number().int().positive().default(10_000),
    })
    .optional(),
});

export const snapshotOptions = z
  .strictObject({
    /** initial: copy the existing rows when a source starts with no slot / stored offset; never: stream only. @defaultValue initial */
    mode: z.enum(['initial', 'never']).default('initial'),
    /**
     * Where snapshot rows go: kafka (op r events, as Debezium), direct (bulk COPY / multi-row
     * INSERT straight into each sink's replica, the fast path) or both. @defaultValue kafka
     */
    target: z.enum(['kafka', 'direct', 'both']).default('kafka'),
    /** Rows per chunk job (key or CTID range). @defaultValue 50000 */
    chunkRows: z.number().int().positive().default(50_000),
    /** Chunk jobs one worker process runs at once. @defaultValue 2 */
    concurrency: z.number().int().positive().default(2),
    /** Attempts per chunk job before the snapshot fails. @defaultValue 5 */
    attempts: z.number().int().positive().default(5),
    /** First retry delay of a failed chunk job, doubled each attempt. @defaultValue 1000 */
    backoffMs: z.number().int().positive().default(1000),
    /** Rows per watermark window of an incremental snapshot (`cdc snapshot TABLE`). @defaultValue 5000 */
    incrementalChunkRows: z.number().int().positive().default(5000),
    /**
     * How PostgreSQL tables are split: ctid (heap page ranges, fastest, exact while the one
     * exported snapshot lives), key (primary-key ranges, each resumable on its own after the
     * snapshot is lost), or auto (ctid for the bulk path, key otherwise). @defaultValue auto
     */
    chunking: z.enum(['auto', 'key', 'ctid']).default('auto'),
  })
  .default({ mode: 'initial', target: 'kafka', chunkRows: 50_000, concurrency: 2, attempts: 5, backoffMs: 1000, incrementalChunkRows: 5000, chunking: 'auto' });

export const verifyOptions = z
  .strictObject({
    /** Rows per checksum chunk. @defaultValue 10000 */
    chunkRows: z.number().int().positive().default(10_000),
    /** Chunk comparisons run at once. @defaultValue 2 */
    concurrency: z.number().int().positive().default(2),
    /** Differing keys listed per table in the report. @defaultValue 100 */
    maxReportedKeys: z.number().int().positive().default(100),
  })
  .default({ chunkRows: 10_000, concurrency: 2, maxReportedKeys: 100 });

export const meshNodeConfig = z.strictObject({
  /** Node id: the name of its source and sink, `source.origin`, and the tie-break between equal timestamps. */
  name: name('mesh node'),
  /** The node's database; MySQL/MariaDB URLs name the database that holds the mesh tables. */
  url: dbUrl,
  /** PostgreSQL schema holding the mesh tables. @defaultValue public */
  schema: z.string().min(1).optional(),
  /**
   * MySQL/MariaDB: server_id of the node's apply sessions (`SET SESSION server_id`), so its own
   * source skips what was applied. Must differ from every server's server_id. @defaultValue 4000000000 + node index
   */
  applyServerId: z.number().int().min(1).max(4294967295).optional(),
  /** MySQL/MariaDB: server_id the node's binlog reader registers with. @defaultValue 5400 + node index */
  readerServerId: z.number().int().min(1).max(4294967295).optional(),
});

/**
 * Multi-master: every node is both a source and a sink, and applies the changes of every other
 * node (docs/multi-master.md). Expanded into `sources` and `sinks` by pipeline/mesh.
 */
export const meshConfig = z.strictObject({
  nodes: z.array(meshNodeConfig).min(2, { error: 'expected at least two nodes' }),
  /** Tables kept identical on every node, by name (in the node's schema / database); each needs a primary key. */
  tables: z.array(z.string().regex(/^[^.\s]+$/, { error: 'expected a table name without schema' })).min(1, { error: 'expected at least one table' }),
  /** Conflict resolution of every node's sink; lww (hybrid logical clock), version-vector or custom, per table via `tables`. */
  conflict: conflictOptions,
  /** Sink mode of every node. @defaultValue key */
  mode: z.enum(['key', 'transaction']).default('key'),
  /** Most changes per replica transaction. @defaultValue 500 */
  batchSize: z.number().int().positive().default(500),
  /** Schema (PostgreSQL) / database (MySQL) of the mesh's bookkeeping on each node. @defaultValue cdc_meta */
  metaSchema: z.string().min(1).max(63).default('cdc_meta'),
  /** Milliseconds between PostgreSQL heartbeats (keeps idle slots moving); 0 disables. @defaultValue 10000 */
  heartbeatIntervalMs: z.number().int().min(0).default(10_000),
});

export const pipelineConfig = z
  .strictObject({
    /** Pipeline name: default topic prefix, group and job-queue prefix. */
    name: name('pipeline'),
    kafka: kafkaConfig,
    redis: z.strictObject({ url: z.string().regex(/^rediss?:\/\//, { error: 'expected redis:// URL' }) }).default({ url: 'redis://127.0.0.1:6379' }),
    sources: z.array(sourceConfig).default([]),
    sinks: z.array(sinkConfig).default([]),
    log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).default({ level: 'info' }),
    metrics: z.strictObject({ port: z.number().int().min(0).max(65535) }).optional(),
    snapshot: snapshotOptions,
    verify: verifyOptions,
    mesh: meshConfig.optional(),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.sources.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name "${s.name}"` });
      seen.add(s.name);
      const kind = urlKind(s.url);
      if (kind !== 'postgres' && s.postgres) ctx.addIssue({ code: 'custom', path: ['sources', i, 'postgres'], message: 'only allowed for a postgres:// source' });
      if (kind !== 'mysql' && s.mysql) ctx.addIssue({ code: 'custom', path: ['sources', i, 'mysql'], message: 'only allowed for a mysql:// source' });
    });
    const sinkNames = new Set<string>();
    cfg.sinks.forEach((k, i) => {
      if (sinkNames.has(k.name)) ctx.addIssue({ code: 'custom', path: ['sinks', i, 'name'], message: `duplicate sink name "${k.name}"` });
      sinkNames.add(k.name);
      k.sources?.forEach((src, j) => {
        if (!seen.has(src)) ctx.addIssue({ code: 'custom', path: ['sinks', i, 'sources', j], message: `no source named "${src}"` });
      });
    });
    const nodeNames = new Set<string>();
    cfg.mesh?.nodes.forEach((n, i) => {
      const at = ['mesh', 'nodes', i];
      if (nodeNames.has(n.name)) ctx.addIssue({ code: 'custom', path: [...at, 'name'], message: `duplicate mesh node "${n.name}"` });
      nodeNames.add(n.name);
      if (seen.has(n.name) || sinkNames.has(n.name)) ctx.addIssue({ code: 'custom', path: [...at, 'name'], message: `"${n.name}" is also a source or sink name` });
      const kind = urlKind(n.url);
      if (kind === 'mysql') {
        let db = '';
        try {
          db = new URL(n.url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, '');
        } catch {
          /* reported by the url check */
        }
        if (db === '') ctx.addIssue({ code: 'custom', path: [...at, 'url'], message: 'a MySQL/MariaDB node URL must name the database holding the mesh tables' });
        if (n.schema !== undefined) ctx.addIssue({ code: 'custom', path: [...at, 'schema'], message: 'only for PostgreSQL nodes (MySQL: the URL names the database)' });
      } else if (n.applyServerId !== undefined || n.readerServerId !== undefined) {
        ctx.addIssue({ code: 'custom', path: at, message: 'applyServerId / readerServerId are only for MySQL/MariaDB nodes' });
      }
    });
    if (cfg.mesh?.conflict.strategy === 'none') ctx.addIssue({ code: 'custom', path: ['mesh', 'conflict', 'strategy'], message: 'a mesh needs lww, version-vector or custom (none cannot converge)' });
    if (cfg.kafka.encoding === 'avro' && !cfg.kafka.schemaRegistry) {
      ctx.addIssue({ code: 'custom', path: ['kafka', 'schemaRegistry'], message: 'required when kafka.encoding is avro' });
    }
  });

export type PipelineConfig = z.output<typeof pipelineConfig>;
export type SourceConfig = z.output<typeof sourceConfig>;
export type SinkConfig = z.output<typeof sinkConfig>;
export type KafkaConfig = z.output<typeof kafkaConfig>;
export type PostgresSourceOptions = z.output<typeof postgresSourceOptions>;
export type MysqlSourceOptions = z.output<typeof mysqlSourceOptions>;
export type ConflictOptions = z.output<typeof conflictOptions>;
export type SnapshotOptions = z.output<typeof snapshotOptions>;
export type VerifyOptions = z.output<typeof verifyOptions>;
export type MeshConfig = z.output<typeof meshConfig>;
export type MeshNodeConfig = z.output<typeof meshNodeConfig>;

/**
 * Bytes of the table schema in each record, for the sources' batch sizing: the whole schema as
 * JSON with `kafka.jsonSchemas: inline`, a ~50-byte reference otherwise (Avro: a schema id).
 */
export function schemaBytesPerRecord(cfg: Pick<PipelineConfig, 'kafka'> | undefined, schemaJson: () => string): number {
  return cfg === undefined || (cfg.kafka.encoding === 'json' && cfg.kafka.jsonSchemas === 'inline') ? schemaJson().length : 64;
}

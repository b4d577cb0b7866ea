// Misconfigured servers are refused before streaming, one line per problem naming the setting to
// change. A dedicated MariaDB (never the shared source) runs with bad binlog settings; a user
// without replication privileges and a replica holding our server id are made on it too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineConfig } from '../../config/schema.js';
import { openBinlogStream } from '../../connectors/mysql/binlog-stream.js';
import { createMysqlSource } from '../../connectors/mysql/index.js';
import { mariadbServer } from '../../infra/servers.js';
import { envInt } from '../../infra/env.js';
import { ConfigError } from '../../schemas/errors.js';
import { env, uniq } from '../helpers.js';
import { randomServerId, sql } from './harness.js';

const port = envInt('CDC_MARIA_MYBAD_PORT', 23391);
const bad = mariadbServer({
  name: 'maria-mybad',
  port,
  serverId: 71,
  options: { 'binlog-format': 'STATEMENT', 'binlog-row-image': 'MINIMAL', 'binlog-row-metadata': 'MINIMAL' },
});

function connectorFor(url: string, serverId: number, reportHost?: string) {
  const cfg = pipelineConfig.parse({
    name: uniq('myval'),
    kafka: { brokers: env.kafka.split(',') },
    sources: [{ name: 'my', url, mysql: { serverId, ...(reportHost ? { reportHost } : {}) } }],
  });
  return createMysqlSource(cfg.sources[0]!, cfg);
}

async function problems(p: Promise<void>): Promise<string[]> {
  try {
    await p;
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
}

describe('mysql source: validate() on misconfigured servers', () => {
  beforeAll(async () => {
    await bad.destroy();
    await bad.start();
  }, 180_000);
  afterAll(async () => {
    await bad.destroy();
  }, 120_000);

  it('names binlog_format, binlog_row_image and binlog_row_metadata, one line each', async () => {
    const lines = await problems(connectorFor(bad.url, randomServerId()).validate());
    expect(lines).toEqual([
      expect.stringMatching(/^source my: binlog_format is STATEMENT: set binlog_format=ROW/),
      expect.stringMatching(/^source my: binlog_row_image is MINIMAL: set binlog_row_image=FULL/),
      expect.stringMatching(/^source my: binlog_row_metadata is MINIMAL: set binlog_row_metadata=FULL/),
    ]);
  });

  it('names missing replication privileges and a server id that is taken', async () => {
    const root = await sql(bad.url);
    await root.query("CREATE USER 'cdc_nopriv'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO 'cdc_nopriv'@'127.0.0.1';");
    await root.query("SET GLOBAL binlog_format = 'ROW', GLOBAL binlog_row_image = 'FULL', GLOBAL binlog_row_metadata = 'FULL'");
    const url = `mysql://cdc_nopriv:pw@127.0.0.1:${port}`;
    const noPriv = await problems(connectorFor(url, randomServerId()).validate());
    expect(noPriv).toEqual([
      expect.stringMatching(/lacks the REPLICATION SLAVE privilege: GRANT REPLICATION SLAVE ON \*\.\* TO 'cdc_nopriv'@'127\.0\.0\.1'/),
      expect.stringMatching(/lacks the BINLOG MONITOR \(REPLICATION CLIENT\) privilege: GRANT BINLOG MONITOR ON \*\.\* TO 'cdc_nopriv'@'127\.0\.0\.1'/),
    ]);
    // The same server's own server_id, and one a registered replica holds.
    expect(await problems(connectorFor(bad.url, 71).validate())).toEqual([expect.stringMatching(/serverId 71 is the source server's own server_id/)]);
    const taken = randomServerId();
    const other = await openBinlogStream({ url: bad.url, serverId: taken, reportHost: 'another-replica', flavor: 'mariadb', start: { file: 'binlog.000001', pos: 4 }, heartbeatMs: 1000 });
    try {
      expect(await problems(connectorFor(bad.url, taken).validate())).toEqual([expect.stringMatching(new RegExp(`serverId ${taken} is already used by replica another-replica`))]);
      // Our own earlier registration (same host name, e.g. before a kill -9) is not a clash.
      expect(await problems(connectorFor(bad.url, taken, 'another-replica').validate())).toEqual([]);
    } finally {
      await other.close();
      await root.end();
    }
  });

  it('passes on the shared, correctly configured source', async () => {
    await expect(connectorFor(env.mariaSource, randomServerId()).validate()).resolves.toBeUndefined();
  });

  it('fails with a clear error when the server cannot be reached', async () => {
    const err = await connectorFor('mysql://root@127.0.0.1:1', randomServerId())
      .validate()
      .catch((e: unknown) => e as Error & { retriable?: boolean });
    expect(String((err as Error).message)).toMatch(/cannot connect to mysql:\/\/root@127\.0\.0\.1:1/);
    expect((err as { retriable?: boolean }).retriable).toBe(true);
  });
});

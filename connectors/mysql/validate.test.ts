import { describe, expect, it } from 'vitest';
import { parseGrants, settingProblems } from './validate.js';

const good = { logBin: true, binlogFormat: 'ROW', binlogRowImage: 'FULL', binlogRowMetadata: 'FULL', logBinCompress: false };
const priv = { replicationSlave: true, replicationClient: true, user: "'cdc'@'%'" };
const me = { serverId: 5400, reportHost: 'cdc-p-my' };

describe('server settings', () => {
  it('accepts a well-configured server', () => {
    expect(settingProblems({ flavor: 'mariadb', serverId: 1 }, good, priv, [], me)).toEqual([]);
  });
  it('gives one line per problem, naming the setting to change', () => {
    const p = settingProblems(
      { flavor: 'mariadb', serverId: 5400 },
      { logBin: false, binlogFormat: 'MIXED', binlogRowImage: 'MINIMAL', binlogRowMetadata: 'NO_LOG', logBinCompress: true },
      { replicationSlave: false, replicationClient: false, user: "'u'@'%'" },
      [{ serverId: 5400, host: 'other-replica', port: 3307 }],
      me,
    );
    expect(p).toHaveLength(9);
    expect(p.every((l) => !l.includes('\n'))).toBe(true);
    expect(p[0]).toMatch(/^log_bin is OFF: .*--log-bin/);
    expect(p[1]).toMatch(/^binlog_format is MIXED: set binlog_format=ROW/);
    expect(p[2]).toMatch(/^binlog_row_image is MINIMAL: set binlog_row_image=FULL/);
    expect(p[3]).toMatch(/^binlog_row_metadata is NO_LOG: set binlog_row_metadata=FULL/);
    expect(p[4]).toMatch(/log_bin_compress is ON: set log_bin_compress=OFF/);
    expect(p[5]).toMatch(/lacks the REPLICATION SLAVE privilege: GRANT REPLICATION SLAVE ON \*\.\* TO 'u'@'%'/);
    expect(p[6]).toMatch(/lacks the BINLOG MONITOR \(REPLICATION CLIENT\) privilege: GRANT BINLOG MONITOR/);
    expect(p[7]).toMatch(/serverId 5400 is the source server's own server_id/);
    expect(p[8]).toMatch(/serverId 5400 is already used by replica other-replica:3307/);
  });
  it('checks the MySQL-only settings and its privilege name', () => {
    const p = settingProblems(
      { flavor: 'mysql', serverId: 1 },
      { ...good, binlogRowMetadata: undefined, binlogRowValueOptions: 'PARTIAL_JSON', binlogTransactionCompression: true },
      { ...priv, replicationClient: false },
      null,
      me,
    );
    expect(p).toEqual([
      expect.stringMatching(/binlog_row_metadata is not supported by this server: .*MySQL 8\.0\.1/),
      expect.stringMatching(/binlog_row_value_options is PARTIAL_JSON: set binlog_row_value_options=''/),
      expect.stringMatching(/binlog_transaction_compression is ON/),
      expect.stringMatching(/lacks the REPLICATION CLIENT privilege: GRANT REPLICATION CLIENT ON/),
    ]);
  });
  it('does not call our own earlier registration a clash', () => {
    expect(settingProblems({ flavor: 'mariadb', serverId: 1 }, good, priv, [{ serverId: 5400, host: 'cdc-p-my', port: 0 }], me)).toEqual([]);
  });
});

describe('SHOW GRANTS', () => {
  it('reads global replication privileges in both dialects', () => {
    expect(parseGrants(['GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `cdc`@`%`'])).toEqual({ slave: true, client: true, viaRole: false });
    expect(parseGrants(['GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `cdc`@`%`'])).toEqual({ slave: true, client: true, viaRole: false });
    expect(parseGrants(['GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION'])).toEqual({ slave: true, client: true, viaRole: false });
    expect(parseGrants(['GRANT USAGE ON *.* TO `u`@`%`', 'GRANT ALL PRIVILEGES ON `app`.* TO `u`@`%`'])).toEqual({ slave: false, client: false, viaRole: false });
    expect(parseGrants(['GRANT USAGE ON *.* TO `u`@`%`', 'GRANT `cdc_role` TO `u`@`%`']).viaRole).toBe(true);
  });
});

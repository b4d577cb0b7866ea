import type { Connection } from 'mysql2/promise';
import type { ServerInfo } from './catalog.js';

/**
 * Server settings and privileges the MySQL source needs, checked before it streams. Each problem
 * is one line that names the setting and says what to change.
 */

export interface ServerSettings {
  logBin: boolean;
  binlogFormat: string;
  binlogRowImage: string;
  /** undefined: the server has no such variable (MariaDB < 10.5, MySQL < 8.0.1). */
  binlogRowMetadata: string | undefined;
  /** MySQL: PARTIAL_JSON writes PARTIAL_UPDATE_ROWS events. */
  binlogRowValueOptions?: string;
  /** MySQL: compressed TRANSACTION_PAYLOAD events. */
  binlogTransactionCompression?: boolean;
  /** MariaDB: compressed QUERY/ROWS events. */
  logBinCompress?: boolean;
}

export interface Privileges {
  replicationSlave: boolean;
  /** REPLICATION CLIENT (MariaDB 10.5+: BINLOG MONITOR). */
  replicationClient: boolean;
  user: string;
}

export interface Replica {
  serverId: number;
  host: string;
  port: number;
}

/** Pure: settings, privileges and registered replicas to one line per problem. */
export function settingProblems(
  info: Pick<ServerInfo, 'flavor' | 'serverId'>,
  s: ServerSettings,
  priv: Privileges | null,
  replicas: Replica[] | null,
  me: { serverId: number; reportHost: string },
): string[] {
  const p: string[] = [];
  const mysql = info.flavor === 'mysql';
  if (!s.logBin) p.push('log_bin is OFF: start the server with --log-bin (binary logging on) so changes reach the binlog');
  if (s.binlogFormat.toUpperCase() !== 'ROW') {
    p.push(`binlog_format is ${s.binlogFormat}: set binlog_format=ROW (SET GLOBAL binlog_format='ROW' and in the server config)`);
  }
  if (s.binlogRowImage.toUpperCase() !== 'FULL') {
    p.push(`binlog_row_image is ${s.binlogRowImage}: set binlog_row_image=FULL (SET GLOBAL binlog_row_image='FULL' and in the server config)`);
  }
  if (s.binlogRowMetadata === undefined) {
    p.push(`binlog_row_metadata is not supported by this server: the MySQL source needs ${mysql ? 'MySQL 8.0.1' : 'MariaDB 10.5'} or later with binlog_row_metadata=FULL`);
  } else if (s.binlogRowMetadata.toUpperCase() !== 'FULL') {
    p.push(`binlog_row_metadata is ${s.binlogRowMetadata}: set binlog_row_metadata=FULL (SET GLOBAL binlog_row_metadata='FULL' and in the server config)`);
  }
  if (s.binlogRowValueOptions && /PARTIAL_JSON/i.test(s.binlogRowValueOptions)) {
    p.push(`binlog_row_value_options is ${s.binlogRowValueOptions}: set binlog_row_value_options='' (partial JSON updates are not supported)`);
  }
  if (s.binlogTransactionCompression) p.push('binlog_transaction_compression is ON: set binlog_transaction_compression=OFF (compressed transactions are not supported)');
  if (s.logBinCompress) p.push('log_bin_compress is ON: set log_bin_compress=OFF (compressed binlog events are not supported)');
  if (priv) {
    if (!priv.replicationSlave) p.push(`user ${priv.user} lacks the REPLICATION SLAVE privilege: GRANT REPLICATION SLAVE ON *.* TO ${priv.user}`);
    if (!priv.replicationClient) {
      const name = mysql ? 'REPLICATION CLIENT' : 'BINLOG MONITOR (REPLICATION CLIENT)';
      p.push(`user ${priv.user} lacks the ${name} privilege: GRANT ${mysql ? 'REPLICATION CLIENT' : 'BINLOG MONITOR'} ON *.* TO ${priv.user}`);
    }
  }
  if (me.serverId === info.serverId) {
    p.push(`mysql.serverId ${me.serverId} is the source server's own server_id: set sources[].mysql.serverId to a value no server or replica uses`);
  }
  for (const r of replicas ?? []) {
    if (r.serverId === me.serverId && r.host !== me.reportHost) {
      p.push(`mysql.serverId ${me.serverId} is already used by replica ${r.host || '(no host)'}:${r.port}: set sources[].mysql.serverId to a value no other replica uses`);
    }
  }
  return p;
}

/** Reads the settings the checks need (absent variables come back undefined, not as errors). */
export async function readSettings(conn: Connection, info: ServerInfo): Promise<ServerSettings> {
  const vars = new Map<string, string>();
  const [rows] = await conn.query(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata',
      'binlog_row_value_options', 'binlog_transaction_compression', 'log_bin_compress')`,
  );
  for (const r of rows as { Variable_name: string; Value: string }[]) vars.set(r.Variable_name.toLowerCase(), String(r.Value));
  const on = (v: string | undefined) => v !== undefined && /^(ON|1|TRUE)$/i.test(v);
  return {
    logBin: on(vars.get('log_bin')),
    binlogFormat: vars.get('binlog_format') ?? 'unknown',
    binlogRowImage: vars.get('binlog_row_image') ?? 'unknown',
    binlogRowMetadata: vars.get('binlog_row_metadata'),
    ...(info.flavor === 'mysql'
      ? { binlogRowValueOptions: vars.get('binlog_row_value_options') ?? '', binlogTransactionCompression: on(vars.get('binlog_transaction_compression')) }
      : { logBinCompress: on(vars.get('log_bin_compress')) }),
  };
}

/** Global privileges from SHOW GRANTS (roles' grants are not expanded: a role grant counts as "maybe"). */
export function parseGrants(lines: string[]): { slave: boolean; client: boolean; viaRole: boolean } {
  let slave = false;
  let client = false;
  let viaRole = false;
  for (const line of lines) {
    const m = /^GRANT\s+(.+?)\s+ON\s+\*\.\*\s+TO\s/i.exec(line);
    if (!m) {
      // `GRANT role TO user` (no ON clause): privileges we cannot see from here.
      if (/^GRANT\s+[^ ]+(\s*,\s*[^ ]+)*\s+TO\s/i.test(line) && !/\sON\s/i.test(line)) viaRole = true;
      continue;
    }
    const privs = m[1]!.split(',').map((x) => x.trim().toUpperCase());
    if (privs.includes('ALL PRIVILEGES') || privs.includes('ALL')) {
      slave = true;
      client = true;
    }
    if (privs.includes('REPLICATION SLAVE')) slave = true;
    if (privs.includes('REPLICATION CLIENT') || privs.includes('BINLOG MONITOR')) client = true;
  }
  return { slave, client, viaRole };
}

export async function readPrivileges(conn: Connection): Promise<Privileges | null> {
  try {
    const [[who]] = (await conn.query('SELECT CURRENT_USER() AS u')) as unknown as [{ u: string }[]];
    const [rows] = await conn.query('SHOW GRANTS');
    const lines = (rows as Record<string, string>[]).map((r) => String(Object.values(r)[0] ?? ''));
    const g = parseGrants(lines);
    const [user, host] = String(who?.u ?? '').split('@');
    const name = `'${user}'@'${host ?? '%'}'`;
    if (g.viaRole && (!g.slave || !g.client)) return null; // cannot tell; the stream will say
    return { replicationSlave: g.slave, replicationClient: g.client, user: name };
  } catch {
    return null;
  }
}

/** Replicas registered with the source (SHOW SLAVE HOSTS), or null when we may not look. */
export async function readReplicas(conn: Connection): Promise<Replica[] | null> {
  // MySQL 8.4 removed SHOW SLAVE HOSTS for SHOW REPLICAS.
  for (const stmt of ['SHOW SLAVE HOSTS', 'SHOW REPLICAS']) {
    try {
      const [rows] = await conn.query(stmt);
      return (rows as Record<string, unknown>[]).map((r) => ({
        serverId: Number(r.Server_id ?? r.Server_Id ?? 0),
        host: String(r.Host ?? ''),
        port: Number(r.Port ?? 0),
      }));
    } catch {
      // not allowed, or not this server's syntax
    }
  }
  return null;
}

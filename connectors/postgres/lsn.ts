/**
 * PostgreSQL log sequence numbers. The wire carries them as unsigned 64-bit integers, SQL and
 * positions as 'X/Y' (two hex halves, upper case, no leading zeros); bigint in between, so
 * comparisons never go through a JS float.
 */
export type Lsn = bigint;

export const ZERO_LSN: Lsn = 0n;

export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}

/**
 * Canonical temporal text (see schemas/column-types.ts) <-> Avro logical-type numbers, for any
 * year (proleptic Gregorian, astronomical year numbering inside, `BC` suffix outside), without
 * JS Date, whose range (±273,790 years) is narrower than PostgreSQL's.
 */

const US_PER_DAY = 86_400_000_000n;

// Howard Hinnant's days_from_civil / civil_from_days, exact for any integer year.
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= (m === 2 && isLeap(y) ? 29 : (MONTH_DAYS[m - 1] ?? 0));
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Astronomical year -> `YYYY` / `YYYY ... BC` parts (year 0 is 1 BC). */
function yearText(y: number): { text: string; bc: boolean } {
  return y > 0 ? { text: pad(y, 4), bc: false } : { text: pad(1 - y, 4), bc: true };
}

const DATE = /^(\d{4,})-(\d{2})-(\d{2})( BC)?$/;

/** 'YYYY-MM-DD[ BC]' -> days since 1970-01-01, or undefined when not a real calendar date. */
export function parseDate(text: string): number | undefined {
  const m = DATE.exec(text);
  if (!m) return undefined;
  let y = Number(m[1]);
  if (m[4]) y = 1 - y;
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if ((m[4] && Number(m[1]) === 0) || !validDate(y, mo, d)) return undefined;
  return daysFromCivil(y, mo, d);
}

export function formatDate(days: number): string {
  const [y, m, d] = civilFromDays(days);
  const yt = yearText(y);
  return `${yt.text}-${pad(m, 2)}-${pad(d, 2)}${yt.bc ? ' BC' : ''}`;
}

/**
 * Fraction digits as the dialect prints them: MySQL/MariaDB print exactly the column's fsp,
 * PostgreSQL trims trailing zeros whatever the typmod.
 */
export type FractionStyle = { fixed: number } | 'trim';

function fraction(us: number, style: FractionStyle): string {
  if (style === 'trim') {
    if (us === 0) return '';
    return `.${pad(us, 6).replace(/0+$/, '')}`;
  }
  if (style.fixed === 0) return '';
  return `.${pad(us, 6).slice(0, style.fixed)}`;
}

const TIME = /^(-)?(\d{2,}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/** 'HH:MM:SS[.ffffff]' (MySQL: signed, hours up to 838) -> microseconds. */
export function parseTime(text: string): number | undefined {
  const m = TIME.exec(text);
  if (!m) return undefined;
  const mi = Number(m[3]);
  const s = Number(m[4]);
  if (mi > 59 || s > 59) return undefined;
  const us = (Number(m[2]) * 3600 + mi * 60 + s) * 1_000_000 + Number((m[5] ?? '').padEnd(6, '0'));
  if (!Number.isSafeInteger(us)) return undefined;
  return m[1] ? -us : us;
}

export function formatTime(time: number | bigint, style: FractionStyle): string {
  const us = Number(time);
  const neg = us < 0;
  const a = neg ? -us : us;
  const secs = Math.floor(a / 1_000_000);
  const h = Math.floor(secs / 3600);
  return `${neg ? '-' : ''}${pad(h, 2)}:${pad(Math.floor((secs % 3600) / 60), 2)}:${pad(secs % 60, 2)}${fraction(a % 1_000_000, style)}`;
}

const TIMESTAMP = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z)?( BC)?$/;
const US_PER_DAY_N = 86_400_000_000;
/** Within ±100,000 days of 1970 (years 1696..2243) microseconds stay exact in a double. */
const NUMBER_DAYS = 100_000;

/**
 * 'YYYY-MM-DDTHH:MM:SS[.ffffff][Z][ BC]' -> microseconds since 1970-01-01T00:00 (UTC for `tz`,
 * wall clock otherwise). `tz` decides whether the 'Z' must be there. A number when it is a safe
 * integer (the usual case, no BigInt arithmetic), else a BigInt.
 */
export function parseTimestamp(text: string, tz: boolean): number | bigint | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m || Boolean(m[8]) !== tz) return undefined;
  let y = Number(m[1]);
  if (m[9]) {
    if (y === 0) return undefined;
    y = 1 - y;
  }
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const s = Number(m[6]);
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return undefined;
  const day = daysFromCivil(y, mo, d);
  const inDay = (h * 3600 + mi * 60 + s) * 1_000_000 + Number((m[7] ?? '').padEnd(6, '0'));
  if (Math.abs(day) <= NUMBER_DAYS) return day * US_PER_DAY_N + inDay;
  return BigInt(day) * US_PER_DAY + BigInt(inDay);
}

export function formatTimestamp(us: number | bigint, tz: boolean, style: FractionStyle): string {
  let day: number;
  let rem: number;
  if (typeof us === 'number') {
    day = Math.floor(us / US_PER_DAY_N);
    rem = us - day * US_PER_DAY_N;
  } else {
    let bday = us / US_PER_DAY;
    let brem = us % US_PER_DAY;
    if (brem < 0n) {
      brem += US_PER_DAY;
      bday -= 1n;
    }
    day = Number(bday);
    rem = Number(brem);
  }
  const [y, m, d] = civilFromDays(day);
  const yt = yearText(y);
  const secs = Math.floor(rem / 1_000_000);
  const time = `${pad(Math.floor(secs / 3600), 2)}:${pad(Math.floor((secs % 3600) / 60), 2)}:${pad(secs % 60, 2)}${fraction(rem % 1_000_000, style)}`;
  return `${yt.text}-${pad(m, 2)}-${pad(d, 2)}T${time}${tz ? 'Z' : ''}${yt.bc ? ' BC' : ''}`;
}

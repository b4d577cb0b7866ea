import { describe, expect, it } from 'vitest';
import { civilFromDays, daysFromCivil, formatDate, formatTime, formatTimestamp, parseDate, parseTime, parseTimestamp } from './temporal.js';

const DAY_MS = 86_400_000;

describe('dates', () => {
  it('agrees with Date.UTC over four centuries', () => {
    const wrong: string[] = [];
    for (let days = daysFromCivil(1800, 1, 1); days <= daysFromCivil(2200, 12, 31); days += 7) {
      const d = new Date(days * DAY_MS);
      const iso = d.toISOString().slice(0, 10);
      if (civilFromDays(days).join() !== [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()].join() || parseDate(iso) !== days) wrong.push(iso);
    }
    expect(wrong).toEqual([]);
  });

  it('round-trips BC dates, year 0 as 1 BC, and years beyond 9999', () => {
    expect(parseDate('1970-01-01')).toBe(0);
    expect(parseDate('0001-12-31 BC')).toBe(daysFromCivil(0, 12, 31));
    for (const text of ['0044-03-15 BC', '4713-01-01 BC', '0001-01-01', '0001-01-01 BC', '9999-12-31', '12345-06-07', '5874897-12-31', '2024-02-29']) {
      const d = parseDate(text);
      expect(d, text).toBeTypeOf('number');
      expect(formatDate(d!)).toBe(text);
    }
  });

  it('refuses what is not a calendar date', () => {
    for (const text of ['0000-00-00', '2023-02-29', '2020-13-01', '2020-00-10', '2020-01-00', 'infinity', '-infinity', '0000-01-01 BC', '20-01-01']) {
      expect(parseDate(text), text).toBeUndefined();
    }
  });
});

describe('times', () => {
  it('round-trips PostgreSQL (trimmed) and MySQL (fixed fsp) fractions', () => {
    expect(parseTime('12:00:00.5')).toBe(43_200_500_000);
    expect(formatTime(43_200_500_000, 'trim')).toBe('12:00:00.5');
    expect(formatTime(43_200_500_000, { fixed: 3 })).toBe('12:00:00.500');
    expect(formatTime(43_200_000_000, { fixed: 0 })).toBe('12:00:00');
    expect(formatTime(43_200_000_000, 'trim')).toBe('12:00:00');
    for (const t of ['24:00:00', '00:00:00.000001', '23:59:59.999999']) expect(formatTime(parseTime(t)!, 'trim')).toBe(t);
  });

  it('keeps MySQL TIME ranges (negative, beyond 24 h)', () => {
    for (const t of ['-838:59:59', '838:59:59', '-00:00:01', '100:00:00']) expect(formatTime(parseTime(t)!, { fixed: 0 })).toBe(t);
    expect(formatTime(parseTime('-12:30:00.250000')!, { fixed: 6 })).toBe('-12:30:00.250000');
  });

  it('refuses malformed times', () => {
    for (const t of ['12:60:00', '12:00', 'allballs', '12:00:00.1234567']) expect(parseTime(t), t).toBeUndefined();
  });
});

describe('timestamps', () => {
  it('agrees with Date for instants and keeps microseconds', () => {
    const us = parseTimestamp('2026-11-25T22:08:24.123456Z', true)!;
    expect(us).toBe(Date.UTC(2026, 10, 25, 22, 8, 24, 123) * 1000 + 456);
    expect(formatTimestamp(us, true, 'trim')).toBe('2026-11-25T22:08:24.123456Z');
  });

  it('handles times before 1970, BC and far future', () => {
    for (const t of ['1969-12-31T23:59:59.999999', '1900-01-01T00:00:00', '0044-03-15T12:00:00 BC', '294276-12-31T23:59:59.999999', '0001-01-01T00:00:00']) {
      const us = parseTimestamp(t, false);
      expect(['bigint', 'number'], t).toContain(typeof us);
      expect(formatTimestamp(us!, false, 'trim')).toBe(t);
    }
    expect(formatTimestamp(-1n, true, 'trim')).toBe('1969-12-31T23:59:59.999999Z');
    expect(formatTimestamp(-1, true, 'trim')).toBe('1969-12-31T23:59:59.999999Z');
    // Far from 1970 the microseconds need a BigInt; both paths print the same.
    expect(typeof parseTimestamp('294276-12-31T23:59:59.999999', false)).toBe('bigint');
    expect(formatTimestamp(BigInt(parseTimestamp('2026-11-25T22:08:24.123456Z', true)!), true, 'trim')).toBe('2026-11-25T22:08:24.123456Z');
  });

  it('needs the Z exactly when the type has a time zone', () => {
    expect(parseTimestamp('2026-01-01T00:00:00', true)).toBeUndefined();
    expect(parseTimestamp('2026-01-01T00:00:00Z', false)).toBeUndefined();
    expect(parseTimestamp('infinity', true)).toBeUndefined();
    expect(parseTimestamp('0000-00-00T00:00:00', false)).toBeUndefined();
  });

  it('prints MySQL fsp digits', () => {
    const us = parseTimestamp('2026-01-01T00:00:00.100', false)!;
    expect(formatTimestamp(us, false, { fixed: 3 })).toBe('2026-01-01T00:00:00.100');
    expect(formatTimestamp(us, false, 'trim')).toBe('2026-01-01T00:00:00.1');
  });
});

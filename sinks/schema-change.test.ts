import { describe, expect, it } from 'vitest';
import { isWideningType } from './schema-change.js';

describe('isWideningType', () => {
  it('accepts changes every old value fits', () => {
    expect(isWideningType({ kind: 'int', bits: 32 }, { kind: 'int', bits: 64 })).toBe(true);
    expect(isWideningType({ kind: 'int', bits: 32, unsigned: true }, { kind: 'int', bits: 64 })).toBe(true);
    expect(isWideningType({ kind: 'int', bits: 64 }, { kind: 'decimal', precision: 20, scale: 0 })).toBe(true);
    expect(isWideningType({ kind: 'decimal', precision: 8, scale: 2 }, { kind: 'decimal', precision: 12, scale: 2 })).toBe(true);
    expect(isWideningType({ kind: 'string', length: 10 }, { kind: 'string', length: 40 })).toBe(true);
    expect(isWideningType({ kind: 'string', length: 10 }, { kind: 'string' })).toBe(true);
    expect(isWideningType({ kind: 'enum', values: ['a', 'b'] }, { kind: 'enum', values: ['a', 'b', 'c'] })).toBe(true);
    expect(isWideningType({ kind: 'timestamp', tz: false, precision: 0 }, { kind: 'timestamp', tz: false, precision: 6 })).toBe(true);
  });
  it('refuses narrowing and changes of meaning', () => {
    expect(isWideningType({ kind: 'int', bits: 64 }, { kind: 'int', bits: 32 })).toBe(false);
    expect(isWideningType({ kind: 'int', bits: 32 }, { kind: 'int', bits: 32, unsigned: true })).toBe(false);
    expect(isWideningType({ kind: 'decimal', precision: 12, scale: 4 }, { kind: 'decimal', precision: 12, scale: 2 })).toBe(false);
    expect(isWideningType({ kind: 'string' }, { kind: 'string', length: 40 })).toBe(false);
    expect(isWideningType({ kind: 'enum', values: ['a', 'b'] }, { kind: 'enum', values: ['b', 'a', 'c'] })).toBe(false);
    expect(isWideningType({ kind: 'timestamp', tz: false }, { kind: 'timestamp', tz: true })).toBe(false);
    expect(isWideningType({ kind: 'string' }, { kind: 'int', bits: 64 })).toBe(false);
  });
});

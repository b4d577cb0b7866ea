import { describe, expect, it } from 'vitest';
import { Collations, textDecoder } from './charset.js';

describe('charsets', () => {
  it("decodes MySQL's latin1 as cp1252 (0x80 is the euro sign), undefined bytes as C1 controls", () => {
    const d = textDecoder('latin1');
    const b = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x99, 0x81, 0xff]);
    expect(d(b, 0, b.length)).toBe('café €™\u0081ÿ');
  });
  it('decodes utf8mb4, utf16 (big-endian), utf32 and refuses charsets Node cannot decode', () => {
    const s = 'hé😀';
    expect(textDecoder('utf8mb4')(Buffer.from(s), 0, Buffer.byteLength(s))).toBe(s);
    const u16 = Buffer.from(s, 'utf16le').swap16();
    expect(textDecoder('utf16')(u16, 0, u16.length)).toBe(s);
    const u32 = Buffer.alloc(12);
    [...s].forEach((c, i) => u32.writeUInt32BE(c.codePointAt(0)!, i * 4));
    expect(textDecoder('utf32')(u32, 0, 12)).toBe(s);
    expect(() => textDecoder('swe7')).toThrow(/swe7 is not supported/);
  });
  it('maps collation ids to charsets, the server list winning over the static one', () => {
    const c = new Collations();
    expect(c.charset(45)).toEqual({ name: 'utf8mb4', maxLen: 4 });
    expect(c.charset(8)).toEqual({ name: 'latin1', maxLen: 1 });
    expect(c.charset(63).name).toBe('binary');
    expect(() => c.charset(2050)).toThrow(/unknown collation id 2050/);
    c.load([{ id: 2050, charset: 'utf8mb4' }]);
    expect(c.charset(2050).name).toBe('utf8mb4');
  });
});

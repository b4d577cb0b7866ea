import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONNECTOR_VERSION } from './version.js';

describe('connector version', () => {
  it('is the package version', () => {
    expect(CONNECTOR_VERSION).toBe((JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version);
  });
});

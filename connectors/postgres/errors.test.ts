import { describe, expect, it } from 'vitest';
import { CdcError } from '../../schemas/errors.js';
import { isRetriablePgState, pgError } from './errors.js';

describe('PostgreSQL error mapping', () => {
  it('retries server restarts, busy slots and lost connections, not auth or privilege errors', () => {
    for (const s of ['57P01', '57P03', '08006', '53300', '55006', '40001']) expect(isRetriablePgState(s), s).toBe(true);
    for (const s of ['28P01', '28000', '42501', '3D000', '42704', '58P01', '42601']) expect(isRetriablePgState(s), s).toBe(false);
  });

  it('wraps driver and socket errors with the flag and keeps the cause', () => {
    const auth = pgError(Object.assign(new Error('password authentication failed'), { code: '28P01' }), 'connecting');
    expect(auth).toBeInstanceOf(CdcError);
    expect(auth.retriable).toBe(false);
    expect(auth.code).toBe('PG_28P01');
    expect(auth.message).toMatch(/^connecting: password authentication failed/);
    expect(pgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'x').retriable).toBe(true);
    expect(pgError(new Error('Connection terminated unexpectedly'), 'x').retriable).toBe(true);
    expect(pgError(new Error('something else'), 'x').retriable).toBe(false);
    const same = new CdcError('mine', { retriable: true });
    expect(pgError(same, 'x')).toBe(same);
  });
});

import { describe, expect, it } from 'vitest';
import { redactUrl } from './redact.js';

describe('redactUrl', () => {
  it('hides passwords and secret-looking query parameters', () => {
    expect(redactUrl('postgres://u:hunter2@h:5432/db?sslpassword=x&application_name=a')).toBe(
      'postgres://u:***@h:5432/db?sslpassword=***&application_name=a',
    );
    expect(redactUrl('mysql://root@127.0.0.1:3306/app')).toBe('mysql://root@127.0.0.1:3306/app');
  });
  it('hides the password of a URL that does not parse', () => {
    expect(redactUrl('postgres://u:p w@h:bad/db')).toBe('postgres://u:***@h:bad/db');
  });
});

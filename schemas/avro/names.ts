import { createHash } from 'node:crypto';

const VALID = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Fields of our own in row records; a column with one of these names is renamed (hashed). */
export const RESERVED_FIELDS = new Set(['__cdc']);

const shortHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/**
 * An Avro name (record field, enum, namespace part) for an arbitrary identifier. Valid names are
 * kept; anything else has its illegal characters replaced with `_` and a short hash of the
 * original appended, so two different identifiers never share a name and the mapping never
 * depends on which other columns exist (stable across schema versions). The original identifier
 * travels in the field's metadata.
 */
export function avroName(id: string): string {
  if (VALID.test(id) && !RESERVED_FIELDS.has(id)) return id;
  const base = id.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 60);
  return `${/^[A-Za-z_]/.test(base) ? '' : '_'}${base}_${shortHash(id)}`;
}

/** Avro namespace from a dotted name (a topic): every part made a valid Avro name. */
export function avroNamespace(dotted: string): string {
  return dotted
    .split('.')
    .filter((p) => p.length > 0)
    .map((p) => (VALID.test(p) ? p : `${/^[A-Za-z_]/.test(p) ? '' : '_'}${p.replace(/[^A-Za-z0-9_]/g, '_')}`))
    .join('.');
}

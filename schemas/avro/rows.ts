import { type ColumnValue, type Row, UNCHANGED } from '../column-types.js';
import { Inexact, UNREPRESENTABLE } from './columns.js';
import { type FieldPlan, ROW_META_FIELD } from './derive.js';

type AvroRow = Record<string, unknown>;

interface RowMeta {
  raw: Record<string, string>;
  absent: string[];
}

/**
 * Canonical row -> Avro record value. `required`: key records, whose fields are not nullable;
 * a value they cannot hold is written as the type's zero with the exact text in `__cdc.raw`.
 */
export function rowEncoder(fields: FieldPlan[], required: boolean): (row: Row) => AvroRow {
  return (row) => {
    const out: AvroRow = {};
    let meta: RowMeta | null = null;
    for (const p of fields) {
      const v = row[p.column];
      if (v === undefined) {
        out[p.field] = required ? p.conv.zero : null;
        (meta ??= { raw: {}, absent: [] }).absent.push(p.field);
        continue;
      }
      if (v === null) {
        if (required) {
          out[p.field] = p.conv.zero;
          (meta ??= { raw: {}, absent: [] }).raw[p.field] = 'null';
        } else out[p.field] = null;
        continue;
      }
      // Unchanged TOAST: text columns carry the placeholder itself (as Debezium does), other
      // types cannot, so it goes to raw.
      const r = v === UNCHANGED && !p.conv.isString ? UNREPRESENTABLE : p.conv.encode(v);
      if (r === UNREPRESENTABLE) {
        out[p.field] = required ? p.conv.zero : null;
        (meta ??= { raw: {}, absent: [] }).raw[p.field] = JSON.stringify(v);
      } else if (r instanceof Inexact) {
        out[p.field] = r.value;
        (meta ??= { raw: {}, absent: [] }).raw[p.field] = JSON.stringify(v);
      } else out[p.field] = r;
    }
    out[ROW_META_FIELD] = meta;
    return out;
  };
}

/**
 * Avro record value -> canonical row, using the field plans of the schema the record was read
 * with (the writer's, or a reader's after schema resolution). Reader fields the writer did not
 * have are absent from the row, not null.
 */
export function rowDecoder(fields: FieldPlan[], writerFields?: ReadonlySet<string>): (rec: AvroRow) => Row {
  return (rec) => {
    const meta = rec[ROW_META_FIELD] as RowMeta | null | undefined;
    const raw = meta?.raw;
    const absent = meta && meta.absent.length > 0 ? new Set(meta.absent) : undefined;
    const row: Row = {};
    for (const p of fields) {
      if (absent?.has(p.field) || (writerFields !== undefined && !writerFields.has(p.field))) continue;
      const text = raw?.[p.field];
      if (text !== undefined) {
        row[p.column] = JSON.parse(text) as ColumnValue;
        continue;
      }
      const a = rec[p.field];
      row[p.column] = a === null || a === undefined ? null : p.conv.decode(a);
    }
    return row;
  };
}

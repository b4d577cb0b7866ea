/**
 * Just enough of MySQL's DDL grammar to say which tables a QUERY event's statement changes.
 * Column types are never parsed here: the TABLE_MAP events of later rows say exactly what the
 * rows hold, and the schema history reads the rest from information_schema. A statement this
 * cannot read is reported as `unknown-ddl`, which makes the caller refresh every captured table
 * of the statement's database (slower, never wrong).
 */

export interface TableRef {
  /** null: the statement's default database. */
  db: string | null;
  table: string;
}

export type Statement =
  | { kind: 'begin' }
  | { kind: 'commit' }
  | { kind: 'rollback' }
  | { kind: 'savepoint' }
  | { kind: 'xa'; action: 'start' | 'end' | 'prepare' | 'commit' | 'rollback' }
  | { kind: 'create-table'; table: TableRef; temporary: boolean; startsTransaction: boolean }
  | { kind: 'alter-table'; table: TableRef; renameTo: TableRef | null }
  | { kind: 'drop-table'; tables: TableRef[]; temporary: boolean }
  | { kind: 'rename-table'; pairs: [TableRef, TableRef][] }
  | { kind: 'truncate'; table: TableRef }
  | { kind: 'index'; table: TableRef }
  | { kind: 'database'; action: 'create' | 'drop' | 'alter'; db: string }
  | { kind: 'unknown-ddl' }
  | { kind: 'other' };

type Tok = { t: 'word'; v: string; up: string } | { t: 'id'; v: string } | { t: 'str' } | { t: 'p'; v: string };

/** Tokens of a statement, comments dropped (executable comments `/*!...*\/` kept as code). */
export function tokenize(sql: string, limit = 400): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n && out.length < limit) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2]!)))) {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const m = /^\/\*(?:!|M!)\d*/.exec(sql.slice(i, i + 12));
      if (m) {
        i += m[0].length; // executable comment: read its body as code; the closing */ is skipped below
      } else {
        const end = sql.indexOf('*/', i + 2);
        i = end < 0 ? n : end + 2;
      }
    } else if (c === '*' && sql[i + 1] === '/') {
      i += 2;
    } else if (c === '`') {
      let v = '';
      i++;
      while (i < n) {
        if (sql[i] === '`' && sql[i + 1] === '`') {
          v += '`';
          i += 2;
        } else if (sql[i] === '`') {
          i++;
          break;
        } else v += sql[i++];
      }
      out.push({ t: 'id', v });
    } else if (c === "'" || c === '"') {
      i++;
      while (i < n && sql[i] !== c) i += sql[i] === '\\' ? 2 : 1;
      i++;
      out.push({ t: 'str' });
    } else if (/[\p{L}\p{N}_$]/u.test(c)) {
      let j = i;
      while (j < n && /[\p{L}\p{N}_$]/u.test(sql[j]!)) j++;
      const v = sql.slice(i, j);
      out.push({ t: 'word', v, up: v.toUpperCase() });
      i = j;
    } else {
      out.push({ t: 'p', v: c });
      i++;
    }
  }
  return out;
}

class Cur {
  i = 0;
  constructor(readonly toks: Tok[]) {}
  peek(k = 0): Tok | undefined {
    return this.toks[this.i + k];
  }
  /** Consumes the keywords if they come next (case-insensitive); returns whether they did. */
  kw(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) {
      const t = this.toks[this.i + k];
      if (!t || t.t !== 'word' || t.up !== words[k]) return false;
    }
    this.i += words.length;
    return true;
  }
  punct(v: string): boolean {
    const t = this.peek();
    if (t && t.t === 'p' && t.v === v) {
      this.i++;
      return true;
    }
    return false;
  }
  ident(): string | null {
    const t = this.peek();
    if (t && (t.t === 'id' || t.t === 'word')) {
      this.i++;
      return t.v;
    }
    return null;
  }
  /** `name` or `db.name`. */
  tableRef(): TableRef | null {
    const a = this.ident();
    if (a === null) return null;
    if (this.punct('.')) {
      const b = this.ident();
      return b === null ? null : { db: a, table: b };
    }
    return { db: null, table: a };
  }
  /** Skips to just after the next top-level occurrence of keyword `w`; false if absent. */
  skipTo(w: string): boolean {
    let depth = 0;
    while (this.i < this.toks.length) {
      const t = this.toks[this.i++]!;
      if (t.t === 'p' && t.v === '(') depth++;
      else if (t.t === 'p' && t.v === ')') depth--;
      else if (depth === 0 && t.t === 'word' && t.up === w) return true;
    }
    return false;
  }
}

/** Classifies a QUERY event's statement. */
export function parseStatement(sql: string): Statement {
  const toks = tokenize(sql);
  const c = new Cur(toks);
  const first = c.peek();
  if (!first || first.t !== 'word') return { kind: 'other' };
  switch (first.up) {
    case 'BEGIN':
      return { kind: 'begin' };
    case 'COMMIT':
      return { kind: 'commit' };
    case 'ROLLBACK':
      return toks.some((t) => t.t === 'word' && t.up === 'TO') ? { kind: 'savepoint' } : { kind: 'rollback' };
    case 'SAVEPOINT':
    case 'RELEASE':
      return { kind: 'savepoint' };
    case 'START':
      return c.kw('START', 'TRANSACTION') ? { kind: 'begin' } : { kind: 'other' };
    case 'XA': {
      const a = toks[1]?.t === 'word' ? toks[1].up : '';
      if (a === 'START' || a === 'BEGIN') return { kind: 'xa', action: 'start' };
      if (a === 'END') return { kind: 'xa', action: 'end' };
      if (a === 'PREPARE') return { kind: 'xa', action: 'prepare' };
      if (a === 'COMMIT') return { kind: 'xa', action: 'commit' };
      if (a === 'ROLLBACK') return { kind: 'xa', action: 'rollback' };
      return { kind: 'other' };
    }
    case 'TRUNCATE': {
      c.kw('TRUNCATE');
      c.kw('TABLE');
      const t = c.tableRef();
      return t ? { kind: 'truncate', table: t } : { kind: 'unknown-ddl' };
    }
    case 'RENAME': {
      c.kw('RENAME');
      if (!c.kw('TABLE') && !c.kw('TABLES')) return { kind: 'other' }; // RENAME USER
      const pairs: [TableRef, TableRef][] = [];
      do {
        c.kw('IF', 'EXISTS');
        const a = c.tableRef();
        c.kw('WAIT');
        if (!a || !c.kw('TO')) return { kind: 'unknown-ddl' };
        const b = c.tableRef();
        if (!b) return { kind: 'unknown-ddl' };
        pairs.push([a, b]);
      } while (c.punct(','));
      return { kind: 'rename-table', pairs };
    }
    case 'CREATE':
    case 'ALTER':
    case 'DROP':
      return parseDdl(c, first.up, sql);
    default:
      return { kind: 'other' };
  }
}

function parseDdl(c: Cur, verb: string, sql: string): Statement {
  c.i = 1;
  if (verb === 'CREATE') c.kw('OR', 'REPLACE');
  if (verb === 'ALTER') {
    c.kw('ONLINE');
    c.kw('OFFLINE');
    c.kw('IGNORE');
  }
  // CREATE [DEFINER=...] VIEW/TRIGGER/... are not table DDL; skip the definer clause to see.
  const temporary = c.kw('TEMPORARY');
  if (c.kw('DATABASE') || c.kw('SCHEMA')) {
    c.kw('IF', 'NOT', 'EXISTS') || c.kw('IF', 'EXISTS');
    const db = c.ident();
    return db === null ? { kind: 'other' } : { kind: 'database', action: verb === 'CREATE' ? 'create' : verb === 'DROP' ? 'drop' : 'alter', db };
  }
  if (c.kw('TABLE') || (verb === 'DROP' && c.kw('TABLES'))) {
    if (verb === 'CREATE') {
      c.kw('IF', 'NOT', 'EXISTS');
      const t = c.tableRef();
      if (!t) return { kind: 'unknown-ddl' };
      // MySQL 8 logs CREATE TABLE ... SELECT with a trailing START TRANSACTION: rows follow.
      return { kind: 'create-table', table: t, temporary, startsTransaction: /\bSTART\s+TRANSACTION\s*$/i.test(sql) };
    }
    if (verb === 'ALTER') {
      c.kw('IF', 'EXISTS');
      const t = c.tableRef();
      if (!t) return { kind: 'unknown-ddl' };
      // ALTER TABLE a ..., RENAME [TO|AS] b (not RENAME COLUMN/INDEX/KEY)
      let renameTo: TableRef | null = null;
      while (c.skipTo('RENAME')) {
        const next = c.peek();
        if (next && next.t === 'word' && ['COLUMN', 'INDEX', 'KEY', 'CONSTRAINT'].includes(next.up)) continue;
        c.kw('TO') || c.kw('AS');
        renameTo = c.tableRef();
      }
      return { kind: 'alter-table', table: t, renameTo };
    }
    c.kw('IF', 'EXISTS');
    const tables: TableRef[] = [];
    do {
      const t = c.tableRef();
      if (!t) return { kind: 'unknown-ddl' };
      tables.push(t);
    } while (c.punct(','));
    return { kind: 'drop-table', tables, temporary };
  }
  const save = c.i;
  c.kw('UNIQUE') || c.kw('FULLTEXT') || c.kw('SPATIAL');
  if (c.kw('INDEX') || c.kw('KEY')) {
    if (c.skipTo('ON')) {
      const t = c.tableRef();
      if (t) return { kind: 'index', table: t };
    }
    return { kind: 'unknown-ddl' };
  }
  c.i = save;
  // Views, routines, triggers, events, users, roles, servers, sequences...: no table shape change.
  const kind = c.peek();
  if (kind && kind.t === 'word' && ['VIEW', 'PROCEDURE', 'FUNCTION', 'TRIGGER', 'EVENT', 'USER', 'ROLE', 'SERVER', 'SEQUENCE', 'DEFINER', 'ALGORITHM', 'SQL', 'AGGREGATE', 'LOGFILE', 'TABLESPACE', 'SPATIAL', 'RESOURCE', 'PACKAGE'].includes(kind.up)) {
    return { kind: 'other' };
  }
  return { kind: 'unknown-ddl' };
}

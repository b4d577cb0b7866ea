import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../schemas/errors.js';
import { type PipelineConfig, pipelineConfig } from './schema.js';

type Path = readonly PropertyKey[];

/** `sinks[0].url` from ['sinks', 0, 'url']. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** One line per zod issue, each naming the field. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${formatPath([...issue.path, key])}: unknown key`);
      continue;
    }
    if (issue.code === 'invalid_type') {
      const got = issue.input === null ? 'null' : Array.isArray(issue.input) ? 'array' : typeof issue.input;
      lines.push(`${formatPath(issue.path)}: ${issue.input === undefined ? 'required' : `expected ${issue.expected}, got ${got}`}`);
      continue;
    }
    if (issue.code === 'invalid_union') {
      lines.push(`${formatPath(issue.path)}: ${issue.message}`);
      continue;
    }
    lines.push(`${formatPath(issue.path)}: ${issue.message}`);
  }
  return lines;
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of the parsed document, so secrets can
 * stay out of the file. A reference to an unset variable without a default is an error naming the
 * field (never the value).
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[] = [], problems: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, [...path, i], problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateEnv(v, env, [...path, k], problems)]));
  }
  return value;
}

/** Parses and validates config text. Throws ConfigError with one line per problem. */
export function parseConfig(text: string, env: NodeJS.ProcessEnv = process.env, fileName = 'config'): PipelineConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${fileName}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([`${fileName}: expected a YAML mapping at the top level`]);
  const problems: string[] = [];
  const interpolated = interpolateEnv(raw, env, [], problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const parsed = pipelineConfig.safeParse(interpolated, { reportInput: true });
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error.issues));
  return parsed.data;
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  return parseConfig(text, env, file);
}

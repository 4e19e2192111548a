import type * as z from 'zod';
import {
  CONNECTION_ID,
  type ConnectionConfig,
  connectionSchema,
  type TemplateConfig,
  templateSchema,
} from './connections.js';

/** One schema violation, as the admin API's `errors` list names it: a dotted path (`""` = the whole body). */
export interface DefinitionIssue {
  path: string;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; issues: DefinitionIssue[] };

/** `credential.secretName`, `scopes.2`; `""` for the object itself. */
export function dottedPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

function issuesOf(error: z.ZodError): DefinitionIssue[] {
  return error.issues.map((issue) => ({ path: dottedPath(issue.path), message: issue.message }));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const NOT_AN_OBJECT: DefinitionIssue[] = [{ path: '', message: 'must be a JSON object' }];

/** A template as written: each field on its own (the fields are checked together once merged). */
export function checkTemplate(definition: unknown): Checked<TemplateConfig> {
  if (!isPlainObject(definition)) return { ok: false, issues: NOT_AN_OBJECT };
  const parsed = templateSchema.safeParse(definition);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, issues: issuesOf(parsed.error) };
}

/**
 * The template's fields overridden by the connection's own (DESIGN: "arrays replace, never merge";
 * objects such as `credential` replace too), without `template` itself.
 */
export function mergeWithTemplate(
  definition: Record<string, unknown>,
  template: TemplateConfig | undefined,
): Record<string, unknown> {
  const { template: _name, ...own } = definition;
  return template ? { ...template, ...own } : own;
}

/** A checked connection: its config (defaults applied) and the template it names, if any. */
export interface CheckedConnection {
  config: ConnectionConfig;
  template?: string;
}

/**
 * A connection definition as written, merged with its template and validated by the one connection
 * schema. `templateOf` answers the templates this definition may name; a name it does not know is
 * an issue at `template`.
 */
export function checkConnection(
  definition: unknown,
  templateOf: (name: string) => TemplateConfig | undefined,
): Checked<CheckedConnection> {
  if (!isPlainObject(definition)) return { ok: false, issues: NOT_AN_OBJECT };
  const name = definition.template;
  let template: TemplateConfig | undefined;
  if (name !== undefined) {
    if (typeof name !== 'string' || !CONNECTION_ID.test(name)) {
      return {
        ok: false,
        issues: [
          { path: 'template', message: 'template names are lowercase letters, digits and dashes (max 63)' },
        ],
      };
    }
    template = templateOf(name);
    if (!template)
      return { ok: false, issues: [{ path: 'template', message: `there is no template "${name}"` }] };
  }
  const parsed = connectionSchema.safeParse(mergeWithTemplate(definition, template));
  if (!parsed.success) return { ok: false, issues: issuesOf(parsed.error) };
  return {
    ok: true,
    value: name === undefined ? { config: parsed.data } : { config: parsed.data, template: name },
  };
}

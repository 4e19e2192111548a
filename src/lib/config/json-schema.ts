import * as z from 'zod';
import { connectionsFileSchema } from './connections.js';

/** The committed `connections.schema.json`, derived from the zod schema so the two cannot disagree. */
export function connectionsJsonSchema(): string {
  const schema = z.toJSONSchema(connectionsFileSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  const ordered = {
    $schema: schema.$schema,
    title: 'Token broker connections',
    ...schema,
  };
  return `${JSON.stringify(ordered, null, 2)}\n`;
}

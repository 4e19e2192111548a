import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The core imports nothing above it (docs/architecture.md): what a failure means is classified in
 * the protocol and provider layers, advice is put into words at the edge (the adapter, the events
 * writer, the status service), and the token core neither reports nor advises.
 */
const LIB = join(import.meta.dirname, '../../src/lib');

function importsOf(folder: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const file of readdirSync(join(LIB, folder))) {
    if (!file.endsWith('.ts')) continue;
    const text = readFileSync(join(LIB, folder, file), 'utf8');
    for (const m of text.matchAll(/from '(\.\.?\/[^']+)'/g)) out.push([`${folder}/${file}`, m[1]!]);
  }
  return out;
}

const BELOW: Record<string, string[]> = {
  tokens: ['events', 'health', 'consent', 'rotation', 'http'],
  oauth: ['tokens', 'events', 'health', 'consent', 'rotation', 'http', 'providers', 'store', 'lock'],
  providers: ['tokens', 'events', 'health', 'consent', 'rotation', 'http'],
  store: ['tokens', 'events', 'health', 'consent', 'rotation', 'http', 'providers', 'oauth'],
  lock: ['tokens', 'events', 'health', 'consent', 'rotation', 'http', 'providers', 'oauth'],
};

describe('layers: the core imports nothing above it', () => {
  it.each(Object.entries(BELOW))('%s/ imports none of %j', (folder, above) => {
    const wrong = importsOf(folder).filter(([, spec]) =>
      above.some((layer) => spec.startsWith(`../${layer}/`)),
    );
    expect(wrong).toEqual([]);
  });
});

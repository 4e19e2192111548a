/**
 * The sandbox's state file: the grants and their refresh tokens, so a restarted `npm start` still
 * honours the refresh token the broker stored. Refresh tokens are kept only as SHA-256 hashes, so
 * the file holds nothing that redeems; codes, device codes and signing keys are not kept at all.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Grant } from './grant.js';

/** Where the state goes: `load` is read once at construction, `save` called after every change. */
export interface SimulatorPersistence {
  load(): string | undefined;
  save(state: string): void;
}

export interface RefreshTokenRecord {
  grant: Grant;
  issuedAt: number;
}

/** The file's JSON: refresh tokens as [hash, index into grants, issuedAt]. */
interface StateFile {
  grants: Grant[];
  refreshTokens: Array<[string, number, number]>;
}

/** Refresh tokens are looked up by this hash, in memory and on disk alike. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');

export function serializeState(grants: Grant[], refreshTokens: Map<string, RefreshTokenRecord>): string {
  const index = new Map(grants.map((grant, i) => [grant, i]));
  const state: StateFile = {
    grants,
    refreshTokens: [...refreshTokens].map(([hash, r]) => [hash, index.get(r.grant) ?? -1, r.issuedAt]),
  };
  return JSON.stringify(state);
}

/** The saved state, or nothing: a damaged state file only means people sign in again. */
export function parseState(text: string | undefined): {
  grants: Grant[];
  refreshTokens: Map<string, RefreshTokenRecord>;
} {
  const refreshTokens = new Map<string, RefreshTokenRecord>();
  if (!text) return { grants: [], refreshTokens };
  try {
    const state = JSON.parse(text) as StateFile;
    for (const [hash, index, issuedAt] of state.refreshTokens) {
      const grant = state.grants[index];
      if (grant) refreshTokens.set(hash, { grant, issuedAt });
    }
    return { grants: state.grants, refreshTokens };
  } catch {
    return { grants: [], refreshTokens: new Map() };
  }
}

/** The state in one file (0600), replaced atomically so a crash never leaves half of it. */
export function filePersistence(path: string): SimulatorPersistence {
  return {
    load: () => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    save: (state: string) => {
      writeFileSync(`${path}.tmp`, state, { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    },
  };
}

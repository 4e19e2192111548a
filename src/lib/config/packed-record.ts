import type { Actor, DefinitionRecord } from '../definitions/definition-store.js';

/**
 * A managed connection's stored record as one string: what the admin API's pages need (the
 * definition as written, etag, who and when) kept beside 100,000 resolved connections for about
 * 0.2 KB each, where the record's objects would take twice that. Unpacked only for the page shown.
 */
export type PackedRecord = string;

type Packed = [Record<string, unknown>, string, string, Actor, string, Actor];

export function packRecord(record: DefinitionRecord): PackedRecord {
  const packed: Packed = [
    record.definition,
    record.etag,
    record.createdAt,
    record.createdBy,
    record.updatedAt,
    record.updatedBy,
  ];
  return JSON.stringify(packed);
}

export function unpackRecord(name: string, packed: PackedRecord): DefinitionRecord {
  const [definition, etag, createdAt, createdBy, updatedAt, updatedBy] = JSON.parse(packed) as Packed;
  return { kind: 'connection', name, definition, etag, createdAt, createdBy, updatedAt, updatedBy };
}

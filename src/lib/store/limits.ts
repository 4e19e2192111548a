import { StoreError } from '../errors.js';

/**
 * Key Vault's limits on names, tags and dates, enforced by every store alike so that what works on the
 * embedded store works on Key Vault. Errors never echo a value: a value passed in a name's place must
 * not reach a log.
 */
export const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_TAGS = 15;
const MAX_TAG_NAME = 512;
const MAX_TAG_VALUE = 256;

export function checkName(name: string): string {
  if (typeof name !== 'string' || !SECRET_NAME.test(name)) {
    throw new StoreError('invalid', 'invalid secret name: use 1-127 characters of 0-9 a-z A-Z -');
  }
  return name;
}

export function checkTags(tags: Record<string, string>): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS)
    throw new StoreError('invalid', `too many tags (${entries.length}): at most ${MAX_TAGS}`);
  for (const [tag, value] of entries) {
    if (tag.length === 0) throw new StoreError('invalid', 'tag names must not be empty');
    if (tag.length > MAX_TAG_NAME) {
      throw new StoreError(
        'invalid',
        `tag name ${JSON.stringify(tag.slice(0, 40))}… is longer than ${MAX_TAG_NAME} characters`,
      );
    }
    if (typeof value !== 'string')
      throw new StoreError('invalid', `tag ${JSON.stringify(tag)} must be a string`);
    if (value.length > MAX_TAG_VALUE) {
      throw new StoreError(
        'invalid',
        `tag ${JSON.stringify(tag)} value is longer than ${MAX_TAG_VALUE} characters`,
      );
    }
  }
  return Object.fromEntries(entries);
}

export function checkDate(date: Date | undefined, what: string): Date | undefined {
  if (date === undefined) return undefined;
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    throw new StoreError('invalid', `${what} must be a valid Date`);
  return date;
}

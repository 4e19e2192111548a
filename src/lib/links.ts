/**
 * The one builder of consent links (`/api/start?connection=ID`), for details, remedies, problem
 * bodies and pages. The function key rides along only when a page itself was opened with `?code=`:
 * a key sent as a header is never copied into a URL.
 */

/** `/api/start` for a new attempt; `replace` lets another account take the connection over. */
export function startPath(connectionId: string, key?: string, replace = false): string {
  const params = new URLSearchParams({ connection: connectionId });
  if (replace) params.set('replace', 'true');
  if (key) params.set('code', key);
  return `/api/start?${params}`;
}

/** `/api/start/poll` for a device-code attempt. */
export function pollPath(connectionId: string, attempt: string, key: string | undefined): string {
  const params = new URLSearchParams({ connection: connectionId, attempt });
  if (key) params.set('code', key);
  return `/api/start/poll?${params}`;
}

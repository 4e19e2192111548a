/** Plain http is allowed only towards this machine (docs/design.md, "Connections"): 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
  );
}

/** `undefined` when the URL is acceptable as an endpoint, else the reason. */
export function endpointProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  if (url.protocol === 'http:') return 'must use https:// (plain http only for loopback hosts)';
  return `has unsupported scheme ${url.protocol}`;
}

export const trimSlash = (url: string): string => url.replace(/\/+$/, '');

import { isIPv4 } from 'node:net';

/**
 * Which `Host` the embedded host answers (docs/callers.md, "The embedded host answers only its own
 * names"). A page on any web site can make a browser send requests to 127.0.0.1 under the site's own
 * name by DNS rebinding (evil.example resolves to 127.0.0.1 a second time); the browser then treats
 * the answers as the site's own. The `Host` header still says evil.example, so the host refuses every
 * name but `localhost`, loopback addresses and the names it was configured with (the host of
 * `BROKER_PUBLIC_URL`), with 421 Misdirected Request (RFC 9110 §15.5.20).
 */

/** Header values a host (with an optional port) can be; anything else (userinfo, paths) is refused before parsing. */
const HOST_SYNTAX = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The host name of a `Host` header value or an authority, lower-cased, IPv6 in brackets; undefined when it is none. */
export function hostNameOf(value: string | undefined): string | undefined {
  if (!value || !HOST_SYNTAX.test(value)) return undefined;
  try {
    // The WHATWG parser normalises what resolvers would also accept: `0x7f.1`, `[0:0::1]`, upper case.
    return new URL(`http://${value}`).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** `localhost`, 127.0.0.0/8, `[::1]`, and IPv4-mapped loopback (`[::ffff:127.x.y.z]`, normalised to hex). */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name === '[::1]') return true;
  if (isIPv4(name)) return name.startsWith('127.');
  return /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(name);
}

/** A predicate over `Host` values: loopback names, plus `extra` host names (e.g. `broker.contoso.com`). */
export function hostMatcher(extra: readonly string[] = []): (host: string | undefined) => boolean {
  const own = new Set(extra.map((h) => hostNameOf(h)).filter((h): h is string => h !== undefined));
  return (host) => {
    const name = hostNameOf(host);
    return name !== undefined && (isLoopbackName(name) || own.has(name));
  };
}

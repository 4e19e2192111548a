import * as z from 'zod';
import { endpointProblem, trimSlash } from '../config/urls.js';
import { BrokerError } from '../errors.js';
import { type HttpDeps, jsonBody, send } from './http.js';
import { optionalNonEmpty } from './json.js';
import { getRequest } from './request.js';

/** What the broker needs of an authorization server's metadata, normalized. */
export interface ProviderMetadata {
  issuer: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  deviceAuthorizationEndpoint?: string;
  userinfoEndpoint?: string;
  /** RFC 8414 §2 `token_endpoint_auth_methods_supported`; absent means `client_secret_basic`. */
  tokenEndpointAuthMethods?: string[];
}

const optionalList = z.array(z.string()).optional().catch(undefined);

const metadataSchema = z.object({
  issuer: z.string().min(1),
  authorization_endpoint: optionalNonEmpty,
  token_endpoint: optionalNonEmpty,
  device_authorization_endpoint: optionalNonEmpty,
  userinfo_endpoint: optionalNonEmpty,
  token_endpoint_auth_methods_supported: optionalList,
});

/**
 * Where the metadata of `issuer` may be: OpenID Connect Discovery 1.0 §4 appends
 * `/.well-known/openid-configuration` to the issuer; RFC 8414 §3.1 inserts
 * `/.well-known/oauth-authorization-server` between the host and the issuer's path.
 */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = trimSlash(url.pathname);
  return [
    `${trimSlash(issuer)}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

/**
 * Parses a metadata document (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) fetched for `issuer`.
 * The document must name the same issuer (RFC 8414 §3.3, OpenID Connect Discovery §4.3: a document
 * naming another one could send tokens to an impostor), and every endpoint must be https (or plain
 * http on loopback), as configured endpoints must. Throws `client_misconfigured` otherwise.
 */
export function parseProviderMetadata(
  body: unknown,
  issuer: string,
  connectionId?: string,
): ProviderMetadata {
  const parsed = metadataSchema.safeParse(body);
  if (!parsed.success) {
    throw new BrokerError(
      'client_misconfigured',
      `The discovery document of ${issuer} is not OAuth 2.0 / OpenID metadata (no "issuer"). Check "issuer", or set the endpoints explicitly.`,
      { connectionId },
    );
  }
  const doc = parsed.data;
  if (trimSlash(doc.issuer) !== trimSlash(issuer)) {
    throw new BrokerError(
      'client_misconfigured',
      `The discovery document fetched for ${issuer} names another issuer (${doc.issuer}); the broker does not use it. ` +
        'Set "issuer" to exactly the value the provider publishes.',
      { connectionId },
    );
  }
  const endpoints = {
    authorizationEndpoint: ['authorization_endpoint', doc.authorization_endpoint],
    tokenEndpoint: ['token_endpoint', doc.token_endpoint],
    deviceAuthorizationEndpoint: ['device_authorization_endpoint', doc.device_authorization_endpoint],
    userinfoEndpoint: ['userinfo_endpoint', doc.userinfo_endpoint],
  } as const;
  const metadata: ProviderMetadata = { issuer: doc.issuer };
  for (const [key, [field, value]] of Object.entries(endpoints)) {
    if (value === undefined) continue;
    const problem = endpointProblem(value);
    if (problem) {
      throw new BrokerError(
        'client_misconfigured',
        `The discovery document of ${issuer}: "${field}" ${problem}. Set the endpoint explicitly instead.`,
        { connectionId },
      );
    }
    metadata[key as keyof typeof endpoints] = value;
  }
  if (doc.token_endpoint_auth_methods_supported)
    metadata.tokenEndpointAuthMethods = doc.token_endpoint_auth_methods_supported;
  return metadata;
}

/**
 * Fetches the metadata of `issuer` (OpenID Connect Discovery 1.0 §4, falling back to RFC 8414 §3).
 * A provider that is down ends as `upstream_unavailable` (from `send`); one that has no document
 * at either place, or a document that does not fit, as `client_misconfigured`.
 */
export async function discoverProvider(
  deps: HttpDeps,
  issuer: string,
  connectionId?: string,
): Promise<ProviderMetadata> {
  const answers: string[] = [];
  for (const url of discoveryUrls(issuer)) {
    const response = await send(deps, getRequest(url, { connectionId }));
    const body = jsonBody(response);
    if (response.status >= 200 && response.status < 300 && body !== undefined) {
      return parseProviderMetadata(body, issuer, connectionId);
    }
    answers.push(`${new URL(url).pathname}: HTTP ${response.status}`);
  }
  throw new BrokerError(
    'client_misconfigured',
    `${issuer} publishes no discovery document (${answers.join('; ')}). ` +
      'Check "issuer", or set authorizationEndpoint, tokenEndpoint and deviceAuthorizationEndpoint explicitly.',
    { connectionId },
  );
}

/** Discovery documents change rarely; a day keeps a key rotation or endpoint move from lingering. */
export const DISCOVERY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * `discoverProvider` for one issuer, asked once and again after `DISCOVERY_TTL_MS`; concurrent
 * callers share one request, and a failed discovery is not kept: the next call asks again.
 */
export function cachedDiscovery(
  deps: HttpDeps,
  issuer: string,
  connectionId?: string,
): () => Promise<ProviderMetadata> {
  let discovered: { until: number; metadata: Promise<ProviderMetadata> } | undefined;
  return () => {
    if (!discovered || discovered.until <= deps.clock.now()) {
      const metadata = discoverProvider(deps, issuer, connectionId);
      discovered = { until: deps.clock.now() + DISCOVERY_TTL_MS, metadata };
      metadata.catch(() => {
        if (discovered?.metadata === metadata) discovered = undefined;
      });
    }
    return discovered.metadata;
  };
}

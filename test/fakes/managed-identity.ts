/**
 * A managed identity endpoint as App Service and Azure Functions serve it (`IDENTITY_ENDPOINT` +
 * `IDENTITY_HEADER`): `GET ?resource=…&api-version=2019-08-01[&client_id=…]` with the header
 * `X-IDENTITY-HEADER`, answering `{access_token, expires_on, resource, token_type, client_id}`
 * (`expires_on` in epoch seconds, as a string). Its tokens are RS256 JWTs signed by its own key, with
 * the claims Entra puts in a managed identity's token: `iss` the tenant's v2 issuer, `sub`/`oid` the
 * identity's object id, `aud` the resource. Bound to 127.0.0.1; the real SDK talks to it.
 */
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ManagedIdentityFakeOptions {
  /** Epoch ms (the test's clock): `iat`, `exp` and `expires_on` follow it. */
  now?: () => number;
  tenantId?: string;
  /** User-assigned identities: client id → object (principal) id. */
  identities: Record<string, string>;
}

export interface ManagedIdentityFake {
  /** `IDENTITY_ENDPOINT`. */
  url: string;
  /** `IDENTITY_HEADER`. */
  header: string;
  /** What a federated credential names as issuer: `https://login.microsoftonline.com/{tenant}/v2.0`. */
  issuer: string;
  /** PEM public key its tokens are signed with (what the Entra simulator is told to trust). */
  publicKey: string;
  /** Lifetime of tokens issued from now on, seconds (default 3600). */
  lifetimeSec: number;
  /** Every request that reached it (faults included): its query parameters. */
  requests: Array<Record<string, string>>;
  /** Every token it issued (for the leak scans). */
  issued: string[];
  /** The next `times` requests answer `status` (e.g. 500, 503) instead. */
  failNext(status: number, times?: number): void;
  /** The next `times` requests are held `ms` before being answered. */
  hangNext(ms: number, times?: number): void;
  /** Drops the failures and delays not used up. */
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startManagedIdentitySimulator(
  options: ManagedIdentityFakeOptions,
): Promise<ManagedIdentityFake> {
  const now = options.now ?? Date.now;
  const tenantId = options.tenantId ?? randomUUID();
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('base64url');
  const header = randomBytes(16).toString('hex');
  const issuer = `https://login.microsoftonline.com/${tenantId}/v2.0`;
  const faults: number[] = [];
  const hangs: number[] = [];
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  const fake: Omit<ManagedIdentityFake, 'url' | 'close'> = {
    header,
    issuer,
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    lifetimeSec: 3600,
    requests: [],
    issued: [],
    failNext(status, times = 1) {
      for (let i = 0; i < times; i++) faults.push(status);
    },
    hangNext(ms, times = 1) {
      for (let i = 0; i < times; i++) hangs.push(ms);
    },
    clearFaults() {
      faults.length = 0;
      hangs.length = 0;
    },
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    fake.requests.push(Object.fromEntries(url.searchParams));
    const hang = hangs.shift();
    if (hang !== undefined) await new Promise((resolve) => setTimeout(resolve, hang));
    const reply = (status: number, body: object) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const fault = faults.shift();
    if (fault !== undefined) return reply(fault, { statusCode: fault, message: 'injected failure' });
    if (req.method !== 'GET' || req.headers['x-identity-header'] !== header)
      return reply(401, { statusCode: 401, message: 'X-IDENTITY-HEADER missing or wrong' });
    const resource = url.searchParams.get('resource');
    if (url.searchParams.get('api-version') !== '2019-08-01' || !resource)
      return reply(400, { statusCode: 400, message: 'resource and api-version=2019-08-01 are required' });
    const clientId = url.searchParams.get('client_id');
    const principalId = clientId ? options.identities[clientId] : undefined;
    if (!clientId || !principalId)
      return reply(400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.' });
    const iat = Math.floor(now() / 1000);
    const exp = iat + fake.lifetimeSec;
    const claims = {
      aud: resource.replace(/\/\.default$/, ''),
      iss: issuer,
      iat,
      nbf: iat,
      exp,
      sub: principalId,
      oid: principalId,
      azp: clientId,
      tid: tenantId,
      uti: randomBytes(16).toString('base64url'),
    };
    const input = `${b64({ typ: 'JWT', alg: 'RS256', kid })}.${b64(claims)}`;
    const token = `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
    fake.issued.push(token);
    reply(200, {
      access_token: token,
      expires_on: String(exp),
      resource,
      token_type: 'Bearer',
      client_id: clientId,
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}/msi/token`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  });
}

/**
 * Points the SDK at `fake` through `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` (it reads them from
 * `process.env` only), and clears what would make it choose another source; returns the restore.
 * The SDK picks its source once per process, so a test file uses one simulator throughout.
 */
export function useManagedIdentityEnv(fake: ManagedIdentityFake): () => void {
  const names = [
    'IDENTITY_ENDPOINT',
    'IDENTITY_HEADER',
    'MSI_ENDPOINT',
    'MSI_SECRET',
    'IMDS_ENDPOINT',
    'AZURE_FEDERATED_TOKEN_FILE',
    'IDENTITY_SERVER_THUMBPRINT',
  ];
  const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  for (const n of names) delete process.env[n];
  process.env.IDENTITY_ENDPOINT = fake.url;
  process.env.IDENTITY_HEADER = fake.header;
  return () => {
    for (const n of names) {
      const value = saved[n];
      if (value === undefined) delete process.env[n];
      else process.env[n] = value;
    }
  };
}

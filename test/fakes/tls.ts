/**
 * A throwaway TLS identity for test servers on 127.0.0.1: a private CA and a server certificate it
 * signed (SAN `IP:127.0.0.1`, `DNS:localhost`, `DNS:*.vault.azure.net`), made once per process with the `openssl` command and
 * kept in memory only. Clients trust `ca`; nothing is added to the machine's trust store.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTls {
  /** PEM of the CA to trust (e.g. `tlsOptions: { ca }`). */
  ca: string;
  /** PEM key and certificate for `https.createServer`. */
  key: string;
  cert: string;
}

let cached: TestTls | undefined;

/** Runs the `openssl` command in `cwd` (throws a clear error when it is not installed). */
export function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('The `openssl` command is needed to make the test TLS certificate: install openssl.');
    }
    throw err;
  }
}

/** The process's test CA and server certificate for 127.0.0.1 (generated on first call). */
export function testTls(): TestTls {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'broker-tls-'));
  try {
    const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(
      [
        'req',
        '-x509',
        ...curve,
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=broker test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    openssl(
      ['req', '-new', ...curve, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'],
      dir,
    );
    writeFileSync(
      join(dir, 'server.ext'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
        // A vault name too: the Key Vault SDK only answers a challenge from a host under vault.azure.net,
        // so a broker process that cannot be handed `disableChallengeResourceVerification` (the packaged
        // one in bench/cold-start.ts) reaches the simulator by such a name, resolved to 127.0.0.1.
        'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.vault.azure.net',
        '',
      ].join('\n'),
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '2',
        '-extfile',
        'server.ext',
      ],
      dir,
    );
    const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    cached = {
      ca,
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
      cert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestCertificate {
  /** PKCS#8 PEM private key (RSA 2048). */
  key: string;
  /** PEM self-signed certificate. */
  cert: string;
  /** Key then certificate: what Key Vault serves as a PEM certificate's secret. */
  bundle: string;
}

/** A self-signed RSA certificate for a certificate credential (`days` of validity from now). */
export function testCertificate(options: { cn?: string; days?: number } = {}): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'broker-cert-'));
  try {
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
        '-days',
        String(options.days ?? 365),
        '-subj',
        `/CN=${options.cn ?? 'broker test client'}`,
      ],
      dir,
    );
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return { key, cert, bundle: `${key}${cert}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

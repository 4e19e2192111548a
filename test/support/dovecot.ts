/**
 * A private Dovecot (the real IMAP server, from the dovecot-imapd package) on 127.0.0.1: its own
 * config, run and mail directories in a temp folder, XOAUTH2/OAUTHBEARER only, the tokens checked by
 * Dovecot's `oauth2` passdb against an RFC 7662-style introspection endpoint the test serves
 * (`introspection_mode = post`: Dovecot POSTs `token=…`). Dovecot then requires the introspection
 * answer's `username` to equal the SASL `user` (lowercased, `username_format = %Lu`), so the
 * endpoint decides which mailbox a token opens. Settings as Dovecot 2.3 documents them
 * (https://doc.dovecot.org/2.3/configuration_manual/authentication/oauth2/).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

const CANDIDATES = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'];

/** The dovecot binary, or undefined when it is not installed (CI installs it: there the test must run). */
export function dovecotBinary(): string | undefined {
  for (const path of CANDIDATES) if (existsSync(path)) return path;
  try {
    return execFileSync('sh', ['-c', 'command -v dovecot'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The binary, looked up once (a test's `describe.skipIf` needs it at load). */
export const DOVECOT = dovecotBinary();

/** What the introspection endpoint answers for a token: the mailbox it opens, or nothing. */
export type Introspect = (token: string) => { username: string; fields?: Record<string, string> } | undefined;

export interface Dovecot {
  host: string;
  port: number;
  /** Tokens the introspection endpoint was asked about, in order. */
  introspected: string[];
  /** The tail of Dovecot's log, for failure messages. */
  log(): Promise<string>;
  close(): Promise<void>;
}

function idOf(user: string, flag: '-u' | '-g'): number | undefined {
  try {
    return Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Starts Dovecot with an introspection endpoint answering `introspect` (or pointed at an endpoint the
 * test serves itself, given as a URL); resolves once IMAP answers.
 */
export async function startDovecot(introspect: Introspect | string): Promise<Dovecot> {
  const binary = dovecotBinary();
  if (!binary) throw new Error('dovecot is not installed (apt-get install dovecot-imapd)');
  const introspected: string[] = [];
  const http: Server = createServer(async (req, res) => {
    if (typeof introspect === 'string') return res.end();
    const token = (await readForm(req)).get('token') ?? '';
    introspected.push(token);
    const answer = introspect(token);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify(
        answer ? { active: true, username: answer.username, ...answer.fields } : { active: false },
      ),
    );
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const introspectionUrl =
    typeof introspect === 'string'
      ? introspect
      : `http://127.0.0.1:${(http.address() as { port: number }).port}/introspect`;

  const dir = await mkdtemp(join(tmpdir(), 'broker-dovecot-'));
  // Dovecot's unprivileged processes must reach its sockets and the mail folders.
  await chmod(dir, 0o755);
  const root = process.getuid?.() === 0;
  // As root, mail belongs to the package's `dovecot` user (uid 0 is refused for mail); else to us.
  const uid = root ? (idOf('dovecot', '-u') ?? 0) : (process.getuid?.() ?? 0);
  const gid = root ? (idOf('dovecot', '-g') ?? 0) : (process.getgid?.() ?? 0);
  const self = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
  for (const sub of ['run', 'state', 'mail']) await mkdir(join(dir, sub), { recursive: true });
  if (root) await chown(join(dir, 'mail'), uid, gid);
  const port = await freePort();
  await writeFile(
    join(dir, 'oauth2.conf.ext'),
    [
      'introspection_mode = post',
      `introspection_url = ${introspectionUrl}`,
      'username_attribute = username',
      'username_format = %Lu',
      'active_attribute = active',
      '',
    ].join('\n'),
  );
  const users = root
    ? []
    : [`default_login_user = ${self}`, `default_internal_user = ${self}`, `default_internal_group = ${self}`];
  await writeFile(
    join(dir, 'dovecot.conf'),
    [
      'protocols = imap',
      'listen = 127.0.0.1',
      `base_dir = ${dir}/run`,
      `state_dir = ${dir}/state`,
      `log_path = ${dir}/dovecot.log`,
      'ssl = no',
      // XOAUTH2 over a loopback connection without TLS: this server exists for one test.
      'disable_plaintext_auth = no',
      'auth_mechanisms = xoauth2 oauthbearer',
      'auth_verbose = yes',
      `mail_location = maildir:${dir}/mail/%Ln`,
      `first_valid_uid = ${Math.min(uid, 100)}`,
      ...users,
      'service imap-login {',
      `  inet_listener imap {\n    address = 127.0.0.1\n    port = ${port}\n  }`,
      '  inet_listener imaps {\n    port = 0\n  }',
      '}',
      'service anvil {\n  chroot =\n}',
      'service imap-login {\n  chroot =\n}',
      'passdb {',
      '  driver = oauth2',
      '  mechanisms = xoauth2 oauthbearer',
      `  args = ${dir}/oauth2.conf.ext`,
      '}',
      'userdb {',
      '  driver = static',
      `  args = uid=${uid} gid=${gid} home=${dir}/mail/%Ln`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(binary, ['-F', '-c', join(dir, 'dovecot.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const log = async () =>
    `${output}\n${await readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => '')}`.slice(-4000);
  const close = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await new Promise((resolve) => http.close(resolve));
    http.closeAllConnections();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForGreeting(port, child, 10_000);
  } catch (err) {
    const text = await log();
    await close();
    throw new Error(`dovecot did not start: ${(err as Error).message}\n${text}`);
  }
  return { host: '127.0.0.1', port, introspected, log, close };
}

async function waitForGreeting(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}`);
    if (await greets(port)) return;
    if (Date.now() > until) throw new Error('no IMAP greeting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('* OK'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * One raw `AUTHENTICATE XOAUTH2 <initial response>` (RFC 4959 SASL-IR) with exactly the string given,
 * as the broker built it: the tagged answer line (`A1 OK …` or `A1 NO …`).
 */
export function authenticateXoauth2(host: string, port: number, initialResponse: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let buffer = '';
    let sent = false;
    socket.setTimeout(10_000);
    socket.on('data', (d) => {
      buffer += d.toString();
      if (!sent && buffer.includes('\r\n')) {
        sent = true;
        buffer = '';
        socket.write(`A1 AUTHENTICATE XOAUTH2 ${initialResponse}\r\n`);
        return;
      }
      // A failed XOAUTH2 first gets a `+ <error json>` challenge; an empty answer ends the exchange.
      if (/^\+ /m.test(buffer) && !/^A1 /m.test(buffer)) {
        buffer = buffer.replace(/^\+ .*\r\n/m, '');
        socket.write('\r\n');
        return;
      }
      const line = /^A1 .*$/m.exec(buffer)?.[0];
      if (line) {
        socket.end('A2 LOGOUT\r\n');
        resolve(line.trim());
      }
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error('IMAP timeout'));
    });
    socket.once('error', reject);
  });
}

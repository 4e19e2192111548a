/**
 * A private Dovecot IMAP server for a test: its own config, run, state and mail directories in a
 * temp dir, listening on 127.0.0.1 (random port), in the foreground as a child process, logging to
 * its stderr. Logins are XOAUTH2 only, checked by Dovecot's oauth2 passdb against an introspection
 * URL (Dovecot 2.3: `passdb { driver = oauth2 }` with `introspection_mode = post`). Works as root
 * (mail owned by the `dovecot` user) and as any other user (everything runs as that user).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export const DOVECOT = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'].find((p) => existsSync(p));

export interface Dovecot {
  host: string;
  port: number;
  /** Everything Dovecot logged so far. */
  log(): string;
  close(): Promise<void>;
}

function idsOf(user: string): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', user]).toString().trim());
    const gid = Number(execFileSync('id', ['-g', user]).toString().trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

export async function startDovecot(introspectionUrl: string): Promise<Dovecot> {
  if (!DOVECOT) throw new Error('dovecot is not installed (apt-get install dovecot-imapd)');
  const dir = await mkdtemp(join(tmpdir(), 'broker-dovecot-'));
  const me = userInfo();
  const root = me.uid === 0;
  // Root: Dovecot's own unprivileged users, as its package sets them up; else: the current user for all.
  const internal = root ? 'dovecot' : me.username;
  const login = root ? (idsOf('dovenull') ? 'dovenull' : 'dovecot') : me.username;
  const mail = root ? (idsOf('dovecot') ?? { uid: 65534, gid: 65534 }) : { uid: me.uid, gid: me.gid };
  const port = await freePort();
  const mailDir = join(dir, 'mail');
  await mkdir(mailDir);
  await mkdir(join(dir, 'run'));
  if (root) await chown(mailDir, mail.uid, mail.gid);
  await chmod(dir, 0o755);
  await writeFile(
    join(dir, 'oauth2.conf.ext'),
    [
      `introspection_url = ${introspectionUrl}`,
      'introspection_mode = post',
      'force_introspection = yes',
      'username_attribute = username',
      'active_attribute = active',
      'active_value = true',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'dovecot.conf'),
    `# A throwaway IMAP server for one test run.
protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = broker-test-${port}
log_path = /dev/stderr
info_log_path = /dev/stderr
ssl = no
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer
auth_verbose = yes
default_internal_user = ${internal}
default_internal_group = ${root ? 'dovecot' : idsGroup(me.gid)}
default_login_user = ${login}
first_valid_uid = ${mail.uid}
mail_location = maildir:${mailDir}/%u
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${dir}/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=${mail.uid} gid=${mail.gid} home=${mailDir}/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`,
  );
  let output = '';
  const child: ChildProcess = spawn(DOVECOT, ['-F', '-c', join(dir, 'dovecot.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dovecot exited at start:\n${output}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`dovecot did not listen on ${port} within 10 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    host: '127.0.0.1',
    port,
    log: () => output,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function idsGroup(gid: number): string {
  try {
    return execFileSync('getent', ['group', String(gid)])
      .toString()
      .split(':')[0]!;
  } catch {
    return String(gid);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

import * as z from 'zod';
import { isAppOnly, MAILBOX_ADDRESS, MAILBOX_MAX } from '../lib/config/connections.js';
import { BrokerError } from '../lib/errors.js';
import { parseQuery } from '../lib/http/request.js';
import { allowedMailbox } from '../lib/tokens/mailboxes.js';
import { xoauth2 } from '../lib/tokens/token-service.js';
import { adapter, type BrokerSource } from './adapter.js';
import { connectionParam } from './query.js';

const query = z.object({
  connection: connectionParam,
  scope: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(2048, 'is too long')
    .regex(/^[\x21-\x7e ]+$/, 'must be space-separated scope names')
    .optional(),
  format: z.enum(['xoauth2'], { error: 'must be xoauth2' }).optional(),
  // Goes into the SASL string: CR/LF or ^A would forge its fields, so only a plain address passes.
  user: z
    .string()
    .max(MAILBOX_MAX, `must be at most ${MAILBOX_MAX} characters`)
    .regex(MAILBOX_ADDRESS, 'must be a mailbox address')
    .optional(),
});

/** `GET /api/token`: a fresh access token for a connection (docs/design.md, "HTTP surface"). */
export const tokenHandler = (source: BrokerSource) =>
  adapter(source, async ({ broker, request }) => {
    const q = parseQuery(request.query, query);
    const { caller, token, mailbox } = await broker.telemetry.vend(q.connection, async () => {
      const caller = await broker.callers(request.headers.get('authorization'), () =>
        broker.connections.get(q.connection),
      );
      const connection = await broker.connections.get(q.connection);
      if (q.user !== undefined && q.format !== 'xoauth2') {
        throw new BrokerError('invalid_request', 'Query parameter "user" goes with format=xoauth2.', {
          connectionId: q.connection,
        });
      }
      // Before any provider call: a mailbox the connection does not list gets nothing.
      const mailbox = q.user === undefined ? undefined : allowedMailbox(connection, q.user);
      if (q.format === 'xoauth2' && isAppOnly(connection) && mailbox === undefined) {
        throw new BrokerError(
          'invalid_request',
          `Connection "${q.connection}" is app-only: name the mailbox with user= (one of its "mailboxes").`,
          { connectionId: q.connection },
        );
      }
      const token = await broker.tokens.getAccessToken(q.connection, q.scope?.split(/ +/));
      return { caller, token, mailbox, served: token.served };
    });
    broker.callerActivity.record(q.connection, caller);
    // The audit trail of who got which connection's token; never the token.
    broker.logger.info('token.vended', {
      connection: q.connection,
      caller: caller.name,
      callerId: caller.id,
      scope: token.scope,
      served: token.served,
      mailbox,
    });
    const now = broker.clock.now();
    const body: Record<string, unknown> = {
      access_token: token.accessToken,
      token_type: token.tokenType,
      expires_in: Math.floor((token.expiresAt - now) / 1000),
      expires_on: Math.floor(token.expiresAt / 1000),
      scope: token.scope,
    };
    if (q.format === 'xoauth2' && mailbox !== undefined) {
      body.xoauth2 = xoauth2(mailbox, token.accessToken);
    } else if (q.format === 'xoauth2') {
      if (!token.account) {
        throw new BrokerError(
          'invalid_request',
          `The account of connection "${q.connection}" is unknown, so no XOAUTH2 string can be built. Consent again with an account that has a user name.`,
          { connectionId: q.connection },
        );
      }
      body.xoauth2 = xoauth2(token.account, token.accessToken);
    }
    return { status: 200, headers: { 'Cache-Control': 'no-store', Pragma: 'no-cache' }, jsonBody: body };
  });

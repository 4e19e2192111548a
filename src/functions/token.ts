import * as z from 'zod';
import { BrokerError } from '../lib/errors.js';
import { parseQuery } from '../lib/http/request.js';
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
});

/** `GET /api/token`: a fresh access token for a connection (DESIGN.md, "HTTP surface"). */
export const tokenHandler = (source: BrokerSource) =>
  adapter(source, async ({ broker, request }) => {
    const q = parseQuery(request.query, query);
    const { caller, token } = await broker.telemetry.vend(q.connection, async () => {
      const caller = await broker.callers(request.headers.get('authorization'), () =>
        broker.connections.get(q.connection),
      );
      const token = await broker.tokens.getAccessToken(q.connection, q.scope?.split(/ +/));
      return { caller, token, served: token.served };
    });
    broker.callerActivity.record(q.connection, caller);
    // The audit trail of who got which connection's token; never the token.
    broker.logger.info('token.vended', {
      connection: q.connection,
      caller: caller.name,
      callerId: caller.id,
      scope: token.scope,
      served: token.served,
    });
    const now = broker.clock.now();
    const body: Record<string, unknown> = {
      access_token: token.accessToken,
      token_type: token.tokenType,
      expires_in: Math.floor((token.expiresAt - now) / 1000),
      expires_on: Math.floor(token.expiresAt / 1000),
      scope: token.scope,
    };
    if (q.format === 'xoauth2') {
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

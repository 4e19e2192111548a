import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import type { Person } from '../lib/auth/person-auth.js';
import type { Broker } from '../lib/broker.js';
import type { ConsentStartOptions, DeviceStart } from '../lib/consent/device-service.js';
import { wantsJson } from '../lib/http/request.js';
import { type DevicePageOptions, deviceStartPage } from '../views/device-page.js';

const NO_STORE = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' };

/** `{userCode, verificationUri, expiresIn, interval, pollUrl}` (docs/design.md `/api/start`, device code). */
function deviceStartJson(started: DeviceStart, publicUrl: string, pollPath: string) {
  const body: Record<string, unknown> = {
    userCode: started.userCode,
    verificationUri: started.verificationUri,
    expiresIn: started.expiresIn,
    interval: started.interval,
    pollUrl: `${publicUrl}${pollPath}`,
  };
  if (started.verificationUriComplete) body.verificationUriComplete = started.verificationUriComplete;
  if (started.message) body.message = started.message;
  return { status: 200, headers: NO_STORE, jsonBody: body };
}

/**
 * Begins consent and answers as `/api/start` does: 302 to the provider's sign-in with the sealed state
 * in a short-lived cookie; for a device-code connection the user code, as a page that polls or as JSON.
 * `/api/start` (GET, or its confirm form's POST) and an invitation's POST both end here.
 */
export async function beginConsent(
  broker: Broker,
  request: HttpRequest,
  connectionId: string,
  person: Person | undefined,
  options: ConsentStartOptions,
  device: Omit<DevicePageOptions, 'expectedAccount'> & {
    pollPath: (connectionId: string, attempt: string) => string;
  },
): Promise<HttpResponseInit> {
  const started = await broker.consent.start(connectionId, person, options);
  if (started.flow === 'device_code') {
    if (wantsJson(request.headers.get('accept'))) {
      const poll = device.pollPath(started.device.connectionId, started.device.attempt);
      return deviceStartJson(started.device, broker.settings.publicUrl, poll);
    }
    return deviceStartPage(started.device, {
      ...device,
      expectedAccount: (await broker.connections.get(connectionId)).expectedAccount,
    });
  }
  const { location, cookie } = started;
  return {
    status: 302,
    headers: { Location: location, ...NO_STORE },
    cookies: [
      {
        name: cookie.name,
        value: cookie.value,
        maxAge: cookie.maxAgeSeconds,
        path: '/api',
        httpOnly: true,
        sameSite: 'Lax',
        secure: broker.settings.publicUrl.startsWith('https:'),
      },
    ],
  };
}

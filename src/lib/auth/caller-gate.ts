import type { Clock } from '../clock.js';
import type { CallerAuthSettings } from '../config/settings.js';
import type { AppIdentity, Caller, CallerPolicy, CallerVerifier, KeySetOptions } from './caller-verifier.js';

export const FUNCTION_KEY_CALLER: Caller = { name: 'function-key' };

/** Who is asking for a connection's token: the host has checked the key, or the caller's Entra token is checked here. */
export interface CallerGate {
  (authorization: string | null, connectionOf: () => CallerPolicy | Promise<CallerPolicy>): Promise<Caller>;
  /** Under `CALLER_AUTH=entra`: a service's app token checked as callers' are (the admin gate's service path). */
  authenticate?: (authorization: string | null) => Promise<AppIdentity>;
}

/**
 * The gate `CALLER_AUTH` asks for. The verifier (and jose with it) is loaded on the first call under
 * `entra` only: with the function key, a cold start does not parse code it never runs.
 */
export function callerGate(
  settings: CallerAuthSettings,
  clock: Clock,
  options: KeySetOptions = {},
): CallerGate {
  if (settings.mode === 'key') return async () => FUNCTION_KEY_CALLER;
  let verifier: Promise<CallerVerifier> | undefined;
  const load = () =>
    (verifier ??= import('./caller-verifier.js').then(
      ({ CallerVerifier }) => new CallerVerifier(settings, clock, options),
    ));
  const gate: CallerGate = async (authorization, connectionOf) =>
    (await load()).verify(authorization, connectionOf);
  gate.authenticate = async (authorization) => (await load()).authenticate(authorization);
  return gate;
}

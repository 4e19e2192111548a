import type { BrokerError, FailureRow } from '../errors.js';
import {
  classifyOAuthError,
  failureError,
  failureLabel,
  type OAuthClassifyContext,
  failureRow as row,
  type TokenEndpointFailure,
} from '../oauth/index.js';

/** The `lastError` tag (and problem `providerError.error`) of a site ACS no longer serves. */
export const ACS_RETIRED_ERROR = 'acs_retired_for_sharepoint_online';

/**
 * SharePoint ACS's table: its error numbers (`ACS50012: …` in `error_description`), which the RFC
 * `error` alone would misread, and the retirement of ACS for SharePoint Online, each → class (hence
 * the HTTP answer), remedy and words; consulted before the RFC 6749 codes of `oauth/classify.ts`.
 */
export const ACS_ERRORS: Readonly<Record<string, FailureRow>> = {
  ACS50001: row('client', 'fix_app_registration', 'a required field of the request is missing'),
  ACS50012: row(
    'client',
    'new_client_secret',
    'ACS could not authenticate the add-in (wrong client id or secret)',
  ),
  [ACS_RETIRED_ERROR]: row(
    'client',
    'fix_app_registration',
    'Azure ACS no longer issues tokens for SharePoint Online (retired 2026-04-02)',
    'acs_retired',
  ),
};

export interface AcsClassifyContext extends Omit<OAuthClassifyContext, 'rule' | 'errorNumber'> {
  /** The site's host, named in the retirement's detail. */
  siteHost: string;
  /** The site is SharePoint Online and the day of retirement has passed: every refusal is that. */
  retired: boolean;
}

/** The ACS number in a description (read for it only; never shown or logged). */
export function acsNumberOf(failure: TokenEndpointFailure): string | undefined {
  return /\bACS\d+/.exec(failure.oauthError?.errorDescription ?? '')?.[0];
}

/** Whether a failure is a refusal (not an outage) after ACS stopped serving the site. */
export function isRetiredRefusal(failure: TokenEndpointFailure, context: AcsClassifyContext): boolean {
  return context.retired && failure.status < 500 && failure.status !== 429;
}

/** Classifies an ACS token endpoint error: the retirement, then ACS's numbers, then RFC 6749. */
export function classifyAcsError(failure: TokenEndpointFailure, context: AcsClassifyContext): BrokerError {
  const errorNumber = acsNumberOf(failure);
  if (isRetiredRefusal(failure, context)) {
    const host = context.siteHost;
    return failureError(
      ACS_ERRORS[ACS_RETIRED_ERROR]!,
      failure,
      context,
      `Azure ACS is retired for SharePoint Online: since 2026-04-02 it no longer issues tokens for ${host} ` +
        `(ACS answered ${failureLabel(failure, errorNumber)}). Move connection ${context.connectionId} to provider "entra" ` +
        `with the scope https://${host.replace(/:\d+$/, '')}/AllSites.Manage and consent once; callers of /api/token change nothing. ` +
        'See docs/sharepoint.md.',
      { error: ACS_RETIRED_ERROR, status: failure.status },
    );
  }
  return classifyOAuthError(failure, {
    ...context,
    errorNumber,
    rule: () => (errorNumber ? ACS_ERRORS[errorNumber] : undefined),
    clientFields: 'clientId, siteUrl, accessControlUrl, redirectUri and credential',
  });
}

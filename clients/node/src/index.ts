export type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
export { BrokerCredential, type BrokerCredentialOptions, type BrokerRetryOptions } from './credential.js';
export { BrokerError, type BrokerErrorCode, type BrokerErrorDetails, type BrokerRemedy } from './errors.js';

// Moved to ../oauth/response.ts and ../oauth/id-token.ts. Kept only for test/e2e/sharepoint-acs.test.ts,
// which is outside this change: point it at src/lib/oauth/index.js and delete this file.
export { decodeJwtClaims } from '../oauth/index.js';

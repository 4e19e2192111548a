/** Bodies the broker answers over HTTP (DESIGN.md, "HTTP surface"), as e2e tests read them. */

/** `GET /api/token`. */
export interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  expires_on: number;
  scope: string;
  xoauth2?: string;
}

/** An `application/problem+json` error body. */
export interface Problem {
  code: string;
  detail: string;
  providerError?: { error: string; aadsts?: number };
}

/** `GET /api/status`, the fields the tests read. */
export interface StatusBody {
  connections: Array<{ id: string; status: string; account: string | null; lastError: string | null }>;
}

/** A request as a stubbed `fetch` saw it; `form` is the body read as `application/x-www-form-urlencoded`. */
export interface SentRequest {
  method: string;
  url: string;
  headers: Headers;
  form: URLSearchParams;
}

/** A `fetch` answering from `route`, recording every request in `sent`. */
export function stubFetch(route: (sent: SentRequest) => Response | Promise<Response>) {
  const sent: SentRequest[] = [];
  const fetchStub = (async (input: string | URL | Request, init?: RequestInit) => {
    const request: SentRequest = {
      method: init?.method ?? 'GET',
      url: String(input),
      headers: new Headers(init?.headers),
      form: new URLSearchParams(typeof init?.body === 'string' ? init.body : ''),
    };
    sent.push(request);
    return route(request);
  }) as typeof fetch;
  return { fetch: fetchStub, sent };
}

/** A JSON `Response` with `status`, `body` and extra `headers`. */
export const jsonResponse = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

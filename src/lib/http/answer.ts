/**
 * An HTTP answer as the broker builds it: plain data that both hosts send (it is a valid
 * `HttpResponseInit` of `@azure/functions`), so the library needs no host types.
 */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

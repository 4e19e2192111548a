import * as z from 'zod';

/** The parsed body, or undefined when it is not JSON: a proxy's HTML page is an answer too. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ACS sends every number as a string ("3599"); anything else that is not a whole count of seconds
// is treated as absent (where optional) rather than failing a response that carries a good token.
export const seconds = z.union([
  z.number().nonnegative().transform(Math.floor),
  z
    .string()
    .regex(/^\d{1,15}$/)
    .transform(Number),
]);
export const optionalSeconds = seconds.optional().catch(undefined);
export const optionalText = z.string().optional().catch(undefined);
export const optionalNonEmpty = z.string().min(1).optional().catch(undefined);

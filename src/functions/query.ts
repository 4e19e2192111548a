import { z } from 'zod';
import { CONNECTION_ID } from '../lib/config/connections.js';

/** The `connection` query parameter every route shares. */
export const connectionParam = z
  .string({ error: 'is required' })
  .regex(CONNECTION_ID, 'must be a connection id (lowercase letters, digits, dashes)');

/** The function key as `?code=`, which pages repeat in their links (the host has checked it). */
export const keyParam = z.string().max(512).optional();

// Moved to ../oauth/device.ts. Kept only for src/lib/consent/device-service.ts, which is outside
// this change: point it at '../oauth/index.js' and delete this file.
export { SLOW_DOWN_STEP_S } from '../oauth/index.js';

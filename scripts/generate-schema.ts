import { writeFileSync } from 'node:fs';
import { connectionsJsonSchema } from '../src/lib/config/json-schema.js';

writeFileSync(new URL('../connections.schema.json', import.meta.url), connectionsJsonSchema());
console.log('wrote connections.schema.json');

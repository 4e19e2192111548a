/** Links the pages put in front of a person: built in one place, `src/lib/links.ts`. */
export { pollPath, startPath } from '../lib/links.js';

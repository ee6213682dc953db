import { prefetchKdf } from './kdf-prefetch.js';
// Before main.js and everything it imports load: the KDF runs on the pool meanwhile.
prefetchKdf(process.argv.slice(2));
const { tsbakMain } = await import('./main.js');
await tsbakMain(process.argv.slice(2));

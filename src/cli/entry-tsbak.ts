import { tsbakMain } from './main.js';
await tsbakMain(process.argv.slice(2));

import { tsbakWriteMain } from './main.js';
await tsbakWriteMain(process.argv.slice(2));

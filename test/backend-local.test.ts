import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LocalBackend } from '../src/backend/local.js';
import { backendContract } from './lib/backend-contract.js';

backendContract(t, async () => new LocalBackend(mkdtempSync(path.join(tmpdir(), 'tsbak-local-'))));

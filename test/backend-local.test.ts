import t from 'tap';
import { LocalBackend } from '../src/backend/local.js';
import { backendContract } from './lib/backend-contract.js';
import { tempDir } from './lib/temp.js';

backendContract(t, async (t) => new LocalBackend(tempDir(t, 'tsbak-local-')));

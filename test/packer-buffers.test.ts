// The packer's input buffers stay within what its SealPool keeps, however many saves the
// walk runs at once: beyond it every batch was a fresh 4 MiB buffer (allocated, zeroed and
// page-faulted on the main thread).
import t from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import { LocalBackend } from '../src/backend/local.js';
import { Packer } from '../src/repo/packer.js';
import { newX25519 } from '../src/crypto/box.js';
import { tempDir } from './lib/temp.js';

function packer(dir: string): Packer {
  return new Packer({
    backend: new LocalBackend(dir),
    repoPub: newX25519().publicKey,
    level: 3,
    packSize: { data: 4 << 20, tree: 1 << 20 },
    storageClass: { data: 'STANDARD', tree: 'STANDARD' },
    workers: 2,
  });
}

const id = (b: Uint8Array) => createHash('sha256').update(b).digest();

t.test('concurrent saves of small and large blobs hold no more input buffers than the pool keeps', async (t) => {
  const dir = tempDir(t, 'tsbak-packer-');
  const p = packer(dir);
  const saves: Array<Promise<unknown>> = [];
  for (let i = 0; i < 400; i++) {
    // small blobs fill batches; every 8th is large (a batch of its own); every 16th goes unhashed
    const size = i % 8 === 7 ? 600 << 10 : 20 << 10;
    const plain = randomBytes(size);
    if (i % 16 === 15) saves.push(p.addUnhashed('data', plain, async (d) => id(d), () => true).then((r) => r.id));
    else saves.push(p.add('data', id(plain), plain));
  }
  await Promise.all(saves);
  await p.flush();
  const { mostOut, kept } = p.inputBuffers;
  t.ok(mostOut > 1, `batches were sealed concurrently (${mostOut} input buffers out at most)`);
  t.ok(mostOut <= kept, `at most ${kept} input buffers out at once (saw ${mostOut})`);
  t.equal(p.blobsWritten, 400);
  await p.close();
});

// The packer's input buffers stay within what its SealPool keeps, however many saves the
// walk runs at once: beyond it every batch was a fresh 4 MiB buffer (allocated, zeroed and
// page-faulted on the main thread).
import t from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import { LocalBackend } from '../src/backend/local.js';
import { Packer } from '../src/repo/packer.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newX25519, openSealed } from '../src/crypto/box.js';
import { openPackHeader, splitPackHeader } from '../src/format/pack.js';
import { openBlob } from '../src/format/blob.js';
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

t.test('a small blob is copied before add() first yields, even when its batch waits for a buffer', async (t) => {
  const dir = tempDir(t, 'tsbak-packer-');
  const pair = newX25519();
  const p = new Packer({
    backend: new LocalBackend(dir),
    repoPub: pair.publicKey,
    level: 3,
    packSize: { data: 4 << 20, tree: 1 << 20 },
    storageClass: { data: 'STANDARD', tree: 'STANDARD' },
    workers: 2,
  });
  // One buffer for every blob, refilled right after each add() call, as the walk's reused
  // read buffer is: a blob copied later would hold the next blob's bytes.
  const shared = Buffer.alloc(200 << 10);
  const want = new Map<string, Buffer>();
  const saves: Array<Promise<unknown>> = [];
  for (let i = 0; i < 300; i++) {
    randomBytes(shared.length).copy(shared);
    const plain = shared.subarray(0, (20 << 10) + ((i * 7919) % (180 << 10)));
    const blobId = id(plain);
    want.set(blobId.toString('hex'), Buffer.from(plain));
    saves.push(p.add('data', blobId, plain));
  }
  await Promise.all(saves);
  await p.flush();
  t.ok(p.inputBuffers.mostOut >= p.inputBuffers.kept, 'some adds found every input buffer out');
  await p.close();
  let seen = 0;
  for (const name of walkFiles(dir)) {
    const pack = readFileSync(name);
    const { sealedKey, encrypted } = splitPackHeader(pack);
    const packKey = openSealed(pair, sealedKey);
    for (const e of openPackHeader(packKey, encrypted)) {
      const plain = openBlob(packKey, e.id, pack.subarray(e.offset, e.offset + e.length));
      const expected = want.get(e.id.toString('hex'));
      if (!expected?.equals(plain)) t.fail(`blob ${e.id.toString('hex').slice(0, 12)} does not hold the bytes it was added with`);
      seen++;
    }
  }
  t.equal(seen, want.size, 'every blob stored once, with its own bytes');
});

function* walkFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walkFiles(p);
    else if (e.isFile() && !e.name.startsWith('.')) yield p;
  }
}

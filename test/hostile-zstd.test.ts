// Decompression bombs from a key holder (a writer key knows the pack and index keys, so it
// can seal anything): zstd data that would make far more than the index says a blob holds,
// or far more than any index file needs, is refused before the bytes are made (the sizes
// its frames declare) or as they come (frames that declare none).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { aeadSeal, AuthError } from '../src/crypto/aead.js';
import { openBlob } from '../src/format/blob.js';
import { zstdCompress, zstdDecompress } from '../src/format/compress.js';
import { openIndex, sealIndexV1, type IndexPack } from '../src/format/index-file.js';

const MiB = 1 << 20;
const zeros = Buffer.alloc(64 * MiB);

/** zstd frames that do not declare their content size (streaming writers make these). */
function undeclared(data: Uint8Array): Buffer {
  const c = new binding.CCtx();
  c.setParameter(binding.CParameter.contentSizeFlag, 0);
  const out = Buffer.alloc(binding.compressBound(data.length));
  return out.subarray(0, c.compress2(out, data));
}

t.test('zstdDecompress: declared sizes over the bound are refused, undeclared ones counted', async (t) => {
  const declared = zstdCompress(zeros, 1);
  t.ok(declared.length < 64 * 1024, `64 MiB of zeros in ${declared.length} bytes`);
  t.equal(binding.getFrameContentSize(declared), zeros.length, 'the frame declares its size');
  t.throws(() => zstdDecompress(declared, MiB), /declares more than 1048576 bytes/);
  t.equal(zstdDecompress(declared, zeros.length).length, zeros.length, 'within the bound it decompresses');

  const streamed = undeclared(zeros);
  t.equal(binding.getFrameContentSize(streamed), null, 'this frame declares nothing');
  t.throws(() => zstdDecompress(streamed, MiB), /holds more than 1048576 bytes/);
  t.same(zstdDecompress(streamed, zeros.length), zeros, 'within the bound it decompresses, counted');

  const one = zstdCompress(Buffer.alloc(MiB, 7), 1);
  t.throws(() => zstdDecompress(Buffer.concat([one, one]), MiB + MiB / 2), /declares more/, 'the frames of one body are summed');
  t.same(zstdDecompress(Buffer.concat([one, one]), 2 * MiB), Buffer.alloc(2 * MiB, 7));
  t.throws(() => zstdDecompress(streamed.subarray(0, streamed.length - 3), zeros.length), /truncated/, 'truncated data is refused');
});

t.test('openBlob: a blob whose zstd body would pass its indexed length fails as damage', async (t) => {
  const key = randomBytes(32);
  const id = randomBytes(32);
  for (const body of [zstdCompress(zeros, 1), undeclared(zeros)]) {
    const sealed = aeadSeal(key, Buffer.concat([Buffer.of(1), body]), id);
    t.throws(() => openBlob(key, id, sealed, 4096), new AuthError(), 'refused at the length the index gives');
    t.equal(openBlob(key, id, sealed, zeros.length).length, zeros.length, 'opened at its true length (the id check is the caller\'s)');
  }
});

t.test('openIndex: an index file that expands past any honest ratio is refused; an honest one opens', async (t) => {
  const indexKey = randomBytes(32);
  const entry = { id: Buffer.alloc(32, 1), offset: 0, length: 100, rawLength: 90 };
  const pack = (blobs: IndexPack['blobs']): IndexPack => ({ id: randomBytes(32), kind: 'data', sealedKey: randomBytes(80), blobs });
  // 200k identical entries: 8.8 MB of index in a few kB of zstd.
  const bomb = sealIndexV1(indexKey, [pack(Array.from({ length: 200_000 }, () => entry))]);
  t.ok(bomb.length < 100_000, `${bomb.length} bytes sealed`);
  t.throws(() => openIndex(indexKey, bomb), /declares more/);
  const honest = Array.from({ length: 50_000 }, (_, i) => ({ id: randomBytes(32), offset: i * 100, length: 100, rawLength: 90 + (i % 7) }));
  t.equal(openIndex(indexKey, sealIndexV1(indexKey, [pack(honest)])).packs[0]!.blobs.length, 50_000);
});

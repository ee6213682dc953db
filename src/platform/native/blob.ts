// The blob envelope (docs/FORMAT.md "Blob") in C (native/blob.c): batches of blobs sealed
// and opened at once or on libuv's thread pool, a large blob opened straight into a file,
// a blob's id hashed on the pool. src/format/blob.ts is the reference; native.test.ts checks
// that both agree.
import { getSystemErrorMap } from 'node:util';
import { addon } from './addon.js';

type OpenBlobsArgs = [sealed: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, keyOf: Uint16Array, keys: Uint8Array, ids: Uint8Array, macKey: Uint8Array, rawLengths: Uint32Array, out: Uint8Array, outOffsets: Uint32Array, ok: Uint8Array];
type SealBlobsArgs = [key: Uint8Array, params: Int32Array, data: Uint8Array, ids: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, out: Uint8Array, outLengths: Uint32Array];

interface Blob {
  openBlobs(...a: OpenBlobsArgs): void;
  openBlobsAsync(...a: OpenBlobsArgs): Promise<void>;
  sealBlobs(...a: SealBlobsArgs): void;
  sealBlobsAsync(...a: SealBlobsArgs): Promise<void>;
  openBlobToFileAsync(sealed: Uint8Array, key: Uint8Array, id: Uint8Array, macKey: Uint8Array, where: Float64Array, res: Int32Array): Promise<void>;
  blobIdAsync(macKey: Uint8Array, data: Uint8Array, out: Uint8Array): Promise<void>;
  blobId(macKey: Uint8Array, data: Uint8Array, out: Uint8Array): void;
}

const native = (): Blob => addon<Blob>();

/** Sealed blobs to open at once (openBlobs): blob i is bytes [offsets[i], +lengths[i]) of sealed, under keys[keyOf[i]]. */
export interface SealedBlobs {
  sealed: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  keyOf: Uint16Array;
  keys: Uint8Array[];
  /** 32 bytes per blob */
  ids: Uint8Array;
  macKey: Uint8Array;
  /** Plaintext length of each blob, from the index. */
  rawLengths: Uint32Array;
}

function openArgs(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array, ok: Uint8Array): OpenBlobsArgs {
  const keys = b.keys.length === 1 ? b.keys[0]! : Buffer.concat(b.keys);
  return [b.sealed, b.offsets, b.lengths, b.keyOf, keys, b.ids, b.macKey, b.rawLengths, out, outOffsets, ok];
}

/**
 * Opens many blobs in one synchronous call (native/blob.c; docs/FORMAT.md "Blob"): blob i's
 * plaintext goes to out at outOffsets[i], and ok[i] says whether it opened and matched its id.
 */
export function openBlobs(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array): Uint8Array {
  const ok = new Uint8Array(b.offsets.length);
  native().openBlobs(...openArgs(b, out, outOffsets, ok));
  return ok;
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function openBlobsAsync(b: SealedBlobs, out: Uint8Array, outOffsets: Uint32Array): Promise<Uint8Array> {
  const ok = new Uint8Array(b.offsets.length);
  await native().openBlobsAsync(...openArgs(b, out, outOffsets, ok));
  return ok;
}

/** openBlobNative's arguments, made once. */
const oneBlob = { offsets: new Uint32Array(1), lengths: new Uint32Array(1), keyOf: new Uint16Array(1), rawLengths: new Uint32Array(1), ok: new Uint8Array(1) };

/** Where a blob's plaintext goes: the start of `into` (the caller's, reused) when it is large enough, else a new buffer. */
function plainOut(rawLength: number, into?: Buffer): Buffer {
  return into && into.length >= rawLength ? into.subarray(0, rawLength) : Buffer.allocUnsafeSlow(rawLength);
}

/**
 * One blob through openBlobs: its plaintext, or null when it did not open or match its id
 * (the caller then opens it in TypeScript, which says why).
 */
export function openBlobNative(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, rawLength: number, into?: Buffer): Buffer | null {
  const out = plainOut(rawLength, into);
  oneBlob.lengths[0] = sealed.length;
  oneBlob.rawLengths[0] = rawLength;
  native().openBlobs(sealed, oneBlob.offsets, oneBlob.lengths, oneBlob.keyOf, key, id, macKey, oneBlob.rawLengths, out, oneBlob.offsets, oneBlob.ok);
  return oneBlob.ok[0] ? out : null;
}

/**
 * openBlobNative on libuv's thread pool: the plaintext, or null when it did not open or
 * match its id. `sealed` must not change until this settles.
 */
export async function openBlobNativeAsync(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, rawLength: number, into?: Buffer): Promise<Buffer | null> {
  const out = plainOut(rawLength, into);
  const ok = new Uint8Array(1);
  const zero = new Uint32Array(1);
  await native().openBlobsAsync(sealed, zero, Uint32Array.of(sealed.length), new Uint16Array(1), key, id, macKey, Uint32Array.of(rawLength), out, zero, ok);
  return ok[0] ? out : null;
}

/**
 * Opens one large blob on libuv's thread pool and writes its plaintext (rawLength bytes) at
 * `pos` of the open file `fd` from there: no plaintext buffer on this thread (a compressed
 * blob's is malloc'd there and freed at once). `sealed` is decrypted in place: it must be
 * the caller's own copy, not touched until this settles, and is garbage after. Resolves to
 * the bytes written; 'auth' when the blob does not open (damaged), 'id' when its plaintext
 * does not match the id (nothing is written then). A failed write rejects with a
 * Node-style error (code, errno, syscall 'write').
 */
export async function openBlobToFileAsync(key: Uint8Array, macKey: Uint8Array, id: Uint8Array, sealed: Uint8Array, rawLength: number, fd: number, pos: number): Promise<number | 'auth' | 'id'> {
  const res = new Int32Array(2);
  await native().openBlobToFileAsync(sealed, key, id, macKey, Float64Array.of(fd, pos, rawLength), res);
  switch (res[0]) {
    case 1:
      return rawLength;
    case 2:
      return 'id';
    case -1:
      throw errnoError(res[1]!, 'write');
    default:
      return 'auth';
  }
}

/**
 * A blob's id, HMAC-SHA256(macKey, data), on the calling thread: for small blobs, where
 * node's createHmac costs more in setting up a keyed context than in hashing (the addon
 * keeps the key's padded SHA-256 states between calls).
 */
export function blobIdNative(macKey: Uint8Array, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(32);
  native().blobId(macKey, data, out);
  return out;
}

/**
 * A blob's id, HMAC-SHA256(macKey, data), computed on libuv's thread pool without copying
 * `data` (which must not change until this settles).
 */
export async function blobIdNativeAsync(macKey: Uint8Array, data: Uint8Array): Promise<Buffer> {
  const out = Buffer.allocUnsafe(32);
  await native().blobIdAsync(macKey, data, out);
  return out;
}

/** An errno as Node's fs words it: code "ENOSPC", message "ENOSPC: no space left on device, write". */
function errnoError(errno: number, syscall: string): NodeJS.ErrnoException {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`errno ${errno}`, 'unknown error'];
  return Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, errno: -errno, syscall });
}

/** Blobs to seal (sealBlobs): blob i is bytes [offsets[i], +lengths[i]) of data, with id ids[i] (32 bytes each). */
export interface PlainBlobs {
  key: Uint8Array;
  level: number;
  data: Uint8Array;
  ids: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
}

function sealArgs(b: PlainBlobs, out: Uint8Array, outLengths: Uint32Array): SealBlobsArgs {
  return [b.key, Int32Array.of(b.level), b.data, b.ids, b.offsets, b.lengths, out, outLengths];
}

/**
 * Seals blobs as sealBlob does (docs/FORMAT.md "Blob"), one after the other into out (room
 * for the sum of sealedBound(length) needed); returns each one's sealed length.
 */
export function sealBlobs(b: PlainBlobs, out: Uint8Array): Uint32Array {
  const outLengths = new Uint32Array(b.offsets.length);
  native().sealBlobs(...sealArgs(b, out, outLengths));
  return outLengths;
}

/** The same on libuv's thread pool: nothing passed in may be touched until it settles. */
export async function sealBlobsAsync(b: PlainBlobs, out: Uint8Array): Promise<Uint32Array> {
  const outLengths = new Uint32Array(b.offsets.length);
  await native().sealBlobsAsync(...sealArgs(b, out, outLengths));
  return outLengths;
}

/** Most bytes sealBlobs writes for a blob of n bytes: src/format/blob.ts sealedBound (platform imports nothing of ours). */
function sealedBound(n: number): number {
  return n + 29;
}

/** sealBlobNative's arguments, made once. */
const oneSeal = { params: new Int32Array(1), offsets: new Uint32Array(1), lengths: new Uint32Array(1), outLengths: new Uint32Array(1) };

/**
 * One blob through sealBlobs, on this thread: the sealed bytes. A tree costs a few µs here,
 * ~40 µs of cipher and zstd objects in TypeScript.
 */
export function sealBlobNative(key: Uint8Array, id: Uint8Array, plain: Uint8Array, level: number): Buffer {
  const out = Buffer.allocUnsafe(sealedBound(plain.length));
  oneSeal.params[0] = level;
  oneSeal.lengths[0] = plain.length;
  native().sealBlobs(key, oneSeal.params, plain, id, oneSeal.offsets, oneSeal.lengths, out, oneSeal.outLengths);
  return out.subarray(0, oneSeal.outLengths[0]);
}

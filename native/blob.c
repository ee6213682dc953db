/*
 * The blob envelope (docs/FORMAT.md "Blob", the same as src/format/blob.ts) in C, for batches:
 * in JavaScript a small blob costs more in per-call overhead (a cipher object, an HMAC
 * object, a zstd call) than in work on its bytes. Each call has a synchronous form and an
 * async one (...Async: the same arguments, the work on libuv's thread pool, a
 * Promise<void>; the arguments must not be touched until it settles).
 *
 *   openBlobs(sealed, offsets, lengths, keyOf, keys, ids, macKey, rawLengths, out, outOffsets, ok)
 *       Opens blob i (bytes [offsets[i], +lengths[i]) of sealed, under key keyOf[i] of keys)
 *       into out at outOffsets[i], and sets ok[i] = 1 when it opened and its plaintext
 *       (rawLengths[i] bytes) matches ids[i]; 0 otherwise: nonce(12) || AES-256-GCM(flag ||
 *       [u32 pad] || body || [pad zeros], aad = id) || tag(16); flag bit 1 zstd, bit 2
 *       padded; id = HMAC-SHA256(macKey, plaintext).
 *       Nothing is decompressed before the tag checks. A blob that fails here is opened
 *       again by the TypeScript code, which reports the damage.
 *
 *   sealBlobs(key, params, data, ids, offsets, lengths, out, outLengths)
 *       Seals blob i (bytes [offsets[i], +lengths[i]) of data, id ids[i]) under key, at
 *       compression level params[0], into out one after the other, and sets outLengths[i]:
 *       zstd when at least 64 bytes long and the frame saves 3%, a random nonce each,
 *       unpadded (flag 0 or 1). out must hold the sum of sealed_bound(lengths[i]).
 *
 *   openBlobToFileAsync(sealed, key, id, macKey, where, res)
 *       Opens one blob (under key, id 32 bytes) and writes its plaintext (where[2] bytes) at
 *       offset where[1] of file descriptor where[0]: no plaintext buffer in JavaScript.
 *       sealed is decrypted in place (its bytes are garbage after). res (Int32Array(2)): see
 *       run_to_file. Async only.
 *
 *   blobIdAsync(macKey, data, out)
 *       A blob's id, HMAC-SHA256(macKey, data), into out (32 bytes), on the pool: the backup
 *       hashes large chunks there, in the buffer they were copied to for sealing.
 *
 * blob_id (for scan.c's readSmallFiles) computes a blob id on the thread that read the bytes.
 *
 * OpenSSL is node's own (its symbols are exported by the node binary, its headers ship with
 * node's); zstd is the system's libzstd. Cipher, zstd and scratch state is per thread (the
 * scratch buffer only for opening: sealing compresses straight into its output).
 */
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
/* For ZSTD_initStaticCCtx and ZSTD_estimateCCtxSize (exported by the shared libzstd). */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "napi-util.h"
#include "pool-work.h"
#include "restore.h"
#include "blob.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32
#define ID_LEN 32

/* Per-thread state, kept between calls: each thread of the pool (or worker) has its own. */
static __thread EVP_CIPHER_CTX *gcm;
static __thread EVP_CIPHER_CTX *gcm_seal;
static __thread ZSTD_DCtx *dctx;
static __thread ZSTD_CCtx *cctx;
/* Sealing's zstd context in a workspace of its own, sized once for any input at the level
 * (and at level 1, the probe's). zstd frees the workspace of an ordinary context that has
 * been much larger than needed for ~128 calls (small blobs after large ones, the probe's
 * 2 KiB slices) and allocates it again for the next large blob: with bin/tsbak-write's
 * 256 KiB malloc threshold an mmap whose tables zstd then memsets page by page. That
 * memset was ~22% of a source tree's first backup's page faults. */
static __thread ZSTD_CCtx *cctx_fixed;
static __thread void *cctx_ws;
static __thread size_t cctx_ws_len;
/* Levels whose workspace is larger (9 and up) use an ordinary context. */
#define FIXED_WORKSPACE_MAX (8u << 20)
static __thread uint8_t *scratch;
static __thread size_t scratch_len;

/* The thread's AES-256-GCM context for opening (enc 0) or sealing (enc 1), made once; NULL when it cannot be. */
static EVP_CIPHER_CTX *gcm_ctx(EVP_CIPHER_CTX **slot, int enc) {
  if (!*slot) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1) {
      EVP_CIPHER_CTX_free(c);
      return NULL;
    }
    *slot = c;
  }
  return *slot;
}

/* The per-thread scratch buffer, at least n bytes; NULL when memory runs out. */
static uint8_t *scratch_of(size_t n) {
  if (scratch_len < n) {
    size_t want = n < (256u << 10) ? (256u << 10) : n;
    uint8_t *p = realloc(scratch, want);
    if (!p) return NULL;
    scratch = p;
    scratch_len = want;
  }
  return scratch;
}

/* HMAC-SHA256 with SHA-256 contexts that have absorbed the padded key (RFC 2104). */
struct hmac {
  EVP_MD_CTX *inner, *outer, *work;
};

static int hmac_init(struct hmac *h, const uint8_t *key, size_t key_len) {
  uint8_t ipad[64], opad[64];
  memset(ipad, 0x36, sizeof ipad);
  memset(opad, 0x5c, sizeof opad);
  if (key_len > 64) return -1;
  for (size_t i = 0; i < key_len; i++) {
    ipad[i] ^= key[i];
    opad[i] ^= key[i];
  }
  h->inner = EVP_MD_CTX_new();
  h->outer = EVP_MD_CTX_new();
  h->work = EVP_MD_CTX_new();
  if (!h->inner || !h->outer || !h->work) return -1;
  if (EVP_DigestInit_ex(h->inner, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(h->inner, ipad, 64) != 1) return -1;
  if (EVP_DigestInit_ex(h->outer, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(h->outer, opad, 64) != 1) return -1;
  return 0;
}

static void hmac_free(struct hmac *h) {
  EVP_MD_CTX_free(h->inner);
  EVP_MD_CTX_free(h->outer);
  EVP_MD_CTX_free(h->work);
}

static int hmac_equals(struct hmac *h, const uint8_t *data, size_t len, const uint8_t *expect) {
  uint8_t md[32];
  unsigned int n;
  if (EVP_MD_CTX_copy_ex(h->work, h->inner) != 1 || EVP_DigestUpdate(h->work, data, len) != 1 ||
      EVP_DigestFinal_ex(h->work, md, &n) != 1)
    return 0;
  if (EVP_MD_CTX_copy_ex(h->work, h->outer) != 1 || EVP_DigestUpdate(h->work, md, 32) != 1 ||
      EVP_DigestFinal_ex(h->work, md, &n) != 1)
    return 0;
  return memcmp(md, expect, ID_LEN) == 0;
}

/* A per-thread HMAC state for blob_id and openBlobToFile, keyed by the last MAC key it was given. */
static __thread struct hmac id_hmac;
static __thread uint8_t id_key[ID_LEN];
static __thread int id_ready;

/* The thread's HMAC state keyed with mac_key (ID_LEN bytes); NULL on failure. */
static struct hmac *thread_hmac(const uint8_t *mac_key) {
  if (!id_ready || memcmp(id_key, mac_key, ID_LEN) != 0) {
    hmac_free(&id_hmac);
    memset(&id_hmac, 0, sizeof id_hmac);
    id_ready = 0;
    if (hmac_init(&id_hmac, mac_key, ID_LEN)) return NULL;
    memcpy(id_key, mac_key, ID_LEN);
    id_ready = 1;
  }
  return &id_hmac;
}

/* Ends an HMAC whose data went into h->work (started from h->inner) into out (32 bytes). */
static int hmac_finish(struct hmac *h, uint8_t *out) {
  uint8_t md[32];
  unsigned int n;
  return EVP_DigestFinal_ex(h->work, md, &n) == 1 && EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 &&
                 EVP_DigestUpdate(h->work, md, 32) == 1 && EVP_DigestFinal_ex(h->work, out, &n) == 1
             ? 0
             : -1;
}

int blob_id(const uint8_t *mac_key, const uint8_t *data, size_t len, uint8_t *out) {
  struct hmac *h = thread_hmac(mac_key);
  if (!h || EVP_MD_CTX_copy_ex(h->work, h->inner) != 1 || EVP_DigestUpdate(h->work, data, len) != 1) return -1;
  return hmac_finish(h, out);
}

/* Flag bits of the blob envelope (docs/FORMAT.md "Blobs"): zstd body; padded (a u32 pad
 * length after the flag, that many zero bytes after the body). */
#define FLAG_ZSTD 1
#define FLAG_PADDED 2
/* Sealed bytes around an unpadded body, as writers write it: nonce, flag, tag. */
#define ENVELOPE (NONCE_LEN + 1 + TAG_LEN)

/* Most bytes a sealed blob of n plaintext bytes takes (src/format/blob.ts sealedBound): the
 * body is zstd only when that is smaller. */
static uint64_t sealed_bound(uint64_t n) { return n + ENVELOPE; }

/* Decrypts n bytes of ciphertext at s for nothing but the tag (a padded blob's zeros), in
 * slices through a small buffer when the ciphertext may not be overwritten. */
static int decrypt_discard(const uint8_t *s, size_t n, int in_place) {
  uint8_t sink[4096];
  int l;
  while (n) {
    size_t k = in_place ? n : n < sizeof sink ? n : sizeof sink;
    if (k > INT32_MAX) k = INT32_MAX;
    if (EVP_DecryptUpdate(gcm, in_place ? (uint8_t *)s : sink, &l, s, (int)k) != 1 || (size_t)l != k) return -1;
    s += k;
    n -= k;
  }
  return 0;
}

/* Decrypts and authenticates one sealed blob of raw plaintext bytes: its flag and body, the
 * body decrypted into raw_dst when that is given and the blob is stored raw, else over its
 * ciphertext when in_place, else into the thread's scratch buffer. NULL when it does not
 * open (or memory runs out). *flag says FLAG_ZSTD or not. */
static uint8_t *unseal(const uint8_t *key, const uint8_t *id, const uint8_t *s, size_t n, uint8_t *raw_dst, size_t raw,
                       int in_place, uint8_t *flag, size_t *body_len) {
  int l;
  if (n < NONCE_LEN + TAG_LEN + 1) return NULL;
  size_t at = NONCE_LEN + 1;
  size_t body = n - NONCE_LEN - TAG_LEN - 1, pad = 0;
  if (body > INT32_MAX) return NULL;
  if (EVP_DecryptInit_ex(gcm, NULL, NULL, key, s) != 1) return NULL;
  if (EVP_DecryptUpdate(gcm, NULL, &l, id, ID_LEN) != 1) return NULL;
  if (EVP_DecryptUpdate(gcm, flag, &l, s + NONCE_LEN, 1) != 1 || l != 1) return NULL;
  if (*flag > (FLAG_ZSTD | FLAG_PADDED)) return NULL;
  if (*flag & FLAG_PADDED) {
    uint8_t p[4];
    if (body < 4 || EVP_DecryptUpdate(gcm, p, &l, s + at, 4) != 1 || l != 4) return NULL;
    pad = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (pad > body - 4) return NULL;
    at += 4;
    body -= 4 + pad;
    *flag &= FLAG_ZSTD;
  }
  uint8_t *dst;
  if (*flag == 0) {
    if (body != raw) return NULL;
    dst = raw_dst;
  } else {
    dst = NULL;
  }
  if (!dst) dst = in_place ? (uint8_t *)s + at : scratch_of(body);
  if (!dst) return NULL;
  if (body && (EVP_DecryptUpdate(gcm, dst, &l, s + at, (int)body) != 1 || (size_t)l != body)) return NULL;
  if (pad && decrypt_discard(s + at + body, pad, in_place)) return NULL;
  if (EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(s + n - TAG_LEN)) != 1) return NULL;
  uint8_t fin[16];
  if (EVP_DecryptFinal_ex(gcm, fin, &l) != 1) return NULL;
  *body_len = body;
  return dst;
}

/* Opens one sealed blob into out (raw bytes exactly); 1 when it opened, 0 when not. */
static int open_one(const uint8_t *key, const uint8_t *id, const uint8_t *s, size_t n, uint8_t *out,
                    size_t raw) {
  uint8_t flag;
  size_t body;
  uint8_t *b = unseal(key, id, s, n, out, raw, 0, &flag, &body);
  if (!b) return 0;
  if (flag == 1) {
    size_t got = ZSTD_decompressDCtx(dctx, out, raw, b, body);
    if (ZSTD_isError(got) || got != raw) return 0;
  }
  return 1;
}

/* openBlobs' arguments, checked. */
struct open_job {
  struct pool_job base;
  uint8_t *sealed, *keys, *ids, *mac, *out, *ok;
  uint32_t *offsets, *lengths, *raw, *out_off;
  uint16_t *key_of;
  size_t sealed_len, n, keys_len, out_len;
};

static int parse_open(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct open_job *j = (struct open_job *)pj;
  size_t t, ids_len, mac_len;
  return get_ta(env, argv[0], napi_uint8_array, "sealed: a Uint8Array", 0, (void **)&j->sealed, &j->sealed_len) ||
         get_ta(env, argv[1], napi_uint32_array, "offsets: a Uint32Array", 0, (void **)&j->offsets, &j->n) ||
         get_ta(env, argv[2], napi_uint32_array, "lengths: a Uint32Array per blob", j->n, (void **)&j->lengths, &t) ||
         get_ta(env, argv[3], napi_uint16_array, "keyOf: a Uint16Array per blob", j->n, (void **)&j->key_of, &t) ||
         get_ta(env, argv[4], napi_uint8_array, "keys: a Uint8Array", 0, (void **)&j->keys, &j->keys_len) ||
         get_ta(env, argv[5], napi_uint8_array, "ids: 32 bytes per blob", j->n * ID_LEN, (void **)&j->ids, &ids_len) ||
         get_ta(env, argv[6], napi_uint8_array, "macKey: 32 bytes", 32, (void **)&j->mac, &mac_len) ||
         get_ta(env, argv[7], napi_uint32_array, "rawLengths: a Uint32Array per blob", j->n, (void **)&j->raw, &t) ||
         get_ta(env, argv[8], napi_uint8_array, "out: a Uint8Array", 0, (void **)&j->out, &j->out_len) ||
         get_ta(env, argv[9], napi_uint32_array, "outOffsets: a Uint32Array per blob", j->n, (void **)&j->out_off, &t) ||
         get_ta(env, argv[10], napi_uint8_array, "ok: a Uint8Array per blob", j->n, (void **)&j->ok, &t);
}

/* The thread's state for opening blobs (cipher, zstd, HMAC keyed with mac); NULL with *failure set when it cannot be made. */
static struct hmac *open_state(const uint8_t *mac, const char **failure) {
  if (!gcm_ctx(&gcm, 0)) {
    *failure = "cannot set up AES-256-GCM to open blobs";
    return NULL;
  }
  if (!dctx && !(dctx = ZSTD_createDCtx())) {
    *failure = "cannot set up zstd to open blobs";
    return NULL;
  }
  struct hmac *h = thread_hmac(mac);
  if (!h) *failure = "cannot set up HMAC-SHA256 to open blobs";
  return h;
}

static void run_open(struct pool_job *pj) {
  struct open_job *j = (struct open_job *)pj;
  memset(j->ok, 0, j->n);
  struct hmac *h = open_state(j->mac, &j->base.failure);
  if (!h) return;
  for (size_t i = 0; i < j->n; i++) {
    if ((uint64_t)j->offsets[i] + j->lengths[i] > j->sealed_len || (uint64_t)j->out_off[i] + j->raw[i] > j->out_len ||
        ((size_t)j->key_of[i] + 1) * KEY_LEN > j->keys_len)
      continue;
    const uint8_t *id = j->ids + i * ID_LEN;
    uint8_t *out = j->out + j->out_off[i];
    if (open_one(j->keys + (size_t)j->key_of[i] * KEY_LEN, id, j->sealed + j->offsets[i], j->lengths[i], out, j->raw[i]) &&
        hmac_equals(h, out, j->raw[i], id))
      j->ok[i] = 1;
  }
}

/* ---- sealing ------------------------------------------------------------------------------ */

struct seal_job {
  struct pool_job base;
  uint8_t *key, *data, *ids, *out;
  int32_t *params;
  uint32_t *offsets, *lengths, *out_lengths;
  size_t n, data_len, out_len;
};

static int parse_seal(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct seal_job *j = (struct seal_job *)pj;
  size_t t;
  return get_ta(env, argv[0], napi_uint8_array, "key: 32 bytes", KEY_LEN, (void **)&j->key, &t) ||
         get_ta(env, argv[1], napi_int32_array, "params: an Int32Array [level]", 1, (void **)&j->params, &t) ||
         get_ta(env, argv[2], napi_uint8_array, "data: a Uint8Array", 0, (void **)&j->data, &j->data_len) ||
         get_ta(env, argv[4], napi_uint32_array, "offsets: a Uint32Array", 0, (void **)&j->offsets, &j->n) ||
         get_ta(env, argv[3], napi_uint8_array, "ids: 32 bytes per blob", j->n * ID_LEN, (void **)&j->ids, &t) ||
         get_ta(env, argv[5], napi_uint32_array, "lengths: a Uint32Array per blob", j->n, (void **)&j->lengths, &t) ||
         get_ta(env, argv[6], napi_uint8_array, "out: a Uint8Array", 0, (void **)&j->out, &j->out_len) ||
         get_ta(env, argv[7], napi_uint32_array, "outLengths: a Uint32Array per blob", j->n, (void **)&j->out_lengths, &t);
}

/* Incompressible data (photos, video, archives: most of the bytes of a personal backup)
 * costs zstd a whole pass for nothing: ~0.55 s of CPU per GiB here, a sixth of what such
 * data costs the backup in all. So a large blob is sampled first: PROBE_SAMPLES slices of
 * PROBE_BYTES, its first and last ones and one from the middle of each of PROBE_SAMPLES - 2
 * equal parts (a chunk that spans a change of content, random then text, has the other
 * kind at an edge). Each is compressed alone at level 1, then all side by side (which
 * sees redundancy between them: zeros, repeated blocks). Only when no slice shrinks by 1%
 * and the whole sample not by 2% is the blob taken for incompressible and stored raw.
 * Sampled in Node, this stored nothing raw that zstd would have shrunk by 3%, neither on
 * the benchmark's mixed file (1 GiB, three chunkings) nor on the corpus's files of 256 KiB
 * or more (1 MiB pieces; 41 of 394 stored raw unsampled). One side-by-side test alone lost
 * 0.2-0.4% on the mixed file, the text at a chunk's edge drowned among random slices; 3%
 * for a slice lost 0.2% on the corpus (barely compressible binaries). What it can still
 * miss: a compressible stretch that no slice falls in, in otherwise random bytes. */
#define PROBE_MIN_LEN (256 * 1024)
#define PROBE_SAMPLES 18
#define PROBE_BYTES 2048

/* The thread's context for sealing at level (NULL when none can be made). */
static ZSTD_CCtx *cctx_for(int level) {
  size_t need = ZSTD_estimateCCtxSize(level), probe = ZSTD_estimateCCtxSize(1);
  if (need < probe) need = probe;
  if (need <= FIXED_WORKSPACE_MAX) {
    if (cctx_ws_len < need) {
      void *ws = malloc(need);
      ZSTD_CCtx *c = ws ? ZSTD_initStaticCCtx(ws, need) : NULL;
      if (c) {
        free(cctx_ws);
        cctx_ws = ws;
        cctx_ws_len = need;
        cctx_fixed = c;
      } else {
        free(ws);
      }
    }
    if (cctx_fixed && cctx_ws_len >= need) return cctx_fixed;
  }
  if (!cctx) cctx = ZSTD_createCCtx();
  return cctx;
}

/* 1 if the sample does not compress; scratch: room for 2 * PROBE_SAMPLES * PROBE_BYTES
 * (the blob's output buffer, overwritten afterwards). */
static int looks_incompressible(ZSTD_CCtx *z, const uint8_t *src, size_t len, uint8_t *scratch) {
  const size_t n = PROBE_SAMPLES * PROBE_BYTES;
  const size_t part = len / (PROBE_SAMPLES - 2);
  uint8_t *out = scratch + n;
  for (size_t i = 0; i < PROBE_SAMPLES; i++) {
    /* slice 0: the first bytes; 1: the last; 2..: the middle of part i - 2 */
    size_t at = i == 0 ? 0 : i == 1 ? len - PROBE_BYTES : (i - 2) * part + (part - PROBE_BYTES) / 2;
    const uint8_t *slice = src + at;
    memcpy(scratch + i * PROBE_BYTES, slice, PROBE_BYTES);
    size_t c = ZSTD_compressCCtx(z, out, PROBE_BYTES, slice, PROBE_BYTES, 1);
    if (!ZSTD_isError(c) && (double)c < PROBE_BYTES * 0.99) return 0;
  }
  size_t c = ZSTD_compressCCtx(z, out, n, scratch, n, 1);
  return ZSTD_isError(c) || (double)c >= n * 0.98;
}

/* Seals one blob into out (room for sealed_bound(len) bytes); its sealed length, or 0 on
 * failure. zstd writes straight into out, after the nonce, flag and pad length, and AES-GCM
 * encrypts there in place: no per-thread scratch buffer (up to a whole chunk per pool
 * thread) and one pass over the bytes less. Data that does not shrink by 3% (or that the
 * probe above finds incompressible) is encrypted from src instead. Blobs are written
 * unpadded (see src/format/blob.ts). */
static size_t seal_one(ZSTD_CCtx *z, const uint8_t *key, const uint8_t *id, const uint8_t *src, size_t len, int level, uint8_t *out) {
  uint8_t *body = out + NONCE_LEN + 1;
  const uint8_t *plain = src;
  size_t blen = len;
  uint8_t flag = 0;
  int l;
  if (level > 0 && len >= 64 && !(len >= PROBE_MIN_LEN && looks_incompressible(z, src, len, body))) {
    size_t c = ZSTD_compressCCtx(z, body, len, src, len, level);
    if (!ZSTD_isError(c) && (double)c < (double)len * 0.97) {
      plain = body;
      blen = c;
      flag |= FLAG_ZSTD;
    }
  }
  if (blen > INT32_MAX || RAND_bytes(out, NONCE_LEN) != 1) return 0;
  if (EVP_EncryptInit_ex(gcm_seal, NULL, NULL, key, out) != 1 || EVP_EncryptUpdate(gcm_seal, NULL, &l, id, ID_LEN) != 1 ||
      EVP_EncryptUpdate(gcm_seal, out + NONCE_LEN, &l, &flag, 1) != 1 || l != 1)
    return 0;
  if (blen && (EVP_EncryptUpdate(gcm_seal, body, &l, plain, (int)blen) != 1 || (size_t)l != blen)) return 0;
  uint8_t fin[16];
  if (EVP_EncryptFinal_ex(gcm_seal, fin, &l) != 1 || l != 0 ||
      EVP_CIPHER_CTX_ctrl(gcm_seal, EVP_CTRL_GCM_GET_TAG, TAG_LEN, body + blen) != 1)
    return 0;
  return ENVELOPE + blen;
}

static void run_seal(struct pool_job *pj) {
  struct seal_job *j = (struct seal_job *)pj;
  if (!gcm_ctx(&gcm_seal, 1)) {
    j->base.failure = "sealBlobs: cannot set up AES-256-GCM";
    return;
  }
  ZSTD_CCtx *z = cctx_for(j->params[0]);
  if (!z) {
    j->base.failure = "sealBlobs: cannot set up zstd";
    return;
  }
  size_t o = 0;
  for (size_t i = 0; i < j->n; i++) {
    if ((uint64_t)j->offsets[i] + j->lengths[i] > j->data_len || o + sealed_bound(j->lengths[i]) > j->out_len) {
      j->base.failure = "sealBlobs: a blob or its output is out of bounds";
      return;
    }
    size_t n = seal_one(z, j->key, j->ids + i * ID_LEN, j->data + j->offsets[i], j->lengths[i], j->params[0], j->out + o);
    if (!n) {
      j->base.failure = "sealBlobs: sealing failed (out of memory, or no randomness)";
      return;
    }
    j->out_lengths[i] = (uint32_t)n;
    o += n;
  }
}

/* ---- opening into a file (a restore's large blobs) ------------------------------------------ */

struct to_file_job {
  struct pool_job base;
  uint8_t *sealed, *key, *id, *mac;
  double *where;
  int32_t *res;
  size_t sealed_len;
};

static int parse_to_file(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct to_file_job *j = (struct to_file_job *)pj;
  size_t t;
  return get_ta(env, argv[0], napi_uint8_array, "sealed: a Uint8Array", 0, (void **)&j->sealed, &j->sealed_len) ||
         get_ta(env, argv[1], napi_uint8_array, "key: 32 bytes", KEY_LEN, (void **)&j->key, &t) ||
         get_ta(env, argv[2], napi_uint8_array, "id: 32 bytes", ID_LEN, (void **)&j->id, &t) ||
         get_ta(env, argv[3], napi_uint8_array, "macKey: 32 bytes", ID_LEN, (void **)&j->mac, &t) ||
         get_ta(env, argv[4], napi_float64_array, "where: a Float64Array [fd, pos, rawLength]", 3, (void **)&j->where, &t) ||
         get_ta(env, argv[5], napi_int32_array, "res: an Int32Array [status, errno]", 2, (void **)&j->res, &t);
}

static int is_whole(double v, double max) { return v >= 0 && v <= max && v == (double)(int64_t)v; }

/* openBlobToFile: res[0] = 1 when the blob opened, matched its id and all rawLength bytes
 * were written at pos of fd; 0 when it did not open (tag, flag, length or zstd frame); 2
 * when its plaintext does not match the id; -1 when a write failed (or memory ran out),
 * res[1] its errno. Nothing is written before both checks pass. The sealed bytes are
 * decrypted in place; a compressed blob's plaintext goes to a buffer from plain_take. */
/* Plaintext buffers for compressed blobs opened into a file, shared by the pool's threads:
 * a few kept for the next blobs, the rest freed. A buffer of its own per blob, freed at
 * once, was an mmap of up to a chunk (glibc's threshold is set low by bin/tsbak), faulted
 * in page by page and unmapped again: a restore of VM images spent more CPU in the kernel
 * than in opening blobs. Kept buffers are the ones blobs in flight use at a restore's peak
 * anyway (one per pool thread: libuv's 4 by default; with fewer kept, the others' were
 * mapped and faulted in again for every compressed chunk); thread-local ones would keep the
 * largest chunk resident on every thread, however many ran at once. */
#define PLAIN_KEEP 4
static pthread_mutex_t plain_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *plain_free[PLAIN_KEEP];
static size_t plain_cap[PLAIN_KEEP];

/* A buffer of at least n bytes (*cap: its size), or NULL when memory runs out. */
static uint8_t *plain_take(size_t n, size_t *cap) {
  uint8_t *b = NULL;
  pthread_mutex_lock(&plain_lock);
  for (int i = 0; i < PLAIN_KEEP; i++) {
    if (plain_free[i] && plain_cap[i] >= n) {
      b = plain_free[i];
      *cap = plain_cap[i];
      plain_free[i] = NULL;
      break;
    }
  }
  pthread_mutex_unlock(&plain_lock);
  if (b) return b;
  /* Whole MiB, so that chunks of any length share buffers. */
  *cap = (n + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
  if (!*cap) *cap = 1u << 20;
  return malloc(*cap);
}

/* Keeps b (from plain_take, cap bytes) for a later blob, in an empty place or in place of a
 * smaller one (which is freed), or frees it. */
static void plain_give(uint8_t *b, size_t cap) {
  if (!b) return;
  pthread_mutex_lock(&plain_lock);
  int at = -1;
  for (int i = 0; i < PLAIN_KEEP; i++) {
    if (!plain_free[i]) {
      at = i;
      break;
    }
    if (plain_cap[i] < cap && (at < 0 || plain_cap[i] < plain_cap[at])) at = i;
  }
  uint8_t *drop = b;
  if (at >= 0) {
    drop = plain_free[at];
    plain_free[at] = b;
    plain_cap[at] = cap;
  }
  pthread_mutex_unlock(&plain_lock);
  free(drop);
}

static void run_to_file(struct pool_job *pj) {
  struct to_file_job *j = (struct to_file_job *)pj;
  j->res[0] = 0;
  j->res[1] = 0;
  if (!is_whole(j->where[0], INT32_MAX) || !is_whole(j->where[1], 9007199254740991.0) || !is_whole(j->where[2], UINT32_MAX)) {
    j->base.failure = "openBlobToFile: fd, pos or rawLength is not a whole number in range";
    return;
  }
  int fd = (int)j->where[0];
  off_t pos = (off_t)j->where[1];
  size_t raw = (size_t)j->where[2];
  struct hmac *h = open_state(j->mac, &j->base.failure);
  if (!h) return;
  uint8_t flag;
  size_t body;
  uint8_t *b = unseal(j->key, j->id, j->sealed, j->sealed_len, NULL, raw, 1, &flag, &body);
  if (!b) return;
  uint8_t *plain = b, *own = NULL;
  size_t own_cap = 0;
  if (flag == 1) {
    if (!(own = plain_take(raw ? raw : 1, &own_cap))) {
      j->res[0] = -1;
      j->res[1] = ENOMEM;
      return;
    }
    size_t got = ZSTD_decompressDCtx(dctx, own, raw, b, body);
    if (ZSTD_isError(got) || got != raw) {
      plain_give(own, own_cap);
      return;
    }
    plain = own;
  }
  uint8_t md[ID_LEN];
  if (EVP_MD_CTX_copy_ex(h->work, h->inner) != 1 || EVP_DigestUpdate(h->work, plain, raw) != 1 || hmac_finish(h, md) != 0) {
    plain_give(own, own_cap);
    j->base.failure = "openBlobToFile: HMAC-SHA256 failed";
    return;
  }
  if (memcmp(md, j->id, ID_LEN) != 0) {
    plain_give(own, own_cap);
    j->res[0] = 2;
    return;
  }
  int err = write_all(fd, plain, raw, pos);
  plain_give(own, own_cap);
  j->res[0] = err ? -1 : 1;
  j->res[1] = err;
}

static const struct job_kind TO_FILE = {"tsbak:openBlobToFile", 6, sizeof(struct to_file_job), parse_to_file, run_to_file};
napi_value js_openBlobToFileAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &TO_FILE, 1); }

/* ---- a large blob's id, off the main thread ---------------------------------------------------- */

struct id_job {
  struct pool_job base;
  uint8_t *mac, *data, *out;
  size_t data_len;
};

static int parse_id(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct id_job *j = (struct id_job *)pj;
  size_t t;
  return get_ta(env, argv[0], napi_uint8_array, "macKey: 32 bytes", ID_LEN, (void **)&j->mac, &t) ||
         get_ta(env, argv[1], napi_uint8_array, "data: a Uint8Array", 0, (void **)&j->data, &j->data_len) ||
         get_ta(env, argv[2], napi_uint8_array, "out: 32 bytes", ID_LEN, (void **)&j->out, &t);
}

static void run_id(struct pool_job *pj) {
  struct id_job *j = (struct id_job *)pj;
  if (blob_id(j->mac, j->data, j->data_len, j->out)) j->base.failure = "blobId: HMAC-SHA256 failed";
}

static const struct job_kind ID = {"tsbak:blobId", 3, sizeof(struct id_job), parse_id, run_id};
napi_value js_blobIdAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &ID, 1); }
napi_value js_blobId(napi_env env, napi_callback_info info) { return call_job(env, info, &ID, 0); }

static const struct job_kind OPEN = {"tsbak:openBlobs", 11, sizeof(struct open_job), parse_open, run_open};
napi_value js_openBlobs(napi_env env, napi_callback_info info) { return call_job(env, info, &OPEN, 0); }
napi_value js_openBlobsAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &OPEN, 1); }

static const struct job_kind SEAL = {"tsbak:sealBlobs", 8, sizeof(struct seal_job), parse_seal, run_seal};
napi_value js_sealBlobs(napi_env env, napi_callback_info info) { return call_job(env, info, &SEAL, 0); }
napi_value js_sealBlobsAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &SEAL, 1); }

/*
 * The restore's batch work on small files, in C: a restore of many small files spends most of
 * its time, in JavaScript, on per-call overhead (a cipher object, an HMAC object, a zstd call,
 * five fs calls per file), not on the bytes. Each call has a synchronous form and an async
 * one (openBlobsAsync, writeFilesAsync: the same arguments, the work on libuv's thread pool,
 * a Promise<void>; the arguments must not be touched until it settles).
 *
 *   openBlobs(sealed, offsets, lengths, keyOf, keys, ids, macKey, rawLengths, out, outOffsets, ok)
 *       Opens blob i (bytes [offsets[i], +lengths[i]) of sealed, under key keyOf[i] of keys)
 *       into out at outOffsets[i], and sets ok[i] = 1 when it opened and its plaintext
 *       (rawLengths[i] bytes) matches ids[i]; 0 otherwise. The envelope is docs/FORMAT.md's
 *       "Blob", the same as src/format/blob.ts: nonce(12) || AES-256-GCM(flag || body,
 *       aad = id) || tag(16); flag 0 raw, 1 zstd; id = HMAC-SHA256(macKey, plaintext). Nothing
 *       is decompressed before the tag checks. A blob that fails here is opened again by the
 *       TypeScript code, which reports the damage.
 *
 *   writeFiles(paths, pathStarts, replace, chown, uids, gids, modes, times, data, segStart,
 *              segOff, segLen, res)
 *       Creates file i (path: NUL-terminated at paths[pathStarts[i]]; removed first when
 *       replace[i]), writes its segments [segStart[i], segStart[i+1]) of data one after the
 *       other, then, through the descriptor, fchown(uids[i], gids[i]) when chown[i],
 *       fchmod(modes[i]) and futimens(times[2i], times[2i+1] ns): applyMeta's order, for a
 *       file without xattrs in a directory without a default ACL. res[5i..5i+4] = errno of a
 *       hard failure (0: none), the step it failed at (1 create, 2 write, 3 close), and the
 *       errno of fchown, fchmod, futimens (the caller decides which are warnings). A file
 *       with a hard failure is removed.
 *
 * OpenSSL is node's own (its symbols are exported by the node binary, its headers ship with
 * node's); zstd is the system's libzstd. Cipher, zstd and scratch state is per thread.
 */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "common.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define KEY_LEN 32
#define ID_LEN 32

/* A typed array argument of the given type with at least `min` elements; -1 with an exception pending. */
static int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *what, size_t min,
                  void **data, size_t *len) {
  bool is;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, what);
    return -1;
  }
  if (*len < min) {
    napi_throw_range_error(env, NULL, what);
    return -1;
  }
  return 0;
}

/* Per-thread state, kept between calls: each worker thread has its own. */
static __thread EVP_CIPHER_CTX *gcm;
static __thread ZSTD_DCtx *dctx;
static __thread uint8_t *scratch;
static __thread size_t scratch_len;

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

/* Opens one sealed blob into out (raw bytes exactly); 1 when it opened, 0 when not. */
static int open_one(const uint8_t *key, const uint8_t *id, const uint8_t *s, size_t n, uint8_t *out,
                    size_t raw) {
  int l;
  uint8_t flag;
  if (n < NONCE_LEN + TAG_LEN + 1) return 0;
  size_t body = n - NONCE_LEN - TAG_LEN - 1;
  if (body > INT32_MAX) return 0;
  if (EVP_DecryptInit_ex(gcm, NULL, NULL, key, s) != 1) return 0;
  if (EVP_DecryptUpdate(gcm, NULL, &l, id, ID_LEN) != 1) return 0;
  if (EVP_DecryptUpdate(gcm, &flag, &l, s + NONCE_LEN, 1) != 1 || l != 1) return 0;
  const uint8_t *ct = s + NONCE_LEN + 1;
  uint8_t *dst;
  if (flag == 0) {
    if (body != raw) return 0;
    dst = out;
  } else if (flag == 1) {
    if (scratch_len < body) {
      size_t want = body < (256u << 10) ? (256u << 10) : body;
      uint8_t *p = realloc(scratch, want);
      if (!p) return 0;
      scratch = p;
      scratch_len = want;
    }
    dst = scratch;
  } else {
    return 0;
  }
  if (body && (EVP_DecryptUpdate(gcm, dst, &l, ct, (int)body) != 1 || (size_t)l != body)) return 0;
  if (EVP_CIPHER_CTX_ctrl(gcm, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(s + n - TAG_LEN)) != 1) return 0;
  uint8_t fin[16];
  if (EVP_DecryptFinal_ex(gcm, fin, &l) != 1) return 0;
  if (flag == 1) {
    size_t got = ZSTD_decompressDCtx(dctx, out, raw, scratch, body);
    if (ZSTD_isError(got) || got != raw) return 0;
  }
  return 1;
}

/* openBlobs' arguments, checked. */
struct open_job {
  uint8_t *sealed, *keys, *ids, *mac, *out, *ok;
  uint32_t *offsets, *lengths, *raw, *out_off;
  uint16_t *key_of;
  size_t sealed_len, n, keys_len, out_len;
  const char *failure; /* set by the work when it could not start */
};

static int parse_open(napi_env env, napi_value *argv, struct open_job *j) {
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

static void run_open(struct open_job *j) {
  memset(j->ok, 0, j->n);
  if (!gcm) {
    gcm = EVP_CIPHER_CTX_new();
    if (!gcm || EVP_DecryptInit_ex(gcm, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) {
      EVP_CIPHER_CTX_free(gcm);
      gcm = NULL;
      j->failure = "openBlobs: cannot set up AES-256-GCM";
      return;
    }
  }
  if (!dctx && !(dctx = ZSTD_createDCtx())) {
    j->failure = "openBlobs: cannot set up zstd";
    return;
  }
  struct hmac h = {NULL, NULL, NULL};
  if (hmac_init(&h, j->mac, ID_LEN)) {
    hmac_free(&h);
    j->failure = "openBlobs: cannot set up HMAC-SHA256";
    return;
  }
  for (size_t i = 0; i < j->n; i++) {
    if ((uint64_t)j->offsets[i] + j->lengths[i] > j->sealed_len || (uint64_t)j->out_off[i] + j->raw[i] > j->out_len ||
        ((size_t)j->key_of[i] + 1) * KEY_LEN > j->keys_len)
      continue;
    const uint8_t *id = j->ids + i * ID_LEN;
    uint8_t *out = j->out + j->out_off[i];
    if (open_one(j->keys + (size_t)j->key_of[i] * KEY_LEN, id, j->sealed + j->offsets[i], j->lengths[i], out, j->raw[i]) &&
        hmac_equals(&h, out, j->raw[i], id))
      j->ok[i] = 1;
  }
  hmac_free(&h);
}

napi_value js_openBlobs(napi_env env, napi_callback_info info) {
  napi_value argv[11], u;
  struct open_job j = {0};
  if (get_args(env, info, 11, argv, NULL) || parse_open(env, argv, &j)) return NULL;
  run_open(&j);
  if (j.failure) {
    napi_throw_error(env, NULL, j.failure);
    return NULL;
  }
  napi_get_undefined(env, &u);
  return u;
}

static int write_all(int fd, const uint8_t *p, size_t len, off_t pos) {
  while (len) {
    ssize_t w = pwrite(fd, p, len, pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    len -= (size_t)w;
    pos += w;
  }
  return 0;
}

static struct timespec ns_timespec(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) { /* floor, for times before 1970 */
    ts.tv_sec -= 1;
    ts.tv_nsec += 1000000000;
  }
  return ts;
}

/* writeFiles' arguments, checked. */
struct write_job {
  char *paths;
  uint8_t *replace, *chown_, *data;
  uint32_t *starts, *modes, *uids, *gids, *seg_start, *seg_off, *seg_len;
  int64_t *times;
  int32_t *res;
  size_t n;
  const char *failure;
};

static int parse_write(napi_env env, napi_value *argv, struct write_job *j) {
  size_t paths_len, t, data_len, segs;
  if (get_ta(env, argv[0], napi_uint8_array, "paths: a Uint8Array", 0, (void **)&j->paths, &paths_len) ||
      get_ta(env, argv[1], napi_uint32_array, "pathStarts: a Uint32Array", 0, (void **)&j->starts, &j->n) ||
      get_ta(env, argv[2], napi_uint8_array, "replace: a Uint8Array per file", j->n, (void **)&j->replace, &t) ||
      get_ta(env, argv[3], napi_uint8_array, "chown: a Uint8Array per file", j->n, (void **)&j->chown_, &t) ||
      get_ta(env, argv[4], napi_uint32_array, "uids: a Uint32Array per file", j->n, (void **)&j->uids, &t) ||
      get_ta(env, argv[5], napi_uint32_array, "gids: a Uint32Array per file", j->n, (void **)&j->gids, &t) ||
      get_ta(env, argv[6], napi_uint32_array, "modes: a Uint32Array per file", j->n, (void **)&j->modes, &t) ||
      get_ta(env, argv[7], napi_bigint64_array, "times: a BigInt64Array, two per file", 2 * j->n, (void **)&j->times, &t) ||
      get_ta(env, argv[8], napi_uint8_array, "data: a Uint8Array", 0, (void **)&j->data, &data_len) ||
      get_ta(env, argv[9], napi_uint32_array, "segStart: a Uint32Array, one per file and one more", j->n + 1, (void **)&j->seg_start, &t) ||
      get_ta(env, argv[10], napi_uint32_array, "segOff: a Uint32Array", 0, (void **)&j->seg_off, &segs) ||
      get_ta(env, argv[11], napi_uint32_array, "segLen: a Uint32Array per segment", segs, (void **)&j->seg_len, &t) ||
      get_ta(env, argv[12], napi_int32_array, "res: an Int32Array, five per file", 5 * j->n, (void **)&j->res, &t))
    return -1;
  /* Every path must end with a NUL inside paths, and every segment lie inside data. */
  for (size_t i = 0; i < j->n; i++) {
    if (j->starts[i] >= paths_len || !memchr(j->paths + j->starts[i], 0, paths_len - j->starts[i]) ||
        j->seg_start[i] > j->seg_start[i + 1] || j->seg_start[i + 1] > segs) {
      napi_throw_range_error(env, NULL, "writeFiles: a path or a segment list is out of bounds");
      return -1;
    }
  }
  for (size_t s = 0; s < segs; s++) {
    if ((uint64_t)j->seg_off[s] + j->seg_len[s] > data_len) {
      napi_throw_range_error(env, NULL, "writeFiles: a segment is out of bounds");
      return -1;
    }
  }
  return 0;
}

static void run_write(struct write_job *j) {
  for (size_t i = 0; i < j->n; i++) {
    const char *p = j->paths + j->starts[i];
    int32_t *r = j->res + 5 * i;
    r[0] = r[1] = r[2] = r[3] = r[4] = 0;
    if (j->replace[i] && unlink(p) != 0 && errno != ENOENT && errno != EISDIR) {
      r[0] = errno;
      r[1] = 1;
      continue;
    }
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      r[0] = errno;
      r[1] = 1;
      continue;
    }
    off_t pos = 0;
    for (uint32_t s = j->seg_start[i]; s < j->seg_start[i + 1] && !r[0]; s++) {
      int e = write_all(fd, j->data + j->seg_off[s], j->seg_len[s], pos);
      if (e) {
        r[0] = e;
        r[1] = 2;
      }
      pos += j->seg_len[s];
    }
    if (!r[0]) {
      /* applyMeta's order: owner (it clears setuid/setgid), mode, times. */
      if (j->chown_[i] && fchown(fd, j->uids[i], j->gids[i]) != 0) r[2] = errno;
      if (fchmod(fd, j->modes[i]) != 0) r[3] = errno;
      struct timespec ts[2] = {ns_timespec(j->times[2 * i]), ns_timespec(j->times[2 * i + 1])};
      if (futimens(fd, ts) != 0) r[4] = errno;
    }
    if (close(fd) != 0 && !r[0]) {
      r[0] = errno;
      r[1] = 3;
    }
    if (r[0]) unlink(p);
  }
}

napi_value js_writeFiles(napi_env env, napi_callback_info info) {
  napi_value argv[13], u;
  struct write_job j = {0};
  if (get_args(env, info, 13, argv, NULL) || parse_write(env, argv, &j)) return NULL;
  run_write(&j);
  napi_get_undefined(env, &u);
  return u;
}

/* ---- the same on libuv's thread pool ---------------------------------------------------- */

/* An async call: its arguments stay referenced (their memory in use by the pool thread) until it completes. */
struct async_call {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[13];
  size_t nrefs;
  int is_open;
  struct open_job open;
  struct write_job write;
};

static void async_execute(napi_env env, void *data) {
  struct async_call *c = data;
  if (c->is_open) run_open(&c->open);
  else run_write(&c->write);
}

static void async_complete(napi_env env, napi_status status, void *data) {
  struct async_call *c = data;
  const char *failure = c->is_open ? c->open.failure : c->write.failure;
  napi_value v;
  if (status != napi_ok || failure) {
    napi_value msg;
    napi_create_string_utf8(env, failure ? failure : "tsbak native work was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
    napi_reject_deferred(env, c->deferred, v);
  } else {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, c->deferred, v);
  }
  for (size_t i = 0; i < c->nrefs; i++) napi_delete_reference(env, c->refs[i]);
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value queue(napi_env env, napi_callback_info info, int is_open) {
  size_t argc = is_open ? 11 : 13;
  napi_value argv[13], promise, name;
  if (get_args(env, info, argc, argv, NULL)) return NULL;
  struct async_call *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->is_open = is_open;
  if (is_open ? parse_open(env, argv, &c->open) : parse_write(env, argv, &c->write)) goto fail;
  for (; c->nrefs < argc; c->nrefs++)
    if (napi_create_reference(env, argv[c->nrefs], 1, &c->refs[c->nrefs]) != napi_ok) goto napi_fail;
  if (napi_create_promise(env, &c->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, is_open ? "tsbak:openBlobs" : "tsbak:writeFiles", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, async_execute, async_complete, c, &c->work) != napi_ok)
    goto napi_fail;
  if (napi_queue_async_work(env, c->work) != napi_ok) {
    napi_delete_async_work(env, c->work);
    goto napi_fail;
  }
  return promise;
napi_fail:
  throw_napi_failure(env);
fail:
  for (size_t i = 0; i < c->nrefs; i++) napi_delete_reference(env, c->refs[i]);
  free(c);
  return NULL;
}

napi_value js_openBlobsAsync(napi_env env, napi_callback_info info) { return queue(env, info, 1); }
napi_value js_writeFilesAsync(napi_env env, napi_callback_info info) { return queue(env, info, 0); }

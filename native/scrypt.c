/*
 * scrypt's memory-hard core, so that a key's p lanes can run on several threads:
 *
 *   scryptRomixAsync(lanes, Uint32Array [N, r])
 *       lanes is k blocks of 128*r bytes back to back; each becomes SMix(block, N) of
 *       RFC 7914 (section 5), one after the other, on one thread of libuv's pool.
 *
 * PBKDF2 before and after stays in node:crypto (src/platform/native/scrypt.ts); with it,
 * the result is byte for byte scrypt(P, S, N, r, p) as node's (OpenSSL's) computes it,
 * which runs the lanes one after the other on one thread. The lane's working memory
 * (128*r*N bytes) is cleared before it is freed: it is derived from the passphrase.
 */
#include <node_api.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#include "napi-util.h"
#include "pool-work.h"
#include "scrypt.h"

static inline uint32_t le32dec(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void le32enc(uint8_t *p, uint32_t x) {
  p[0] = (uint8_t)x;
  p[1] = (uint8_t)(x >> 8);
  p[2] = (uint8_t)(x >> 16);
  p[3] = (uint8_t)(x >> 24);
}

#define ROTL(a, b) (((a) << (b)) | ((a) >> (32 - (b))))

/* Salsa20/8 core (RFC 7914 section 3), B in place. */
static void salsa20_8(uint32_t B[16]) {
  uint32_t x[16];
  memcpy(x, B, 64);
  for (int i = 0; i < 8; i += 2) {
    x[4] ^= ROTL(x[0] + x[12], 7);
    x[8] ^= ROTL(x[4] + x[0], 9);
    x[12] ^= ROTL(x[8] + x[4], 13);
    x[0] ^= ROTL(x[12] + x[8], 18);
    x[9] ^= ROTL(x[5] + x[1], 7);
    x[13] ^= ROTL(x[9] + x[5], 9);
    x[1] ^= ROTL(x[13] + x[9], 13);
    x[5] ^= ROTL(x[1] + x[13], 18);
    x[14] ^= ROTL(x[10] + x[6], 7);
    x[2] ^= ROTL(x[14] + x[10], 9);
    x[6] ^= ROTL(x[2] + x[14], 13);
    x[10] ^= ROTL(x[6] + x[2], 18);
    x[3] ^= ROTL(x[15] + x[11], 7);
    x[7] ^= ROTL(x[3] + x[15], 9);
    x[11] ^= ROTL(x[7] + x[3], 13);
    x[15] ^= ROTL(x[11] + x[7], 18);
    x[1] ^= ROTL(x[0] + x[3], 7);
    x[2] ^= ROTL(x[1] + x[0], 9);
    x[3] ^= ROTL(x[2] + x[1], 13);
    x[0] ^= ROTL(x[3] + x[2], 18);
    x[6] ^= ROTL(x[5] + x[4], 7);
    x[7] ^= ROTL(x[6] + x[5], 9);
    x[4] ^= ROTL(x[7] + x[6], 13);
    x[5] ^= ROTL(x[4] + x[7], 18);
    x[11] ^= ROTL(x[10] + x[9], 7);
    x[8] ^= ROTL(x[11] + x[10], 9);
    x[9] ^= ROTL(x[8] + x[11], 13);
    x[10] ^= ROTL(x[9] + x[8], 18);
    x[12] ^= ROTL(x[15] + x[14], 7);
    x[13] ^= ROTL(x[12] + x[15], 9);
    x[14] ^= ROTL(x[13] + x[12], 13);
    x[15] ^= ROTL(x[14] + x[13], 18);
  }
  for (int i = 0; i < 16; i++) B[i] += x[i];
}

/* BlockMix (RFC 7914 section 4): B of 2r 64-byte blocks, Y scratch of the same size. */
static void blockmix(uint32_t *B, uint32_t *Y, size_t r) {
  uint32_t X[16];
  memcpy(X, &B[(2 * r - 1) * 16], 64);
  for (size_t i = 0; i < 2 * r; i++) {
    for (int k = 0; k < 16; k++) X[k] ^= B[i * 16 + k];
    salsa20_8(X);
    memcpy(&Y[i * 16], X, 64);
  }
  for (size_t i = 0; i < r; i++) memcpy(&B[i * 16], &Y[2 * i * 16], 64);
  for (size_t i = 0; i < r; i++) memcpy(&B[(i + r) * 16], &Y[(2 * i + 1) * 16], 64);
}

/* ROMix (RFC 7914 section 5) of one 128r-byte block, with V of N*128r bytes and XY of 256r. */
static void smix(uint8_t *B, size_t r, uint64_t N, uint32_t *V, uint32_t *XY) {
  size_t words = 32 * r;
  uint32_t *X = XY, *Y = XY + words;
  for (size_t k = 0; k < words; k++) X[k] = le32dec(&B[4 * k]);
  for (uint64_t i = 0; i < N; i++) {
    memcpy(&V[i * words], X, 128 * r);
    blockmix(X, Y, r);
  }
  for (uint64_t i = 0; i < N; i++) {
    uint64_t j = X[(2 * r - 1) * 16] & (N - 1); /* Integerify mod N (N <= 2^32) */
    const uint32_t *v = &V[j * words];
    for (size_t k = 0; k < words; k++) X[k] ^= v[k];
    blockmix(X, Y, r);
  }
  for (size_t k = 0; k < words; k++) le32enc(&B[4 * k], X[k]);
}

/* 256 MiB of working memory at most (src/crypto/kdf.ts KDF_BOUNDS). */
#define MAX_V_BYTES ((uint64_t)256 << 20)

struct romix_job {
  struct pool_job base;
  uint8_t *lanes;
  size_t count;
  size_t r;
  uint64_t N;
};

static int parse_romix(napi_env env, napi_value *argv, struct pool_job *job) {
  struct romix_job *j = (struct romix_job *)job;
  void *lanes;
  size_t len;
  void *nr;
  size_t nrlen;
  if (get_ta(env, argv[0], napi_uint8_array, "scryptRomix: lanes must be a Uint8Array", 0, &lanes, &len) < 0 ||
      get_ta(env, argv[1], napi_uint32_array, "scryptRomix: params must be a Uint32Array [N, r]", 2, &nr, &nrlen) < 0)
    return -1;
  uint32_t N = ((uint32_t *)nr)[0], r = ((uint32_t *)nr)[1];
  if (N < 2 || (N & (N - 1)) != 0 || r < 1 || r > 1024 || (uint64_t)128 * r * N > MAX_V_BYTES) {
    throw_range(env, "scryptRomix: N must be a power of two >= 2, r from 1 to 1024, 128*r*N at most 256 MiB");
    return -1;
  }
  if (len == 0 || len % (128 * (size_t)r) != 0) {
    throw_range(env, "scryptRomix: lanes must be a whole number (>= 1) of 128*r-byte blocks");
    return -1;
  }
  j->lanes = lanes;
  j->count = len / (128 * (size_t)r);
  j->r = r;
  j->N = N;
  return 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

static void run_romix(struct pool_job *job) {
  struct romix_job *j = (struct romix_job *)job;
  size_t vbytes = (size_t)(128 * j->r * j->N), xybytes = 256 * j->r;
  /* V is read at random: on 2 MiB pages where the kernel allows it (far fewer TLB misses),
   * and populated in one go rather than by a fault per 4 KiB page. */
  size_t maplen = vbytes + HUGE_PAGE;
  uint8_t *map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint32_t *XY = malloc(xybytes);
  if (map == MAP_FAILED || !XY) {
    if (map != MAP_FAILED) munmap(map, maplen);
    free(XY);
    job->failure = "scryptRomix: out of memory";
    return;
  }
  uint32_t *V = (uint32_t *)(((uintptr_t)map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  madvise(V, vbytes, MADV_HUGEPAGE);
  madvise(V, vbytes, MADV_POPULATE_WRITE);
  for (size_t i = 0; i < j->count; i++) smix(j->lanes + i * 128 * j->r, j->r, j->N, V, XY);
  explicit_bzero(V, vbytes);
  explicit_bzero(XY, xybytes);
  munmap(map, maplen);
  free(XY);
}

static const struct job_kind ROMIX = {"tsbak:scryptRomix", 2, sizeof(struct romix_job), parse_romix, run_romix};
napi_value js_scryptRomixAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &ROMIX, 1); }

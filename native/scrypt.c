/*
 * scrypt's memory-hard core, so that a key's p lanes can run on several threads:
 *
 *   scryptRomixAsync(lanes, Uint32Array [N, r])
 *       lanes is k blocks of 128*r bytes back to back; each becomes SMix(block, N) of
 *       RFC 7914 (section 5), on one thread of libuv's pool: in SIMD two lanes at once
 *       (x86-64: SSE2, AVX2 or AVX-512VL, scrypt-smix.h), else one after the other.
 *   scryptSimd() -> "scalar" | "sse2" | "avx2" | "avx512": what SMix runs as here, the best
 *       the CPU has or a lesser one named by TSBAK_SCRYPT_SIMD.
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

#define ROTL32(a, b) (((a) << (b)) | ((a) >> (32 - (b))))

/* Salsa20/8 core (RFC 7914 section 3), B in place. */
static void salsa20_8(uint32_t B[16]) {
  uint32_t x[16];
  memcpy(x, B, 64);
  for (int i = 0; i < 8; i += 2) {
    x[4] ^= ROTL32(x[0] + x[12], 7);
    x[8] ^= ROTL32(x[4] + x[0], 9);
    x[12] ^= ROTL32(x[8] + x[4], 13);
    x[0] ^= ROTL32(x[12] + x[8], 18);
    x[9] ^= ROTL32(x[5] + x[1], 7);
    x[13] ^= ROTL32(x[9] + x[5], 9);
    x[1] ^= ROTL32(x[13] + x[9], 13);
    x[5] ^= ROTL32(x[1] + x[13], 18);
    x[14] ^= ROTL32(x[10] + x[6], 7);
    x[2] ^= ROTL32(x[14] + x[10], 9);
    x[6] ^= ROTL32(x[2] + x[14], 13);
    x[10] ^= ROTL32(x[6] + x[2], 18);
    x[3] ^= ROTL32(x[15] + x[11], 7);
    x[7] ^= ROTL32(x[3] + x[15], 9);
    x[11] ^= ROTL32(x[7] + x[3], 13);
    x[15] ^= ROTL32(x[11] + x[7], 18);
    x[1] ^= ROTL32(x[0] + x[3], 7);
    x[2] ^= ROTL32(x[1] + x[0], 9);
    x[3] ^= ROTL32(x[2] + x[1], 13);
    x[0] ^= ROTL32(x[3] + x[2], 18);
    x[6] ^= ROTL32(x[5] + x[4], 7);
    x[7] ^= ROTL32(x[6] + x[5], 9);
    x[4] ^= ROTL32(x[7] + x[6], 13);
    x[5] ^= ROTL32(x[4] + x[7], 18);
    x[11] ^= ROTL32(x[10] + x[9], 7);
    x[8] ^= ROTL32(x[11] + x[10], 9);
    x[9] ^= ROTL32(x[8] + x[11], 13);
    x[10] ^= ROTL32(x[9] + x[8], 18);
    x[12] ^= ROTL32(x[15] + x[14], 7);
    x[13] ^= ROTL32(x[12] + x[15], 9);
    x[14] ^= ROTL32(x[13] + x[12], 13);
    x[15] ^= ROTL32(x[14] + x[13], 18);
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

#if defined(__x86_64__)
#include <immintrin.h>

/* SSE2, which every x86-64 has: two lanes at once, each in its own registers (one lane's
 * steps depend each on the last; two chains keep the core busy). */
typedef struct {
  __m128i a, b;
} sse2x2;
static inline sse2x2 sse2x2_add(sse2x2 x, sse2x2 y) { return (sse2x2){_mm_add_epi32(x.a, y.a), _mm_add_epi32(x.b, y.b)}; }
static inline sse2x2 sse2x2_xor(sse2x2 x, sse2x2 y) { return (sse2x2){_mm_xor_si128(x.a, y.a), _mm_xor_si128(x.b, y.b)}; }
#define SSE2_ROTL(x, n) _mm_or_si128(_mm_slli_epi32(x, n), _mm_srli_epi32(x, 32 - (n)))
#define SFX sse2
#define VEC sse2x2
#define ADD sse2x2_add
#define XOR sse2x2_xor
#define SHUF(x, imm) ((sse2x2){_mm_shuffle_epi32((x).a, imm), _mm_shuffle_epi32((x).b, imm)})
#define ROTL(x, n) ((sse2x2){SSE2_ROTL((x).a, n), SSE2_ROTL((x).b, n)})
#define LOADV(pa, pb) ((sse2x2){*(pa), *(pb)})
#define STOREV(pa, pb, x) (*(pa) = (x).a, *(pb) = (x).b)
#include "scrypt-smix.h"
#undef SFX
#undef VEC
#undef ADD
#undef XOR
#undef SHUF
#undef ROTL
#undef LOADV
#undef STOREV

/* AVX2: two lanes at once, one in each 128-bit half (the shuffles stay within halves). */
#pragma GCC push_options
#pragma GCC target("avx2")
#define SFX avx2
#define VEC __m256i
#define ADD _mm256_add_epi32
#define XOR _mm256_xor_si256
#define SHUF _mm256_shuffle_epi32
#define ROTL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))
#define LOADV(pa, pb) _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_load_si128(pa)), _mm_load_si128(pb), 1)
#define STOREV(pa, pb, x) (_mm_store_si128(pa, _mm256_castsi256_si128(x)), _mm_store_si128(pb, _mm256_extracti128_si256(x, 1)))
#include "scrypt-smix.h"
#undef SFX
#undef ROTL
#pragma GCC pop_options

/* AVX-512VL: the same with its rotate instruction. */
#pragma GCC push_options
#pragma GCC target("avx2,avx512f,avx512vl")
#define SFX avx512
#define ROTL(x, n) _mm256_rol_epi32(x, n)
#include "scrypt-smix.h"
#undef SFX
#undef VEC
#undef ADD
#undef XOR
#undef SHUF
#undef ROTL
#undef LOADV
#undef STOREV
#pragma GCC pop_options
#endif

/* 256 MiB of working memory at most (src/crypto/kdf.ts KDF_BOUNDS). */
#define MAX_V_BYTES ((uint64_t)256 << 20)

/* How SMix runs: scalar C, or SIMD (scrypt-smix.h); the best the CPU has unless
 * TSBAK_SCRYPT_SIMD names a lesser one (the tests compare each with node's scrypt). */
enum simd { SIMD_SCALAR, SIMD_SSE2, SIMD_AVX2, SIMD_AVX512 };

static enum simd simd_chosen(void) {
  enum simd best = SIMD_SCALAR;
#if defined(__x86_64__)
  __builtin_cpu_init();
  best = SIMD_SSE2;
  if (__builtin_cpu_supports("avx2")) best = SIMD_AVX2;
  if (best == SIMD_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) best = SIMD_AVX512;
#endif
  const char *want = getenv("TSBAK_SCRYPT_SIMD");
  enum simd w = best;
  if (want && strcmp(want, "scalar") == 0) w = SIMD_SCALAR;
  else if (want && strcmp(want, "sse2") == 0) w = SIMD_SSE2;
  else if (want && strcmp(want, "avx2") == 0) w = SIMD_AVX2;
  return w < best ? w : best;
}

struct romix_job {
  struct pool_job base;
  uint8_t *lanes;
  size_t count;
  size_t r;
  uint64_t N;
  enum simd simd;
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
  j->simd = simd_chosen(); /* here, on the main thread: getenv */
  return 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

static void run_romix(struct pool_job *job) {
  struct romix_job *j = (struct romix_job *)job;
  size_t lane = 128 * j->r;
  /* SIMD runs two lanes at once, each with its own V. */
  size_t width = j->simd >= SIMD_SSE2 && j->count >= 2 ? 2 : 1;
  size_t vbytes = (size_t)(width * lane * j->N), xybytes = width * 2 * lane;
  /* V is read at random: on 2 MiB pages where the kernel allows it (far fewer TLB misses),
   * and populated in one go rather than by a fault per 4 KiB page. */
  size_t maplen = vbytes + HUGE_PAGE;
  uint8_t *map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *XY = aligned_alloc(64, xybytes);
  if (map == MAP_FAILED || !XY) {
    if (map != MAP_FAILED) munmap(map, maplen);
    free(XY);
    job->failure = "scryptRomix: out of memory";
    return;
  }
  void *V = (void *)(((uintptr_t)map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  madvise(V, vbytes, MADV_HUGEPAGE);
  madvise(V, vbytes, MADV_POPULATE_WRITE);
  size_t i = 0;
#if defined(__x86_64__)
  for (; width == 2 && i + 2 <= j->count; i += 2) {
    uint8_t *B[2] = {j->lanes + i * lane, j->lanes + (i + 1) * lane};
    if (j->simd == SIMD_AVX512) smix_avx512(B, j->r, (uint32_t)j->N, V, XY);
    else if (j->simd == SIMD_AVX2) smix_avx2(B, j->r, (uint32_t)j->N, V, XY);
    else smix_sse2(B, j->r, (uint32_t)j->N, V, XY);
  }
#endif
  for (; i < j->count; i++) smix(j->lanes + i * lane, j->r, j->N, V, XY);
  explicit_bzero(V, vbytes);
  explicit_bzero(XY, xybytes);
  munmap(map, maplen);
  free(XY);
}

static const char *const SIMD_NAMES[] = {"scalar", "sse2", "avx2", "avx512"};

napi_value js_scryptSimd(napi_env env, napi_callback_info info) {
  napi_value out;
  if (napi_create_string_utf8(env, SIMD_NAMES[simd_chosen()], NAPI_AUTO_LENGTH, &out) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return out;
}

static const struct job_kind ROMIX = {"tsbak:scryptRomix", 2, sizeof(struct romix_job), parse_romix, run_romix};
napi_value js_scryptRomixAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &ROMIX, 1); }

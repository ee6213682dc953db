/*
 * The one primitive the erasure code across packs (src/repo/parity-code.ts) needs in C:
 *
 *   gfMulAdd(dst, coefs, src)  /  gfMulAddAsync (on libuv's pool)
 *       dst is coefs.length stripes of equal length back to back; for each j,
 *       stripe_j[0, src.length) ^= coefs[j] * src, bytewise in GF(2^8) (polynomial 0x11d).
 *
 * Encoding folds each data pack into the M parity stripes with its column of the Cauchy
 * matrix; decoding folds the K surviving members into the missing ones with the rows of the
 * inverted matrix. Both are this call: the small matrix work stays in TypeScript.
 * The multiply is table-driven: a 256x256 product table (64 KiB), one 256-byte row per
 * coefficient, built once at first use; with SSSE3, two 16-entry nibble tables of that row
 * per pshufb (TSBAK_PARITY_NO_SIMD=1 forces the byte table, for the tests).
 */
#include <node_api.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "napi-util.h"
#include "parity.h"
#include "pool-work.h"

static uint8_t mul_table[256][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
/* Whether the CPU has SSSE3 (x86-64; set with the table). */
static int have_ssse3;

static void build_table(void) {
  uint8_t exp[512];
  int log[256];
  int x = 1;
  for (int i = 0; i < 255; i++) {
    exp[i] = (uint8_t)x;
    log[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (int i = 255; i < 512; i++) exp[i] = exp[i - 255];
  for (int a = 0; a < 256; a++)
    for (int b = 0; b < 256; b++) mul_table[a][b] = (a && b) ? exp[log[a] + log[b]] : 0;
#if defined(__x86_64__)
  have_ssse3 = __builtin_cpu_supports("ssse3") && !getenv("TSBAK_PARITY_NO_SIMD");
#endif
}

#if defined(__x86_64__)
#include <immintrin.h>
/* Split-nibble multiply (the usual SIMD form): c*x = lo[x & 15] ^ hi[x >> 4], 16 bytes per
 * pshufb; several times the byte table's speed. Used when the CPU has SSSE3. */
__attribute__((target("ssse3"))) static size_t mul_add_ssse3(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c) {
  uint8_t lo[16], hi[16];
  for (int i = 0; i < 16; i++) {
    lo[i] = mul_table[c][i];
    hi[i] = mul_table[c][i << 4];
  }
  const __m128i tlo = _mm_loadu_si128((const __m128i *)lo), thi = _mm_loadu_si128((const __m128i *)hi);
  const __m128i mask = _mm_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(src + i));
    __m128i l = _mm_shuffle_epi8(tlo, _mm_and_si128(x, mask));
    __m128i h = _mm_shuffle_epi8(thi, _mm_and_si128(_mm_srli_epi64(x, 4), mask));
    __m128i d = _mm_loadu_si128((const __m128i *)(dst + i));
    _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(d, _mm_xor_si128(l, h)));
  }
  return i;
}
#endif

static void mul_add(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, uint8_t c) {
  if (c == 0) return;
  if (c == 1) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t a, b;
      memcpy(&a, dst + i, 8);
      memcpy(&b, src + i, 8);
      a ^= b;
      memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++) dst[i] ^= src[i];
    return;
  }
  const uint8_t *t = mul_table[c];
  size_t i = 0;
#if defined(__x86_64__)
  if (have_ssse3) i = mul_add_ssse3(dst, src, n, c);
#endif
  for (; i + 8 <= n; i += 8) {
    dst[i] ^= t[src[i]];
    dst[i + 1] ^= t[src[i + 1]];
    dst[i + 2] ^= t[src[i + 2]];
    dst[i + 3] ^= t[src[i + 3]];
    dst[i + 4] ^= t[src[i + 4]];
    dst[i + 5] ^= t[src[i + 5]];
    dst[i + 6] ^= t[src[i + 6]];
    dst[i + 7] ^= t[src[i + 7]];
  }
  for (; i < n; i++) dst[i] ^= t[src[i]];
}

struct mul_add_job {
  struct pool_job base;
  uint8_t *dst;
  size_t stride;
  const uint8_t *coefs;
  size_t m;
  const uint8_t *src;
  size_t n;
};

static int parse_mul_add(napi_env env, napi_value *argv, struct pool_job *job) {
  struct mul_add_job *j = (struct mul_add_job *)job;
  void *dst, *coefs, *src;
  size_t dlen, m, n;
  if (get_ta(env, argv[0], napi_uint8_array, "gfMulAdd: dst must be a Uint8Array", 0, &dst, &dlen) < 0 ||
      get_ta(env, argv[1], napi_uint8_array, "gfMulAdd: coefs must be a Uint8Array", 1, &coefs, &m) < 0 ||
      get_ta(env, argv[2], napi_uint8_array, "gfMulAdd: src must be a Uint8Array", 0, &src, &n) < 0)
    return -1;
  if (dlen % m != 0 || n > dlen / m) {
    throw_range(env, "gfMulAdd: dst must be coefs.length stripes each at least as long as src");
    return -1;
  }
  pthread_once(&table_once, build_table);
  j->dst = dst;
  j->stride = dlen / m;
  j->coefs = coefs;
  j->m = m;
  j->src = src;
  j->n = n;
  return 0;
}

static void run_mul_add(struct pool_job *job) {
  struct mul_add_job *j = (struct mul_add_job *)job;
  /* Cache-sized slices of src, each folded into every stripe while it is hot. */
  const size_t slice = 32768;
  for (size_t off = 0; off < j->n; off += slice) {
    size_t len = j->n - off < slice ? j->n - off : slice;
    for (size_t s = 0; s < j->m; s++) mul_add(j->dst + s * j->stride + off, j->src + off, len, j->coefs[s]);
  }
}

static const struct job_kind MUL_ADD = {"tsbak:gfMulAdd", 3, sizeof(struct mul_add_job), parse_mul_add, run_mul_add};
napi_value js_gfMulAdd(napi_env env, napi_callback_info info) { return call_job(env, info, &MUL_ADD, 0); }
napi_value js_gfMulAddAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &MUL_ADD, 1); }

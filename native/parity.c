/*
 * The one primitive the erasure code across packs (src/repo/parity-code.ts) needs in C:
 *
 *   gfMulAdd(dst, coefs, src[, at])  /  gfMulAddAsync(dst, coefs, src) (on libuv's pool)
 *       dst is coefs.length stripes of equal length back to back; for each j,
 *       stripe_j[at, at + src.length) ^= coefs[j] * src, bytewise in GF(2^8) (polynomial
 *       0x11d; at defaults to 0).
 *
 * Encoding folds each data pack into the M parity stripes with its column of the Cauchy
 * matrix; decoding folds the K surviving members into the missing ones with the rows of the
 * inverted matrix. Both are this call: the small matrix work stays in TypeScript.
 * The multiply: a 256x256 product table (64 KiB) built at first use, and the fastest kernel
 * the CPU has (cpuid): GFNI's gf2p8affineqb with the 8x8 bit matrix of the coefficient
 * (512-bit with AVX-512BW, else 256-bit), else two 16-entry nibble tables per pshufb (AVX2,
 * SSSE3), else the byte table. TSBAK_PARITY_KERNEL=scalar|ssse3|avx2|gfni|gfni512 picks one
 * (TSBAK_PARITY_NO_SIMD=1: scalar); gfKernel() switches at run time (tests compare them all).
 */
#include <node_api.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/evp.h>

#include "napi-util.h"
#include "parity.h"
#include "pool-work.h"

static uint8_t mul_table[256][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* The multiply kernels, slowest first; each SIMD one is used only where cpuid says the CPU
 * (and the OS, for AVX state) has its instructions. */
enum { K_SCALAR, K_SSSE3, K_AVX2, K_GFNI, K_GFNI512, K_COUNT };
static const char *const kernel_names[K_COUNT] = {"scalar", "ssse3", "avx2", "gfni", "gfni512"};
static int kernel_ok[K_COUNT];
/* The kernel in use: the best the CPU has, or TSBAK_PARITY_KERNEL's (if the CPU has it). */
static volatile int kernel;

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
  kernel_ok[K_SCALAR] = 1;
#if defined(__x86_64__)
  __builtin_cpu_init();
  kernel_ok[K_SSSE3] = __builtin_cpu_supports("ssse3");
  kernel_ok[K_AVX2] = __builtin_cpu_supports("avx2");
  kernel_ok[K_GFNI] = kernel_ok[K_AVX2] && __builtin_cpu_supports("gfni");
  kernel_ok[K_GFNI512] = kernel_ok[K_GFNI] && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
  int k = K_COUNT - 1;
  while (!kernel_ok[k]) k--;
  const char *want = getenv("TSBAK_PARITY_KERNEL");
  if (getenv("TSBAK_PARITY_NO_SIMD")) want = "scalar";
  if (want)
    for (int i = 0; i < K_COUNT; i++)
      if (!strcmp(want, kernel_names[i]) && kernel_ok[i]) k = i;
  kernel = k;
}

#if defined(__x86_64__)
#include <immintrin.h>
/* Split-nibble multiply (the usual SIMD form): c*x = lo[x & 15] ^ hi[x >> 4] by pshufb. */
static void nibble_tables(uint8_t c, uint8_t lo[16], uint8_t hi[16]) {
  for (int i = 0; i < 16; i++) {
    lo[i] = mul_table[c][i];
    hi[i] = mul_table[c][i << 4];
  }
}

__attribute__((target("ssse3"))) static size_t mul_add_ssse3(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c) {
  uint8_t lo[16], hi[16];
  nibble_tables(c, lo, hi);
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

__attribute__((target("avx2"))) static size_t mul_add_avx2(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c) {
  uint8_t lo[16], hi[16];
  nibble_tables(c, lo, hi);
  const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)lo));
  const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)hi));
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(src + i));
    __m256i l = _mm256_shuffle_epi8(tlo, _mm256_and_si256(x, mask));
    __m256i h = _mm256_shuffle_epi8(thi, _mm256_and_si256(_mm256_srli_epi64(x, 4), mask));
    __m256i d = _mm256_loadu_si256((const __m256i *)(dst + i));
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(d, _mm256_xor_si256(l, h)));
  }
  return i;
}

/* Multiplying by c is linear over GF(2): an 8x8 bit matrix, which gf2p8affineqb applies to
 * every byte. Output bit i is the parity of (row byte 7-i) AND x; column j is c * 2^j. */
static uint64_t affine_matrix(uint8_t c) {
  uint64_t m = 0;
  for (int i = 0; i < 8; i++) {
    uint64_t row = 0;
    for (int j = 0; j < 8; j++)
      if (mul_table[c][1 << j] & (1 << i)) row |= 1u << j;
    m |= row << (8 * (7 - i));
  }
  return m;
}

__attribute__((target("gfni,avx2"))) static size_t mul_add_gfni(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c) {
  const __m256i a = _mm256_set1_epi64x((long long)affine_matrix(c));
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m256i x0 = _mm256_loadu_si256((const __m256i *)(src + i)), x1 = _mm256_loadu_si256((const __m256i *)(src + i + 32));
    __m256i d0 = _mm256_loadu_si256((const __m256i *)(dst + i)), d1 = _mm256_loadu_si256((const __m256i *)(dst + i + 32));
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(d0, _mm256_gf2p8affine_epi64_epi8(x0, a, 0)));
    _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(d1, _mm256_gf2p8affine_epi64_epi8(x1, a, 0)));
  }
  for (; i + 32 <= n; i += 32) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(src + i));
    __m256i d = _mm256_loadu_si256((const __m256i *)(dst + i));
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(d, _mm256_gf2p8affine_epi64_epi8(x, a, 0)));
  }
  return i;
}

__attribute__((target("gfni,avx512f,avx512bw"))) static size_t mul_add_gfni512(uint8_t *dst, const uint8_t *src, size_t n, uint8_t c) {
  const __m512i a = _mm512_set1_epi64((long long)affine_matrix(c));
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i x = _mm512_loadu_si512((const void *)(src + i));
    __m512i d = _mm512_loadu_si512((const void *)(dst + i));
    _mm512_storeu_si512((void *)(dst + i), _mm512_xor_si512(d, _mm512_gf2p8affine_epi64_epi8(x, a, 0)));
  }
  return i;
}
#endif

static void mul_add(uint8_t *restrict dst, const uint8_t *restrict src, size_t n, uint8_t c) {
  if (c == 0) return;
  size_t i = 0;
  if (c == 1) {
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
#if defined(__x86_64__)
  switch (kernel) {
    case K_GFNI512: i = mul_add_gfni512(dst, src, n, c); break;
    case K_GFNI: i = mul_add_gfni(dst, src, n, c); break;
    case K_AVX2: i = mul_add_avx2(dst, src, n, c); break;
    case K_SSSE3: i = mul_add_ssse3(dst, src, n, c); break;
    default: break;
  }
#endif
  const uint8_t *t = mul_table[c];
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

static int parse_mul_add_at(napi_env env, napi_value *argv, struct pool_job *job, int has_at) {
  struct mul_add_job *j = (struct mul_add_job *)job;
  void *dst, *coefs, *src;
  size_t dlen, m, n;
  if (get_ta(env, argv[0], napi_uint8_array, "gfMulAdd: dst must be a Uint8Array", 0, &dst, &dlen) < 0 ||
      get_ta(env, argv[1], napi_uint8_array, "gfMulAdd: coefs must be a Uint8Array", 1, &coefs, &m) < 0 ||
      get_ta(env, argv[2], napi_uint8_array, "gfMulAdd: src must be a Uint8Array", 0, &src, &n) < 0)
    return -1;
  double at = 0;
  napi_valuetype t = napi_undefined;
  if (has_at && napi_typeof(env, argv[3], &t) != napi_ok) return -1;
  if (t != napi_undefined && (t != napi_number || napi_get_value_double(env, argv[3], &at) != napi_ok || !(at >= 0) || at != (double)(size_t)at)) {
    throw_type(env, "gfMulAdd: at must be a non-negative integer");
    return -1;
  }
  if (dlen % m != 0 || (size_t)at > dlen / m || n > dlen / m - (size_t)at) {
    throw_range(env, "gfMulAdd: dst must be coefs.length stripes each at least at + src.length long");
    return -1;
  }
  pthread_once(&table_once, build_table);
  j->dst = (uint8_t *)dst + (size_t)at;
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

static int parse_mul_add(napi_env env, napi_value *argv, struct pool_job *job) { return parse_mul_add_at(env, argv, job, 1); }
/* The pool's form takes no `at`: its arguments are all held by references until it is done. */
static int parse_mul_add_async(napi_env env, napi_value *argv, struct pool_job *job) { return parse_mul_add_at(env, argv, job, 0); }

static const struct job_kind MUL_ADD = {"tsbak:gfMulAdd", 4, sizeof(struct mul_add_job), parse_mul_add, run_mul_add};
static const struct job_kind MUL_ADD_ASYNC = {"tsbak:gfMulAdd", 3, sizeof(struct mul_add_job), parse_mul_add_async, run_mul_add};
napi_value js_gfMulAdd(napi_env env, napi_callback_info info) { return call_job(env, info, &MUL_ADD, 0); }
napi_value js_gfMulAddAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &MUL_ADD_ASYNC, 1); }

/* gfKernel([name]): the multiply kernel in use, after switching to `name` if given (a
 * RangeError if this CPU lacks it). gfKernels(): the kernels this CPU has, slowest first.
 * For tests and scripts/bench-parity.mjs; the default is the fastest. */
napi_value js_gfKernel(napi_env env, napi_callback_info info) {
  pthread_once(&table_once, build_table);
  size_t argc = 1;
  napi_value argv[1], out;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t != napi_undefined) {
    char name[16];
    size_t len;
    if (t != napi_string || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
      throw_type(env, "gfKernel: name must be a string");
      return NULL;
    }
    int k = -1;
    for (int i = 0; i < K_COUNT; i++)
      if (!strcmp(name, kernel_names[i]) && kernel_ok[i]) k = i;
    if (k < 0) {
      throw_range(env, "gfKernel: this CPU has no such kernel (see gfKernels())");
      return NULL;
    }
    kernel = k;
  }
  if (napi_create_string_utf8(env, kernel_names[kernel], NAPI_AUTO_LENGTH, &out) != napi_ok) return NULL;
  return out;
}

napi_value js_gfKernels(napi_env env, napi_callback_info info) {
  pthread_once(&table_once, build_table);
  napi_value arr, s;
  if (napi_create_array(env, &arr) != napi_ok) return NULL;
  uint32_t n = 0;
  for (int i = 0; i < K_COUNT; i++)
    if (kernel_ok[i]) {
      if (napi_create_string_utf8(env, kernel_names[i], NAPI_AUTO_LENGTH, &s) != napi_ok || napi_set_element(env, arr, n++, s) != napi_ok) return NULL;
    }
  return arr;
}

/* gfSha256Async(data, out): SHA-256 of data into out (32 bytes), on libuv's pool. A parity
 * object is hashed twice (its payload for the header, then the whole object for its name):
 * tens of MiB that would otherwise hold the main thread. */
struct sha_job {
  struct pool_job base;
  const uint8_t *data;
  size_t n;
  uint8_t *out;
};

static int parse_sha(napi_env env, napi_value *argv, struct pool_job *job) {
  struct sha_job *j = (struct sha_job *)job;
  void *data, *out;
  size_t t;
  if (get_ta(env, argv[0], napi_uint8_array, "gfSha256Async: data must be a Uint8Array", 0, &data, &j->n) < 0 ||
      get_ta(env, argv[1], napi_uint8_array, "gfSha256Async: out must be 32 bytes", 32, &out, &t) < 0)
    return -1;
  j->data = data;
  j->out = out;
  return 0;
}

static void run_sha(struct pool_job *job) {
  struct sha_job *j = (struct sha_job *)job;
  unsigned int len = 0;
  if (EVP_Digest(j->data, j->n, j->out, &len, EVP_sha256(), NULL) != 1 || len != 32) j->base.failure = "gfSha256Async: SHA-256 failed";
}

static const struct job_kind SHA = {"tsbak:gfSha256", 2, sizeof(struct sha_job), parse_sha, run_sha};
napi_value js_gfSha256Async(napi_env env, napi_callback_info info) { return call_job(env, info, &SHA, 1); }

/* gfAlloc(size): a zeroed ArrayBuffer for parity stripes: a private anonymous mapping (zero
 * pages from the kernel, touched only where folded: a short group's stripes cost only what
 * it uses), 2 MiB-aligned and marked for huge pages: the stripes are tens of MiB written
 * once each, and a first touch of every 4 KiB page cost more than folding into it. */
struct stripes_map {
  void *base;
  size_t len;
};

static void free_stripes(napi_env env, void *data, void *hint) {
  struct stripes_map *m = hint;
  munmap(m->base, m->len);
  free(m);
}

napi_value js_gfAlloc(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  double d = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_get_value_double(env, argv[0], &d) != napi_ok || !(d >= 1 && d <= (double)(1ull << 40)) || d != (double)(size_t)d) {
    throw_range(env, "gfAlloc: size must be a positive integer");
    return NULL;
  }
  const size_t huge = 2u << 20;
  size_t n = (size_t)d, rounded = (n + huge - 1) & ~(huge - 1), len = rounded + huge;
  struct stripes_map *m = malloc(sizeof *m);
  uint8_t *base = m ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
  if (base == MAP_FAILED) {
    free(m);
    napi_throw_error(env, "ENOMEM", "gfAlloc: out of memory");
    return NULL;
  }
  /* Keep the 2 MiB-aligned part; the rest goes back at once. */
  uint8_t *p = (uint8_t *)(((uintptr_t)base + huge - 1) & ~(uintptr_t)(huge - 1));
  if (p > base) munmap(base, (size_t)(p - base));
  if (p + rounded < base + len) munmap(p + rounded, (size_t)(base + len - (p + rounded)));
  m->base = p;
  m->len = rounded;
#ifdef MADV_HUGEPAGE
  madvise(p, rounded, MADV_HUGEPAGE);
#endif
  if (napi_create_external_arraybuffer(env, p, n, free_stripes, m, &out) != napi_ok) {
    munmap(p, rounded);
    free(m);
    throw_napi_failure(env);
    return NULL;
  }
  return out;
}

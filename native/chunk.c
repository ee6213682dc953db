/* The chunker's inner loop (src/writer/chunker.ts): FastCDC's gear hash rolled over a byte
 * range. In C it scans ~2x as fast as the JS loop it replaced (1.2-2.0 against 0.5-0.9
 * GB/s here), and the main thread, which chunks every large file, spends that much less. */
#include "napi-util.h"
#include "chunk.h"

/* gearScan(buf: Uint8Array, from, to, mask: int32, gear: Int32Array(256), state: Int32Array(1))
 * rolls h = (h << 1) + gear[byte] (32-bit, wrapping) over buf[from, to), starting from
 * state[0]. Returns the index of the first byte after which (h & mask) == 0, or -1 with the
 * hash left in state[0] so a later scan can go on from it. */
static long gear_scan(const uint8_t *p, size_t from, size_t end, uint32_t mask, const uint32_t *gear,
                      uint32_t *state) {
  uint32_t h = *state;
  size_t i = from;
  /* Four bytes per test: one well-predicted branch instead of four (~1.3x here). */
  for (; i + 4 <= end; i += 4) {
    uint32_t h1 = (h << 1) + gear[p[i]];
    uint32_t h2 = (h1 << 1) + gear[p[i + 1]];
    uint32_t h3 = (h2 << 1) + gear[p[i + 2]];
    uint32_t h4 = (h3 << 1) + gear[p[i + 3]];
    if (((h1 & mask) == 0) | ((h2 & mask) == 0) | ((h3 & mask) == 0) | ((h4 & mask) == 0)) {
      if ((h1 & mask) == 0) return (long)i;
      if ((h2 & mask) == 0) return (long)i + 1;
      if ((h3 & mask) == 0) return (long)i + 2;
      return (long)i + 3;
    }
    h = h4;
  }
  for (; i < end; i++) {
    h = (h << 1) + gear[p[i]];
    if ((h & mask) == 0) return (long)i;
  }
  *state = h;
  return -1;
}

napi_value js_gearScan(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (get_args(env, info, 6, argv, NULL) < 0) return NULL;
  void *bufp, *gearp, *statep;
  size_t len, glen, slen;
  int64_t from, to;
  int32_t mask;
  if (get_ta(env, argv[0], napi_uint8_array, "gearScan: buf must be a Uint8Array", 0, &bufp, &len) < 0) return NULL;
  if (napi_get_value_int64(env, argv[1], &from) != napi_ok || napi_get_value_int64(env, argv[2], &to) != napi_ok ||
      napi_get_value_int32(env, argv[3], &mask) != napi_ok) {
    napi_throw_type_error(env, NULL, "gearScan: from, to and mask must be numbers");
    return NULL;
  }
  if (get_ta(env, argv[4], napi_int32_array, "gearScan: gear must be an Int32Array of 256", 256, &gearp, &glen) < 0 ||
      get_ta(env, argv[5], napi_int32_array, "gearScan: state must be an Int32Array", 1, &statep, &slen) < 0)
    return NULL;
  if (from < 0 || to < from || (uint64_t)to > len) {
    napi_throw_range_error(env, NULL, "gearScan: range outside the buffer");
    return NULL;
  }
  long found = gear_scan(bufp, (size_t)from, (size_t)to, (uint32_t)mask, gearp, (uint32_t *)statep);
  napi_value out;
  if (napi_create_double(env, (double)found, &out) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return out;
}

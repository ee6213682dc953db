/*
 * The few syscalls Node's fs module does not expose.
 *
 *   lgetxattr(path, name)            -> Buffer | null   (null when the attribute is absent)
 *   llistxattr(path)                 -> string[]
 *   lsetxattr(path, name, value[, flags])
 *   lremovexattr(path, name)
 *   dataExtents(fd, size)            -> [offset, length][]   (SEEK_DATA / SEEK_HOLE)
 *   mknod(path, mode, major, minor)
 *   lutimensNs(path, atimeNs, mtimeNs)   (nanoseconds, bigint or number; null = leave as is)
 *   lchmod(path, mode)               chmod of the entry itself: ENOTSUP on a symlink
 *   mallocTrim()                     -> boolean: glibc's malloc_trim(0), free heap pages back
 *                                    to the kernel (false elsewhere, or when none were)
 *
 * Paths (and xattr names) may be a string or a Buffer of raw bytes: file names on Linux are
 * bytes, not necessarily valid UTF-8. Nothing here follows symlinks. The calls are
 * synchronous: single, short syscalls on local metadata.
 *
 * Failures throw an Error shaped like Node's fs errors:
 *   message "ENOENT: no such file or directory, lgetxattr '/x'", .code 'ENOENT',
 *   .errno -2, .syscall 'lgetxattr', .path (the argument as given).
 */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "napi-util.h"
#include "syscalls.h"

/* ---- argument helpers ------------------------------------------------------------------- */

/*
 * An integer given as a Number (must be integral) or a BigInt, as sign + 128-bit magnitude
 * (hi:lo), so that nanosecond timestamps outside int64 (before 1678, after 2262) still work.
 * Plain 64-bit arithmetic only: __int128 division would need libgcc helpers at load time.
 * Returns 0 on success, -1 with a JS exception pending.
 */
typedef struct {
  int neg;
  uint64_t hi, lo;
} bigint_t;

static int get_big_arg(napi_env env, napi_value v, const char *what, bigint_t *out) {
  napi_valuetype t;
  char msg[160];
  NAPI_OK(napi_typeof(env, v, &t));
  if (t == napi_number) {
    double d;
    NAPI_OK(napi_get_value_double(env, v, &d));
    /* NaN, +-Infinity and fractions are rejected; beyond 2^63 a Number is not exact anyway. */
    if (d != d || d >= 0x1p63 || d <= -0x1p63 || d != trunc(d)) {
      snprintf(msg, sizeof msg, "The \"%s\" argument must be an integer (use a bigint beyond 2^53)", what);
      throw_range(env, msg);
      return -1;
    }
    out->neg = d < 0;
    out->hi = 0;
    out->lo = (uint64_t)(d < 0 ? -d : d);
    return 0;
  }
  if (t == napi_bigint) {
    int sign = 0;
    size_t count = 0;
    uint64_t words[2] = {0, 0};
    /* With sign and words both NULL, N-API only reports the word count. */
    NAPI_OK(napi_get_value_bigint_words(env, v, NULL, &count, NULL));
    if (count > 2) goto too_big;
    count = 2;
    NAPI_OK(napi_get_value_bigint_words(env, v, &sign, &count, words));
    out->neg = sign != 0 && (words[0] | words[1]) != 0;
    out->lo = words[0];
    out->hi = count > 1 ? words[1] : 0;
    return 0;
  }
  snprintf(msg, sizeof msg, "The \"%s\" argument must be of type number or bigint", what);
  throw_type(env, msg);
  return -1;
too_big:
  snprintf(msg, sizeof msg, "The \"%s\" argument is out of range", what);
  throw_range(env, msg);
  return -1;
fail:
  return -1;
}

static int get_int64_arg(napi_env env, napi_value v, const char *what, int64_t min, int64_t max,
                         int64_t *out) {
  bigint_t x;
  if (get_big_arg(env, v, what, &x) != 0) return -1;
  int ok = x.hi == 0 && (x.neg ? x.lo <= (uint64_t)INT64_MAX + 1 : x.lo <= (uint64_t)INT64_MAX);
  int64_t val = 0;
  if (ok) val = x.neg ? (int64_t)(0 - x.lo) : (int64_t)x.lo; /* two's complement wrap is intended */
  if (!ok || val < min || val > max) {
    char msg[160];
    snprintf(msg, sizeof msg, "The \"%s\" argument is out of range", what);
    throw_range(env, msg);
    return -1;
  }
  *out = val;
  return 0;
}

static napi_value js_null(napi_env env) {
  napi_value v;
  napi_get_null(env, &v);
  return v;
}

static napi_value js_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* ---- xattrs ----------------------------------------------------------------------------- */

napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  char *path = NULL, *name = NULL, *buf = NULL;
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (!(name = get_bytes_arg(env, argv[1], "name"))) goto fail;

  /* Size, then read; retry if the value grew in between (ERANGE). */
  for (;;) {
    ssize_t n = lgetxattr(path, name, NULL, 0);
    if (n < 0) {
      if (errno == ENODATA) { result = js_null(env); goto done; }
      throw_errno(env, errno, "lgetxattr", argv[0], path);
      goto fail;
    }
    free(buf);
    buf = malloc(n ? (size_t)n : 1);
    if (!buf) { napi_throw_error(env, "ENOMEM", "out of memory"); goto fail; }
    ssize_t m = lgetxattr(path, name, buf, (size_t)n);
    if (m < 0) {
      if (errno == ERANGE) continue;
      if (errno == ENODATA) { result = js_null(env); goto done; }
      throw_errno(env, errno, "lgetxattr", argv[0], path);
      goto fail;
    }
    NAPI_OK(napi_create_buffer_copy(env, (size_t)m, buf, NULL, &result));
    goto done;
  }
done:
fail:
  free(path);
  free(name);
  free(buf);
  return result;
}

napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL;
  char *path = NULL, *buf = NULL;
  ssize_t m = 0;
  if (get_args(env, info, 1, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;

  for (;;) {
    ssize_t n = llistxattr(path, NULL, 0);
    if (n < 0) {
      throw_errno(env, errno, "llistxattr", argv[0], path);
      goto fail;
    }
    free(buf);
    buf = malloc(n ? (size_t)n : 1);
    if (!buf) { napi_throw_error(env, "ENOMEM", "out of memory"); goto fail; }
    m = llistxattr(path, buf, (size_t)n);
    if (m < 0) {
      if (errno == ERANGE) continue;
      throw_errno(env, errno, "llistxattr", argv[0], path);
      goto fail;
    }
    break;
  }

  /* The list is NUL-separated names: "user.a\0security.selinux\0". */
  NAPI_OK(napi_create_array(env, &result));
  {
    uint32_t idx = 0;
    ssize_t i = 0;
    while (i < m) {
      size_t len = strnlen(buf + i, (size_t)(m - i));
      if (len > 0) {
        napi_value s;
        NAPI_OK(napi_create_string_utf8(env, buf + i, len, &s));
        NAPI_OK(napi_set_element(env, result, idx++, s));
      }
      i += (ssize_t)len + 1;
    }
  }
  goto done;
fail:
  result = NULL;
done:
  free(path);
  free(buf);
  return result;
}

napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[4], result = NULL;
  char *path = NULL, *name = NULL;
  size_t argc = 0;
  if (get_args(env, info, 4, argv, &argc)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (!(name = get_bytes_arg(env, argv[1], "name"))) goto fail;
  {
    bool is_buf = false;
    void *data = NULL;
    size_t len = 0;
    int64_t flags = 0;
    static const char empty = 0;
    NAPI_OK(napi_is_buffer(env, argv[2], &is_buf));
    if (!is_buf) { throw_type(env, "The \"value\" argument must be a Buffer"); goto fail; }
    NAPI_OK(napi_get_buffer_info(env, argv[2], &data, &len));
    if (argc > 3) {
      napi_valuetype t;
      NAPI_OK(napi_typeof(env, argv[3], &t));
      if (t != napi_undefined && get_int64_arg(env, argv[3], "flags", 0, INT32_MAX, &flags))
        goto fail;
    }
    /* A NULL value pointer could be taken as "remove" by some filesystems: never pass one. */
    if (lsetxattr(path, name, data ? data : (void *)&empty, len, (int)flags) != 0) {
      throw_errno(env, errno, "lsetxattr", argv[0], path);
      goto fail;
    }
  }
  result = js_undefined(env);
fail:
  free(path);
  free(name);
  return result;
}

napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  char *path = NULL, *name = NULL;
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (!(name = get_bytes_arg(env, argv[1], "name"))) goto fail;
  if (lremovexattr(path, name) != 0) {
    throw_errno(env, errno, "lremovexattr", argv[0], path);
    goto fail;
  }
  result = js_undefined(env);
fail:
  free(path);
  free(name);
  return result;
}

/* ---- sparse files ----------------------------------------------------------------------- */

static int push_extent(napi_env env, napi_value arr, uint32_t idx, int64_t off, int64_t len) {
  napi_value pair, a, b;
  if (napi_create_array_with_length(env, 2, &pair) != napi_ok ||
      napi_create_int64(env, off, &a) != napi_ok ||
      napi_create_int64(env, len, &b) != napi_ok ||
      napi_set_element(env, pair, 0, a) != napi_ok ||
      napi_set_element(env, pair, 1, b) != napi_ok ||
      napi_set_element(env, arr, idx, pair) != napi_ok) {
    throw_napi_failure(env);
    return -1;
  }
  return 0;
}

/*
 * Data extents of the open file fd within [0, size), via SEEK_DATA/SEEK_HOLE.
 * The fd's file offset is restored afterwards. Filesystems without hole support report the
 * whole file as data (the kernel's generic llseek does that); if lseek refuses SEEK_DATA
 * outright (EINVAL/ENOTSUP), one extent [0, size) is returned.
 */
napi_value js_dataExtents(napi_env env, napi_callback_info info) {
  napi_value argv[2], arr;
  int64_t fd64, size;
  uint32_t idx = 0;
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  if (get_int64_arg(env, argv[0], "fd", 0, INT32_MAX, &fd64)) return NULL;
  if (get_int64_arg(env, argv[1], "size", 0, INT64_MAX, &size)) return NULL;
  int fd = (int)fd64;
  if (napi_create_array(env, &arr) != napi_ok) { throw_napi_failure(env); return NULL; }

  off_t saved = lseek(fd, 0, SEEK_CUR);
  off_t pos = 0;
  while (pos < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) {
      int e = errno;
      if (e == ENXIO) break; /* no data at or after pos */
      if (pos == 0 && (e == EINVAL || e == ENOTSUP)) {
        if (push_extent(env, arr, idx++, 0, size)) goto fail;
        break;
      }
      throw_errno(env, e, "lseek", NULL, NULL);
      goto fail;
    }
    if (d >= size) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) {
      int e = errno;
      if (e == ENXIO) break; /* file shrank under us */
      throw_errno(env, e, "lseek", NULL, NULL);
      goto fail;
    }
    if (h > size) h = size; /* file grew: we only describe [0, size) */
    if (h <= d) break;
    if (push_extent(env, arr, idx++, d, h - d)) goto fail;
    pos = h;
  }
  if (saved >= 0) lseek(fd, saved, SEEK_SET);
  return arr;
fail:
  if (saved >= 0) lseek(fd, saved, SEEK_SET);
  return NULL;
}

/* ---- special files and times ------------------------------------------------------------ */

napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4], result = NULL;
  char *path = NULL;
  int64_t mode, maj, min;
  if (get_args(env, info, 4, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (get_int64_arg(env, argv[1], "mode", 0, UINT32_MAX, &mode)) goto fail;
  if (get_int64_arg(env, argv[2], "major", 0, UINT32_MAX, &maj)) goto fail;
  if (get_int64_arg(env, argv[3], "minor", 0, UINT32_MAX, &min)) goto fail;
  if (mknod(path, (mode_t)mode, makedev((unsigned)maj, (unsigned)min)) != 0) {
    throw_errno(env, errno, "mknod", argv[0], path);
    goto fail;
  }
  result = js_undefined(env);
fail:
  free(path);
  return result;
}

/* Nanoseconds -> timespec with floor semantics: -1ns is {tv_sec=-1, tv_nsec=999999999}. */
static int ns_to_timespec(napi_env env, napi_value v, const char *what, struct timespec *ts) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) { throw_napi_failure(env); return -1; }
  if (t == napi_undefined || t == napi_null) {
    ts->tv_sec = 0;
    ts->tv_nsec = UTIME_OMIT;
    return 0;
  }
  bigint_t ns;
  if (get_big_arg(env, v, what, &ns)) return -1;
  /* Long division of the 128-bit magnitude by 1e9, 32 bits at a time (r < 2^30, no overflow). */
  uint32_t limb[4] = {(uint32_t)(ns.hi >> 32), (uint32_t)ns.hi, (uint32_t)(ns.lo >> 32),
                      (uint32_t)ns.lo};
  uint64_t r = 0;
  for (int i = 0; i < 4; i++) {
    uint64_t cur = (r << 32) | limb[i];
    limb[i] = (uint32_t)(cur / 1000000000u);
    r = cur % 1000000000u;
  }
  uint64_t qhi = ((uint64_t)limb[0] << 32) | limb[1];
  uint64_t q = ((uint64_t)limb[2] << 32) | limb[3];
  int64_t sec;
  long rem;
  /* Floor semantics for negatives: -|x| = -(q*1e9 + r) = -(q+1)*1e9 + (1e9 - r). */
  if (qhi != 0 || q >= (uint64_t)INT64_MAX) goto range;
  if (!ns.neg) {
    sec = (int64_t)q;
    rem = (long)r;
  } else if (r == 0) {
    sec = -(int64_t)q;
    rem = 0;
  } else {
    sec = -(int64_t)q - 1;
    rem = (long)(1000000000u - r);
  }
  if (sizeof(time_t) < 8 && (sec > INT32_MAX || sec < INT32_MIN)) goto range;
  ts->tv_sec = (time_t)sec;
  ts->tv_nsec = rem;
  return 0;
range : {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument is out of range", what);
  throw_range(env, msg);
  return -1;
}
}

napi_value js_lutimensNs(napi_env env, napi_callback_info info) {
  napi_value argv[3], result = NULL;
  char *path = NULL;
  struct timespec ts[2];
  if (get_args(env, info, 3, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (ns_to_timespec(env, argv[1], "atimeNs", &ts[0])) goto fail;
  if (ns_to_timespec(env, argv[2], "mtimeNs", &ts[1])) goto fail;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) {
    throw_errno(env, errno, "utimensat", argv[0], path);
    goto fail;
  }
  result = js_undefined(env);
fail:
  free(path);
  return result;
}

/* fchmodat2 (Linux 6.6) takes AT_SYMLINK_NOFOLLOW in one call; before it, glibc's fchmodat
   does the same through an O_PATH descriptor and /proc (and glibc 2.36 does not know the
   new syscall). Either way a symlink in the path's last place is never followed. */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
napi_value js_lchmod(napi_env env, napi_callback_info info) {
  napi_value argv[2], result = NULL;
  char *path = NULL;
  int64_t mode;
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  if (!(path = get_bytes_arg(env, argv[0], "path"))) goto fail;
  if (get_int64_arg(env, argv[1], "mode", 0, 07777, &mode)) goto fail;
  static int no_fchmodat2;
  long rc = -1;
  if (!no_fchmodat2) {
    rc = syscall(SYS_fchmodat2, AT_FDCWD, path, (mode_t)mode, AT_SYMLINK_NOFOLLOW);
    if (rc != 0 && errno == ENOSYS) no_fchmodat2 = 1;
  }
  if (no_fchmodat2) rc = fchmodat(AT_FDCWD, path, (mode_t)mode, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) {
    throw_errno(env, errno, "fchmodat", argv[0], path);
    goto fail;
  }
  result = js_undefined(env);
fail:
  free(path);
  return result;
}

/* A long-lived process after a burst of work (tsbak watch after a snapshot): glibc keeps the
   free pages between live chunks of its heaps; malloc_trim gives them back (MADV_DONTNEED). */
napi_value js_mallocTrim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  bool released = malloc_trim(0) != 0;
#else
  bool released = false;
#endif
  if (napi_get_boolean(env, released, &result) != napi_ok) return NULL;
  return result;
}

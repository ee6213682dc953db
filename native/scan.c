/*
 * Batched directory work for the backup walk, run on libuv's thread pool.
 *
 *   scanDir(path, withXattrs) -> Promise<{ names, ends, stats, xattrs, xends }>
 *     Every entry of the directory (not . and ..), sorted by name bytes, with its statx
 *     (relative to the directory fd: no path lookup per entry) and, if asked, its xattrs.
 *       names   Buffer, the names back to back; entry i is names[ends[i-1] .. ends[i])
 *       stats   BigInt64Array, SCAN_FIELDS per entry (layout below)
 *       xattrs  Buffer, per entry (xends like ends): { u32le nameLen, name, u32le valueLen, value }*
 *   readSmallFiles(dir, names, ends, expect, out[, macKey, ids]) -> Promise<Int32Array>
 *     Reads each named regular file of `dir` whole into `out`, back to back. expect holds
 *     (size, mtimeNs, ctimeNs) per file, from the scan; result i is the byte count, -1 if
 *     the file is not what the scan saw (changed, grew, shrank, replaced), or -errno. With
 *     macKey, each file's blob id (HMAC-SHA256, blob.c) goes to ids, 32 bytes per file.
 *
 * Why: a backup of many small files spends most of its main-thread time in one syscall
 * round trip per lstat, listxattr, open, read, fstat and close, and in hashing. One call
 * per directory does them on a pool thread, leaving the main thread to encode; statx and
 * openat relative to the directory fd also skip the path walk of every full path.
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "napi-util.h"
#include "pool-work.h"
#include "blob.h"
#include "scan.h"

/* Layout of one entry in `stats` (keep in sync with src/platform/native/scan.ts). */
enum {
  F_ERR, /* 0, or the errno of statx (the entry vanished, ...) */
  F_MODE, F_UID, F_GID, F_NLINK, F_SIZE, F_BLOCKS, F_INO, F_DEV, F_RDEV,
  F_ATIME, F_MTIME, F_CTIME, F_BTIME, /* nanoseconds since the epoch */
  F_FLAGS,
  SCAN_FIELDS = 16
};
#define FLAG_TIME_RANGE 1 /* a time does not fit int64 nanoseconds: use lstat instead */
#define FLAG_NO_XATTRS 2  /* xattrs were asked for but could not be read: read them yourself */

/* Paths handed to a syscall stay below PATH_MAX (see src/platform/long-path.ts). */
#define MAX_PATH 4000

typedef struct {
  char *p;
  size_t len, cap;
} bytes_t;

static int grow(bytes_t *b, size_t more) {
  /* len <= cap always: compared as a difference, so that no sum can wrap */
  if (more <= b->cap - b->len) return 0;
  if (more > SIZE_MAX / 2 - b->len) return -1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap - b->len < more) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int put(bytes_t *b, const void *data, size_t n) {
  if (grow(b, n)) return -1;
  memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static int put_u32(bytes_t *b, uint32_t v) {
  unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  return put(b, le, 4);
}

/* ns since the epoch, or -1 when it does not fit int64 (then *ok = 0). */
static int64_t ns_of(struct statx_timestamp t, int *ok) {
  if (t.tv_sec > INT64_MAX / 1000000000 - 1 || t.tv_sec < INT64_MIN / 1000000000 + 1) {
    *ok = 0;
    return 0;
  }
  return t.tv_sec * 1000000000 + (int64_t)t.tv_nsec;
}

/* Rejects with err, or (when making the error failed) with whatever is pending: never leaves the promise unsettled. */
static void reject(napi_env env, napi_deferred d, napi_value err) {
  if (!err) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) napi_get_and_clear_last_exception(env, &err);
    if (!err) napi_get_undefined(env, &err);
  }
  napi_reject_deferred(env, d, err);
}

/* ---- scanDir ------------------------------------------------------------------------------ */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int with_xattrs;
  int err;
  const char *syscall;
  bytes_t names;       /* names, NUL-terminated while scanning */
  size_t n;
  uint32_t *starts;    /* start of entry i in names (scan order) */
  uint32_t *order;     /* entry indexes sorted by name */
  int64_t *stats;      /* SCAN_FIELDS per entry, sorted order */
  bytes_t xattrs;
  uint32_t *xends;
} scan_t;

/* Byte order, as trees sort names (strcmp compares as unsigned char). */
static int by_name(const void *a, const void *b, void *base) {
  return strcmp((const char *)base + *(const uint32_t *)a, (const char *)base + *(const uint32_t *)b);
}

/* The entry's xattrs appended to out; 0, or -1 when they could not be read (the caller reads them itself). */
static int read_xattrs(const char *path, bytes_t *out) {
  char stack[4096];
  char *list = stack;
  ssize_t n = llistxattr(path, stack, sizeof stack);
  if (n < 0 && errno == ERANGE) {
    ssize_t want = llistxattr(path, NULL, 0);
    if (want < 0 || !(list = malloc((size_t)want + 1))) return -1;
    n = llistxattr(path, list, (size_t)want);
  }
  if (n < 0) {
    if (list != stack) free(list);
    return errno == ENOTSUP || errno == EOPNOTSUPP ? 0 : -1;
  }
  size_t start = out->len;
  char vstack[4096];
  int rc = 0;
  for (ssize_t i = 0; i < n && rc == 0;) {
    const char *name = list + i;
    size_t nlen = strnlen(name, (size_t)(n - i));
    i += (ssize_t)nlen + 1;
    if (!nlen) continue;
    char *val = vstack;
    ssize_t v = lgetxattr(path, name, vstack, sizeof vstack);
    if (v < 0 && errno == ERANGE) {
      ssize_t want = lgetxattr(path, name, NULL, 0);
      if (want < 0 || !(val = malloc((size_t)want + 1))) { rc = -1; break; }
      v = lgetxattr(path, name, val, (size_t)want);
    }
    if (v < 0) {
      if (errno != ENODATA) rc = -1; /* ENODATA: removed since the listing */
    } else if (put_u32(out, (uint32_t)nlen) || put(out, name, nlen) || put_u32(out, (uint32_t)v) || put(out, val, (size_t)v)) {
      rc = -1;
    }
    if (val != vstack) free(val);
  }
  if (list != stack) free(list);
  if (rc) out->len = start;
  return rc;
}

static void scan_execute(napi_env env, void *data) {
  scan_t *s = data;
  /* O_NOATIME: listing for a backup should not change what the next one records (EPERM: not ours). */
  int fd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    s->err = errno;
    s->syscall = "open";
    return;
  }
  DIR *d = fdopendir(fd);
  if (!d) {
    s->err = errno;
    s->syscall = "fdopendir";
    close(fd);
    return;
  }
  size_t cap = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno) {
        s->err = errno;
        s->syscall = "readdir";
      }
      break;
    }
    if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
    if (s->n == cap) {
      cap = cap ? cap * 2 : 64;
      uint32_t *st = realloc(s->starts, cap * sizeof *st);
      if (!st) { s->err = ENOMEM; s->syscall = "readdir"; break; }
      s->starts = st;
    }
    s->starts[s->n++] = (uint32_t)s->names.len;
    if (put(&s->names, e->d_name, strlen(e->d_name) + 1)) { s->err = ENOMEM; s->syscall = "readdir"; break; }
  }
  if (s->err) goto out;
  s->order = malloc((s->n ? s->n : 1) * sizeof *s->order);
  s->stats = calloc(s->n ? s->n * SCAN_FIELDS : 1, sizeof *s->stats);
  s->xends = malloc((s->n ? s->n : 1) * sizeof *s->xends);
  if (!s->order || !s->stats || !s->xends) { s->err = ENOMEM; s->syscall = "scandir"; goto out; }
  memcpy(s->order, s->starts, s->n * sizeof *s->order);
  qsort_r(s->order, s->n, sizeof *s->order, by_name, s->names.p);
  size_t plen = strlen(s->path);
  char path[MAX_PATH + NAME_MAX + 32];
  for (size_t i = 0; i < s->n; i++) {
    const char *name = s->names.p + s->order[i];
    int64_t *f = s->stats + i * SCAN_FIELDS;
    struct statx x;
    if (statx(fd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS | STATX_BTIME, &x) != 0) {
      f[F_ERR] = errno;
      s->xends[i] = (uint32_t)s->xattrs.len;
      continue;
    }
    int ok = 1;
    f[F_MODE] = x.stx_mode;
    f[F_UID] = x.stx_uid;
    f[F_GID] = x.stx_gid;
    f[F_NLINK] = x.stx_nlink;
    f[F_SIZE] = (int64_t)x.stx_size;
    f[F_BLOCKS] = (int64_t)x.stx_blocks;
    f[F_INO] = (int64_t)x.stx_ino;
    /* As libuv fills st_dev/st_rdev from statx, so equal to what fs.lstat reports. */
    f[F_DEV] = (int64_t)makedev(x.stx_dev_major, x.stx_dev_minor);
    f[F_RDEV] = (int64_t)makedev(x.stx_rdev_major, x.stx_rdev_minor);
    f[F_ATIME] = ns_of(x.stx_atime, &ok);
    f[F_MTIME] = ns_of(x.stx_mtime, &ok);
    f[F_CTIME] = ns_of(x.stx_ctime, &ok);
    f[F_BTIME] = (x.stx_mask & STATX_BTIME) ? ns_of(x.stx_btime, &ok) : 0;
    f[F_FLAGS] = ok ? 0 : FLAG_TIME_RANGE;
    /* Not asked: the flags stay as they are without xattrs (fingerprints compare them). */
    if (s->with_xattrs) {
      size_t nlen = strlen(name);
      if (plen + 1 + nlen < MAX_PATH)
        snprintf(path, sizeof path, "%s%s%s", s->path, plen && s->path[plen - 1] == '/' ? "" : "/", name);
      else
        snprintf(path, sizeof path, "/proc/self/fd/%d/%s", fd, name);
      if (read_xattrs(path, &s->xattrs) != 0) f[F_FLAGS] |= FLAG_NO_XATTRS;
    }
    s->xends[i] = (uint32_t)s->xattrs.len;
  }
out:
  closedir(d);
}

/* scan_execute on the pool (scanDirSync runs it on the main thread). */
static void scan_execute_pool(napi_env env, void *data) {
  pool_thread_priority();
  scan_execute(env, data);
}

static void scan_free(scan_t *s) {
  free(s->path);
  free(s->names.p);
  free(s->starts);
  free(s->order);
  free(s->stats);
  free(s->xattrs.p);
  free(s->xends);
  free(s);
}

static napi_value typed_copy(napi_env env, napi_typedarray_type type, const void *src, size_t count, size_t elem) {
  void *data = NULL;
  napi_value ab, arr;
  if (napi_create_arraybuffer(env, count * elem, &data, &ab) != napi_ok) return NULL;
  if (count) memcpy(data, src, count * elem);
  if (napi_create_typedarray(env, type, count, ab, 0, &arr) != napi_ok) return NULL;
  return arr;
}

/* The scan as a JS object ({names, ends, stats, xattrs, xends}), or NULL with *error set (an
 * errno error; NULL when N-API itself failed). */
static napi_value scan_result(napi_env env, scan_t *s, napi_value *error) {
  napi_value result = NULL, v;
  *error = NULL;
  if (s->err) {
    napi_value jpath = NULL;
    napi_create_buffer_copy(env, strlen(s->path), s->path, NULL, &jpath);
    *error = make_errno_error(env, s->err, s->syscall, jpath, s->path);
    return NULL;
  }
  /* Names in sorted order, without their NULs. */
  bytes_t sorted = {0};
  uint32_t *ends = malloc((s->n ? s->n : 1) * sizeof *ends);
  if (!ends || grow(&sorted, s->names.len + 1)) {
    free(ends);
    free(sorted.p);
    *error = make_errno_error(env, ENOMEM, "scandir", NULL, s->path);
    return NULL;
  }
  for (size_t i = 0; i < s->n; i++) {
    const char *name = s->names.p + s->order[i];
    put(&sorted, name, strlen(name));
    ends[i] = (uint32_t)sorted.len;
  }
  int ok = napi_create_object(env, &result) == napi_ok;
  ok = ok && napi_create_buffer_copy(env, sorted.len, sorted.len ? sorted.p : "", NULL, &v) == napi_ok &&
       napi_set_named_property(env, result, "names", v) == napi_ok;
  ok = ok && (v = typed_copy(env, napi_uint32_array, ends, s->n, 4)) && napi_set_named_property(env, result, "ends", v) == napi_ok;
  ok = ok && (v = typed_copy(env, napi_bigint64_array, s->stats, s->n * SCAN_FIELDS, 8)) &&
       napi_set_named_property(env, result, "stats", v) == napi_ok;
  ok = ok && napi_create_buffer_copy(env, s->xattrs.len, s->xattrs.len ? s->xattrs.p : "", NULL, &v) == napi_ok &&
       napi_set_named_property(env, result, "xattrs", v) == napi_ok;
  ok = ok && (v = typed_copy(env, napi_uint32_array, s->xends, s->n, 4)) && napi_set_named_property(env, result, "xends", v) == napi_ok;
  free(ends);
  free(sorted.p);
  return ok ? result : NULL;
}

static void scan_complete(napi_env env, napi_status status, void *data) {
  scan_t *s = data;
  napi_value result, error;
  if (status != napi_ok) {
    s->err = ECANCELED;
    s->syscall = "scandir";
  }
  if ((result = scan_result(env, s, &error)))
    napi_resolve_deferred(env, s->deferred, result);
  else
    reject(env, s->deferred, error);
  napi_delete_async_work(env, s->work);
  scan_free(s);
}

/* The arguments (path, withXattrs) as a scan to run; NULL with an exception pending. */
static scan_t *scan_args(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool with = false;
  if (get_args(env, info, 2, argv, NULL)) return NULL;
  scan_t *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (!(s->path = get_bytes_arg(env, argv[0], "path"))) {
    scan_free(s);
    return NULL;
  }
  napi_get_value_bool(env, argv[1], &with); /* not a boolean: false */
  s->with_xattrs = with;
  return s;
}

/* The same scan on the calling thread: for small directories, where handing the work to
 * the pool and back costs more than the work. Throws the errno error. */
napi_value js_scanDirSync(napi_env env, napi_callback_info info) {
  scan_t *s = scan_args(env, info);
  if (!s) return NULL;
  scan_execute(env, s);
  napi_value result, error;
  if (!(result = scan_result(env, s, &error))) {
    if (error) napi_throw(env, error);
    else throw_napi_failure(env);
  }
  scan_free(s);
  return result;
}

napi_value js_scanDir(napi_env env, napi_callback_info info) {
  napi_value promise, name;
  scan_t *s = scan_args(env, info);
  if (!s) return NULL;
  if (napi_create_promise(env, &s->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "tsbak:scanDir", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, scan_execute_pool, scan_complete, s, &s->work) != napi_ok ||
      napi_queue_async_work(env, s->work) != napi_ok) {
    throw_napi_failure(env);
    scan_free(s); /* a created promise is left pending: nothing else refers to it */
    return NULL;
  }
  return promise;
}

/* ---- readSmallFiles ----------------------------------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref out_ref; /* keeps `out` alive while the pool thread writes into it */
  char *dir;
  char *names;      /* NUL-separated copies */
  size_t n;
  int64_t *expect;  /* size, mtime, ctime per file */
  unsigned char *out;
  size_t out_len;
  int32_t *result;
  int err;
  unsigned char mac[32]; /* with ids: the MAC key of blob ids */
  unsigned char *ids;    /* optional: each file's blob id, 32 bytes per file */
  napi_ref ids_ref;
} smallread_t;

static int32_t read_one(int dfd, const char *name, const int64_t *want, unsigned char *dst) {
  int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK; /* NONBLOCK: a fifo put in its place must not hang us */
  int fd = openat(dfd, name, flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = openat(dfd, name, flags); /* O_NOATIME needs ownership */
  if (fd < 0) return -errno;
  size_t size = (size_t)want[0], got = 0;
  int32_t rc = 0;
  while (got < size) {
    ssize_t r = pread(fd, dst + got, size - got, (off_t)got);
    if (r < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      break;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  if (rc == 0) {
    struct statx x;
    int ok = 1;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x) != 0) rc = -errno;
    else if (!S_ISREG(x.stx_mode) || got != size || x.stx_size != (uint64_t)want[0] ||
             ns_of(x.stx_mtime, &ok) != want[1] || ns_of(x.stx_ctime, &ok) != want[2] || !ok)
      rc = -1;
    else
      rc = (int32_t)got;
  }
  close(fd);
  return rc;
}

static void smallread_execute(napi_env env, void *data) {
  pool_thread_priority();
  smallread_t *r = data;
  int dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    r->err = errno;
    return;
  }
  const char *name = r->names;
  size_t at = 0;
  for (size_t i = 0; i < r->n; i++) {
    size_t size = (size_t)r->expect[i * 3];
    /* at <= out_len holds (checked before each step); the sum at + size could wrap */
    r->result[i] = at <= r->out_len && size <= r->out_len - at ? read_one(dfd, name, r->expect + i * 3, r->out + at) : -EINVAL;
    /* Hashed here, on the thread that read it: the main thread then only looks the id up. */
    if (r->ids && r->result[i] >= 0 && blob_id(r->mac, r->out + at, (size_t)r->result[i], r->ids + 32 * i) != 0) r->result[i] = -ENOMEM;
    at += size;
    name += strlen(name) + 1;
  }
  close(dfd);
}

static void smallread_free(napi_env env, smallread_t *r) {
  if (r->out_ref) napi_delete_reference(env, r->out_ref);
  if (r->ids_ref) napi_delete_reference(env, r->ids_ref);
  free(r->dir);
  free(r->names);
  free(r->expect);
  free(r->result);
  free(r);
}

static void smallread_complete(napi_env env, napi_status status, void *data) {
  smallread_t *r = data;
  if (status != napi_ok) r->err = ECANCELED;
  if (r->err) {
    napi_value jpath = NULL;
    napi_create_buffer_copy(env, strlen(r->dir), r->dir, NULL, &jpath);
    reject(env, r->deferred, make_errno_error(env, r->err, "open", jpath, r->dir));
  } else {
    napi_value arr = typed_copy(env, napi_int32_array, r->result, r->n, 4);
    if (arr) napi_resolve_deferred(env, r->deferred, arr);
    else reject(env, r->deferred, make_errno_error(env, ENOMEM, "read", NULL, r->dir));
  }
  napi_delete_async_work(env, r->work);
  smallread_free(env, r);
}

napi_value js_readSmallFiles(napi_env env, napi_callback_info info) {
  napi_value argv[7], promise, wname;
  size_t argc;
  if (get_args(env, info, 7, argv, &argc)) return NULL;
  smallread_t *r = calloc(1, sizeof *r);
  if (!r) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  void *names = NULL, *ends = NULL, *expect = NULL, *out = NULL;
  size_t names_len = 0, n_ends = 0, n_expect = 0;
  napi_typedarray_type t1, t2;
  napi_value ab;
  size_t off;
  if (!(r->dir = get_bytes_arg(env, argv[0], "dir"))) goto fail;
  if (napi_get_buffer_info(env, argv[1], &names, &names_len) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &t1, &n_ends, &ends, &ab, &off) != napi_ok ||
      napi_get_typedarray_info(env, argv[3], &t2, &n_expect, &expect, &ab, &off) != napi_ok ||
      napi_get_buffer_info(env, argv[4], &out, &r->out_len) != napi_ok || t1 != napi_uint32_array ||
      t2 != napi_bigint64_array || n_expect != n_ends * 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readSmallFiles(dir, names: Buffer, ends: Uint32Array, expect: BigInt64Array, out: Buffer)");
    goto fail;
  }
  r->n = n_ends;
  r->out = out;
  r->names = malloc(names_len + r->n + 1);
  r->expect = malloc((r->n ? r->n : 1) * 3 * sizeof *r->expect);
  r->result = malloc((r->n ? r->n : 1) * sizeof *r->result);
  if (!r->names || !r->expect || !r->result) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    goto fail;
  }
  {
    size_t prev = 0, w = 0;
    for (size_t i = 0; i < r->n; i++) {
      size_t end = ((const uint32_t *)ends)[i];
      if (end < prev || end > names_len || memchr((const char *)names + prev, 0, end - prev) || end == prev) {
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "readSmallFiles: bad name ends");
        goto fail;
      }
      memcpy(r->names + w, (const char *)names + prev, end - prev);
      w += end - prev;
      r->names[w++] = 0;
      prev = end;
    }
  }
  memcpy(r->expect, expect, r->n * 3 * sizeof *r->expect);
  if (argc >= 7) {
    /* Optional: macKey (32 bytes) and ids (32 bytes per file, written by the pool thread). */
    void *mac = NULL, *ids = NULL;
    size_t mac_len = 0, ids_len = 0;
    if (napi_get_buffer_info(env, argv[5], &mac, &mac_len) != napi_ok || napi_get_buffer_info(env, argv[6], &ids, &ids_len) != napi_ok ||
        mac_len != 32 || ids_len < r->n * 32) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "readSmallFiles: macKey must be 32 bytes and ids 32 bytes per file");
      goto fail;
    }
    memcpy(r->mac, mac, 32);
    r->ids = ids;
    if (napi_create_reference(env, argv[6], 1, &r->ids_ref) != napi_ok) {
      throw_napi_failure(env);
      goto fail;
    }
  }
  if (napi_create_reference(env, argv[4], 1, &r->out_ref) != napi_ok ||
      napi_create_promise(env, &r->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "tsbak:readSmallFiles", NAPI_AUTO_LENGTH, &wname) != napi_ok ||
      napi_create_async_work(env, NULL, wname, smallread_execute, smallread_complete, r, &r->work) != napi_ok ||
      napi_queue_async_work(env, r->work) != napi_ok) {
    throw_napi_failure(env);
    goto fail;
  }
  return promise;
fail:
  smallread_free(env, r);
  return NULL;
}

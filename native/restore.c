/*
 * The restore's small files, created in a batch (src/restore/small-files.ts): in JavaScript
 * five fs calls per file cost more than the file. A synchronous form and an async one
 * (writeFilesAsync: the same arguments, the work on libuv's thread pool, a Promise<void>;
 * the arguments must not be touched until it settles).
 *
 *   writeFiles(paths, pathStarts, replace, chown, uids, gids, modes, times, data, segStart,
 *              segOff, segLen, res, dirfds)
 *       Creates file i (path: NUL-terminated at paths[pathStarts[i]], relative to the
 *       directory descriptor dirfds[i] as openat takes it: the restore gives a directory's
 *       O_PATH handle and one name; what is there is removed first when replace[i], and the
 *       file is created O_EXCL|O_NOFOLLOW, so nothing in its place is ever written through), writes its segments [segStart[i], segStart[i+1]) of data one after the
 *       other, then, through the descriptor, fchown(uids[i], gids[i]) when chown[i],
 *       fchmod(modes[i]) and futimens(times[2i], times[2i+1] ns): applyMeta's order, for a
 *       file without xattrs in a directory without a default ACL. res[5i..5i+4] = errno of a
 *       hard failure (0: none), the step it failed at (1 create, 2 write, 3 close), and the
 *       errno of fchown, fchmod, futimens (the caller decides which are warnings). A file
 *       with a hard failure is removed.
 *
 *   copyRangeAsync(where, res)
 *       Copies where[3] bytes of file descriptor where[0] from offset where[1] to offset
 *       where[2] (copy_file_range, in the kernel: no user-space buffer); from descriptor
 *       where[4] instead when where has 5 elements (a chunk another file already holds). res[0] = 0 when all
 *       were copied, else the errno (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL: a file system or
 *       kernel that cannot; the caller then writes the bytes another way). Async only.
 */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "napi-util.h"
#include "pool-work.h"
#include "restore.h"

int write_all(int fd, const uint8_t *p, size_t len, off_t pos) {
  while (len) {
    ssize_t w = pwrite(fd, p, len, pos);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    /* No progress and no error: the device takes nothing (a full disk reports it this way
       on some filesystems); looping would spin forever. */
    if (w == 0) return ENOSPC;
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
  struct pool_job base;
  char *paths;
  uint8_t *replace, *chown_, *data;
  uint32_t *starts, *modes, *uids, *gids, *seg_start, *seg_off, *seg_len;
  int64_t *times;
  int32_t *res, *dirfds;
  size_t n;
};

static int parse_write(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct write_job *j = (struct write_job *)pj;
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
      get_ta(env, argv[12], napi_int32_array, "res: an Int32Array, five per file", 5 * j->n, (void **)&j->res, &t) ||
      get_ta(env, argv[13], napi_int32_array, "dirfds: an Int32Array per file", j->n, (void **)&j->dirfds, &t))
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

static void run_write(struct pool_job *pj) {
  struct write_job *j = (struct write_job *)pj;
  for (size_t i = 0; i < j->n; i++) {
    const char *p = j->paths + j->starts[i];
    int dfd = j->dirfds[i];
    int32_t *r = j->res + 5 * i;
    r[0] = r[1] = r[2] = r[3] = r[4] = 0;
    if (j->replace[i] && unlinkat(dfd, p, 0) != 0 && errno != ENOENT && errno != EISDIR) {
      r[0] = errno;
      r[1] = 1;
      continue;
    }
    /* O_EXCL: the file is always new (an entry in its place was removed above), so nothing
       already there, a symlink or another name of an outside inode, is ever written through. */
    int fd = openat(dfd, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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
    if (r[0]) unlinkat(dfd, p, 0);
  }
}

static const struct job_kind WRITE = {"tsbak:writeFiles", 14, sizeof(struct write_job), parse_write, run_write};
napi_value js_writeFiles(napi_env env, napi_callback_info info) { return call_job(env, info, &WRITE, 0); }
napi_value js_writeFilesAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &WRITE, 1); }

/* ---- copying a range within a file (a restore's chunk that repeats in its file) ------------- */

struct copy_job {
  struct pool_job base;
  double *where;
  size_t nwhere;
  int32_t *res;
};

static int parse_copy(napi_env env, napi_value *argv, struct pool_job *pj) {
  struct copy_job *j = (struct copy_job *)pj;
  size_t t;
  return get_ta(env, argv[0], napi_float64_array, "where: a Float64Array [fd, from, to, length, (source fd)]", 4, (void **)&j->where, &j->nwhere) ||
         get_ta(env, argv[1], napi_int32_array, "res: an Int32Array [errno]", 1, (void **)&j->res, &t);
}

static int whole(double v, double max) { return v >= 0 && v <= max && v == (double)(int64_t)v; }

static void run_copy(struct pool_job *pj) {
  struct copy_job *j = (struct copy_job *)pj;
  const double max_off = 9007199254740991.0;
  if (!whole(j->where[0], INT32_MAX) || !whole(j->where[1], max_off) || !whole(j->where[2], max_off) || !whole(j->where[3], max_off) ||
      (j->nwhere > 4 && !whole(j->where[4], INT32_MAX))) {
    j->base.failure = "copyRange: fd, offsets or length is not a whole number in range";
    return;
  }
  int fd = (int)j->where[0];
  int src = j->nwhere > 4 ? (int)j->where[4] : fd;
  loff_t in = (loff_t)j->where[1], out = (loff_t)j->where[2];
  size_t len = (size_t)j->where[3];
  j->res[0] = 0;
  while (len) {
    ssize_t n = copy_file_range(src, &in, fd, &out, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      j->res[0] = errno;
      return;
    }
    /* Nothing copied (the source range ends early): not what the caller expects. */
    if (n == 0) {
      j->res[0] = ENODATA;
      return;
    }
    len -= (size_t)n;
  }
}

static const struct job_kind COPY = {"tsbak:copyRange", 2, sizeof(struct copy_job), parse_copy, run_copy};
napi_value js_copyRangeAsync(napi_env env, napi_callback_info info) { return call_job(env, info, &COPY, 1); }

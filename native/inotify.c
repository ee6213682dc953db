/*
 * inotify for `tsbak watch`: Node's fs.watch hides watch descriptors, IN_Q_OVERFLOW and the
 * ENOSPC of the watch limit, and gives names as strings. Here the caller gets the raw event
 * records and does the bookkeeping itself (src/platform/native/inotify.ts parses them).
 *
 *   inotifyOpen(onEvents)            -> id    inotify_init1(IN_NONBLOCK | IN_CLOEXEC), watched
 *                                             by a uv_poll on the main loop; onEvents(Buffer)
 *                                             gets every read's bytes (struct inotify_event
 *                                             records, names as raw bytes)
 *   inotifyAddWatch(id, path, mask)  -> wd    (throws ENOSPC at max_user_watches, ENOENT, ...)
 *   inotifyRmWatch(id, wd)                    (EINVAL for a watch already gone is ignored)
 *   inotifyClose(id)                          stops the poll, closes the fd
 *   listSubdirs(path)                -> Buffer[]  names of the subdirectories (not symlinks),
 *                                             the directory opened O_NOATIME: watching it
 *                                             must not change what the next backup records
 *
 * The poll handle keeps the loop alive while open: a watcher is a foreground process.
 * No polling: the callback runs only when the kernel has events.
 */
#include <node_api.h>
#include <uv.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "inotify.h"
#include "napi-util.h"

#define MAX_WATCHERS 16

typedef struct {
  int fd;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
  int in_use;
} watcher_t;

static watcher_t watchers[MAX_WATCHERS];

static watcher_t *get_watcher(napi_env env, napi_value v) {
  int32_t id;
  if (napi_get_value_int32(env, v, &id) != napi_ok || id < 0 || id >= MAX_WATCHERS || !watchers[id].in_use) {
    throw_type(env, "The \"id\" argument must be an open inotify id");
    return NULL;
  }
  return &watchers[id];
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  watcher_t *w = (watcher_t *)handle->data;
  napi_env env = w->env;
  /* Read everything there is: one callback per read, up to 64 KiB of records each. */
  static char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* EAGAIN: drained */
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn, recv, arg, result;
    void *data;
    if (napi_get_reference_value(env, w->callback, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
        napi_create_buffer_copy(env, (size_t)n, buf, &data, &arg) == napi_ok) {
      if (napi_make_callback(env, w->context, recv, fn, 1, &arg, &result) != napi_ok) {
        /* An exception in the callback: report it as Node does for any callback. */
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      }
    }
    napi_close_handle_scope(env, scope);
    if (!w->in_use) return; /* closed by the callback */
  }
}

JS_FUNCTION(js_inotifyOpen) {
  napi_value argv[1], ret, name;
  napi_valuetype t;
  int slot = -1;
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  NAPI_OK(napi_typeof(env, argv[0], &t));
  if (t != napi_function) {
    throw_type(env, "The \"onEvents\" argument must be a function");
    return NULL;
  }
  for (int i = 0; i < MAX_WATCHERS; i++)
    if (!watchers[i].in_use && watchers[i].fd == 0) {
      slot = i;
      break;
    }
  if (slot < 0) {
    throw_errno(env, EMFILE, "inotify_init1", NULL, NULL);
    return NULL;
  }
  watcher_t *w = &watchers[slot];
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "inotify_init1", NULL, NULL);
    return NULL;
  }
  uv_loop_t *loop;
  NAPI_OK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &w->poll, fd) != 0) {
    close(fd);
    throw_errno(env, EINVAL, "uv_poll_init", NULL, NULL);
    return NULL;
  }
  w->fd = fd;
  w->env = env;
  w->poll.data = w;
  NAPI_OK(napi_create_reference(env, argv[0], 1, &w->callback));
  NAPI_OK(napi_create_string_utf8(env, "tsbak.inotify", NAPI_AUTO_LENGTH, &name));
  NAPI_OK(napi_async_init(env, NULL, name, &w->context));
  w->in_use = 1;
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  NAPI_OK(napi_create_int32(env, slot, &ret));
  return ret;
fail:
  return NULL;
}

JS_FUNCTION(js_inotifyAddWatch) {
  napi_value argv[3], ret;
  uint32_t mask;
  if (get_args(env, info, 3, argv, NULL) < 0) return NULL;
  watcher_t *w = get_watcher(env, argv[0]);
  if (!w) return NULL;
  if (napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    throw_type(env, "The \"mask\" argument must be a number");
    return NULL;
  }
  char *path = get_bytes_arg(env, argv[1], "path");
  if (!path) return NULL;
  int wd = inotify_add_watch(w->fd, path, mask);
  if (wd < 0) {
    throw_errno(env, errno, "inotify_add_watch", argv[1], path);
    free(path);
    return NULL;
  }
  free(path);
  NAPI_OK(napi_create_int32(env, wd, &ret));
  return ret;
fail:
  return NULL;
}

JS_FUNCTION(js_inotifyRmWatch) {
  napi_value argv[2];
  int32_t wd;
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  watcher_t *w = get_watcher(env, argv[0]);
  if (!w) return NULL;
  if (napi_get_value_int32(env, argv[1], &wd) != napi_ok) {
    throw_type(env, "The \"wd\" argument must be a number");
    return NULL;
  }
  /* EINVAL: the watch is gone already (its directory was deleted): nothing to remove. */
  if (inotify_rm_watch(w->fd, wd) < 0 && errno != EINVAL) {
    throw_errno(env, errno, "inotify_rm_watch", NULL, NULL);
    return NULL;
  }
  return NULL;
}

static void on_closed(uv_handle_t *handle) {
  watcher_t *w = (watcher_t *)handle->data;
  close(w->fd);
  w->fd = 0; /* the slot is free again */
}

JS_FUNCTION(js_inotifyClose) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  watcher_t *w = get_watcher(env, argv[0]);
  if (!w) return NULL;
  w->in_use = 0;
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close((uv_handle_t *)&w->poll, on_closed);
  return NULL;
}

JS_FUNCTION(js_listSubdirs) {
  napi_value argv[1], arr, name;
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  char *path = get_bytes_arg(env, argv[0], "path");
  if (!path) return NULL;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd < 0 ? NULL : fdopendir(fd);
  if (!d) {
    int e = errno;
    if (fd >= 0) close(fd);
    throw_errno(env, e, "opendir", argv[0], path);
    free(path);
    return NULL;
  }
  uint32_t n = 0;
  if (napi_create_array(env, &arr) != napi_ok) goto fail;
  struct dirent *de;
  while ((errno = 0, de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0))) continue;
    int isdir = de->d_type == DT_DIR;
    if (de->d_type == DT_UNKNOWN) {
      struct stat st;
      isdir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (!isdir) continue;
    void *data;
    if (napi_create_buffer_copy(env, strlen(de->d_name), de->d_name, &data, &name) != napi_ok) goto fail;
    if (napi_set_element(env, arr, n++, name) != napi_ok) goto fail;
  }
  closedir(d);
  free(path);
  return arr;
fail:
  closedir(d);
  free(path);
  throw_napi_failure(env);
  return NULL;
}

/*
 * N-API helpers shared by the addon's source files: Node-style errors from an errno, and
 * the checking of arguments (paths as strings or raw bytes, typed arrays).
 */
#include <node_api.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "napi-util.h"

/* ---- error helpers ---------------------------------------------------------------------- */

/* errno -> symbolic name, as Node reports it in err.code. */
static const char *errno_name(int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF)
    E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(ENOTBLK) E(EBUSY) E(EEXIST)
    E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY)
    E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE)
    E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG)
    E(EIDRM) E(ENODATA) E(EOVERFLOW) E(EILSEQ) E(ENOTSOCK) E(EOPNOTSUPP)
    E(EDQUOT) E(ESTALE) E(ETIMEDOUT) E(ECONNREFUSED) E(ENOTCONN) E(ECANCELED)
#ifdef EUCLEAN
    E(EUCLEAN)
#endif
#undef E
    default: return "UNKNOWN";
  }
}

/* Linux has ENOTSUP == EOPNOTSUPP; Node (libuv) names that value ENOTSUP. */
static const char *errno_code(int e) {
  if (e == ENOTSUP) return "ENOTSUP";
  return errno_name(e);
}

/* If an N-API call failed without leaving a JS exception pending, raise a generic one. */
void throw_napi_failure(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, "ERR_TSBAK_NAPI",
                   info && info->error_message ? info->error_message : "N-API call failed");
}

static void set_prop(napi_env env, napi_value obj, const char *key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

/*
 * Throw a Node-style system error. path_val is the JS argument as given (string or Buffer,
 * may be NULL); path_str its C bytes for the message.
 */
napi_value make_errno_error(napi_env env, int err, const char *syscall, napi_value path_val,
                            const char *path_str) {
  const char *code = errno_code(err);
  /* strerror's text with a lowercase first letter, as Node/libuv print it. */
  char desc[128];
  snprintf(desc, sizeof desc, "%s", strerror(err));
  if (desc[0] >= 'A' && desc[0] <= 'Z') desc[0] = (char)(desc[0] - 'A' + 'a');
  size_t cap = strlen(code) + strlen(desc) + strlen(syscall) +
               (path_str ? strlen(path_str) : 0) + 16;
  char *msg = malloc(cap);
  if (!msg) {
    napi_throw_error(env, code, "out of memory while reporting an error");
    return NULL;
  }
  if (path_str)
    snprintf(msg, cap, "%s: %s, %s '%s'", code, desc, syscall, path_str);
  else
    snprintf(msg, cap, "%s: %s, %s", code, desc, syscall);

  napi_value jcode, jmsg, jerr, jerrno, jsys;
  /* The message is built from raw path bytes: decode leniently (invalid UTF-8 -> U+FFFD). */
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &jerr) != napi_ok) {
    free(msg);
    throw_napi_failure(env);
    return NULL;
  }
  free(msg);
  napi_create_int32(env, -err, &jerrno); /* negative, like Node's fs errors */
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  set_prop(env, jerr, "errno", jerrno);
  set_prop(env, jerr, "syscall", jsys);
  if (path_val) set_prop(env, jerr, "path", path_val);
  return jerr;
}

void throw_errno(napi_env env, int err, const char *syscall, napi_value path_val,
                        const char *path_str) {
  napi_value e = make_errno_error(env, err, syscall, path_val, path_str);
  if (e) napi_throw(env, e);
}

void throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

void throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

/* ---- argument helpers ------------------------------------------------------------------- */

/*
 * A path or xattr name argument: a string (encoded as UTF-8) or a Buffer (raw bytes).
 * Returns a malloc'd NUL-terminated copy, or NULL with a JS exception pending.
 */
char *get_bytes_arg(napi_env env, napi_value v, const char *what) {
  bool is_buf = false;
  napi_valuetype t;
  char *out = NULL;
  size_t len = 0;

  NAPI_OK(napi_is_buffer(env, v, &is_buf));
  if (is_buf) {
    void *data = NULL;
    NAPI_OK(napi_get_buffer_info(env, v, &data, &len));
    if (len && memchr(data, 0, len)) goto has_nul;
    out = malloc(len + 1);
    if (!out) goto oom;
    if (len) memcpy(out, data, len);
    out[len] = 0;
    return out;
  }
  NAPI_OK(napi_typeof(env, v, &t));
  if (t == napi_string) {
    NAPI_OK(napi_get_value_string_utf8(env, v, NULL, 0, &len));
    out = malloc(len + 1);
    if (!out) goto oom;
    NAPI_OK(napi_get_value_string_utf8(env, v, out, len + 1, &len));
    if (strlen(out) != len) goto has_nul;
    return out;
  }
  {
    char msg[128];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be of type string or Buffer", what);
    throw_type(env, msg);
  }
  return NULL;
has_nul : {
  char msg[128];
  snprintf(msg, sizeof msg, "The \"%s\" argument must not contain null bytes", what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
  free(out);
  return NULL;
}
oom:
  napi_throw_error(env, "ENOMEM", "out of memory");
  return NULL;
fail:
  free(out);
  return NULL;
}

/* Fetch exactly n arguments (missing ones are undefined). */
int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                    size_t *argc_out) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_napi_failure(env);
    return -1;
  }
  if (argc_out) *argc_out = argc;
  return 0;
}

/* A typed array argument of the given type with at least `min` elements; -1 with an exception pending. */
int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *what, size_t min,
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

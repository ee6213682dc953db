/* N-API helpers shared by the addon's source files (napi-util.c). */
#ifndef TSBAK_NAPI_UTIL_H
#define TSBAK_NAPI_UTIL_H
#include <node_api.h>
#include <stddef.h>

/* Declares a function the module exports to JavaScript. */
#define JS_FUNCTION(name) napi_value name(napi_env env, napi_callback_info info)

/* Raise a generic error if an N-API call failed without leaving an exception pending. */
void throw_napi_failure(napi_env env);
/* Jumps to `fail` (with an exception pending) when an N-API call fails. */
#define NAPI_OK(call)               \
  do {                              \
    if ((call) != napi_ok) {        \
      throw_napi_failure(env);      \
      goto fail;                    \
    }                               \
  } while (0)

/* A Node-style fs error (message, .code, .errno, .syscall, .path); NULL with an exception pending on failure. */
napi_value make_errno_error(napi_env env, int err, const char *syscall, napi_value path_val,
                            const char *path_str);
/* Throws make_errno_error's error. */
void throw_errno(napi_env env, int err, const char *syscall, napi_value path_val, const char *path_str);
/* Throws a TypeError (ERR_INVALID_ARG_TYPE) or a RangeError (ERR_OUT_OF_RANGE). */
void throw_type(napi_env env, const char *msg);
void throw_range(napi_env env, const char *msg);
/* A string or Buffer argument as a malloc'd NUL-terminated copy, or NULL with an exception pending. */
char *get_bytes_arg(napi_env env, napi_value v, const char *what);
/* Fetch exactly n arguments (missing ones are undefined); -1 with an exception pending. */
int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, size_t *argc_out);
/* A typed array argument of the given type with at least `min` elements; -1 with an exception pending. */
int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *what, size_t min, void **data,
           size_t *len);

#endif

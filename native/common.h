/* Helpers shared by the addon's source files (defined in tsbak_native.c). */
#ifndef TSBAK_COMMON_H
#define TSBAK_COMMON_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A Node-style fs error (message, .code, .errno, .syscall, .path); NULL with an exception pending on failure. */
napi_value make_errno_error(napi_env env, int err, const char *syscall, napi_value path_val,
                            const char *path_str);
/* Raise a generic error if an N-API call failed without leaving an exception pending. */
void throw_napi_failure(napi_env env);
/* A string or Buffer argument as a malloc'd NUL-terminated copy, or NULL with an exception pending. */
char *get_bytes_arg(napi_env env, napi_value v, const char *what);
/* Fetch exactly n arguments (missing ones are undefined); -1 with an exception pending. */
int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, size_t *argc_out);

napi_value js_scanDir(napi_env env, napi_callback_info info);
napi_value js_scanDirSync(napi_env env, napi_callback_info info);
napi_value js_readSmallFiles(napi_env env, napi_callback_info info);
napi_value js_gearScan(napi_env env, napi_callback_info info);
/* A typed array argument of the given type with at least `min` elements; -1 with an exception pending. */
int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *what, size_t min, void **data,
           size_t *len);
/* Batch work for libuv's pool: run() does it there; failure, when set, rejects the promise. */
struct pool_job {
  void (*run)(struct pool_job *job);
  const char *failure;
};
/* A kind of batch work: its arguments, the size of its job (a struct starting with a
 * pool_job), how to check the arguments into a job, and the work. */
struct job_kind {
  const char *name;
  size_t argc;
  size_t size;
  int (*parse)(napi_env env, napi_value *argv, struct pool_job *job);
  void (*run)(struct pool_job *job);
};
/* Checks the call's arguments into a new job and runs it now (undefined, or throws its
 * failure), or with async on libuv's pool (a Promise; the arguments stay referenced). */
napi_value call_job(napi_env env, napi_callback_info info, const struct job_kind *kind, int async);

/* Reads TSBAK_POOL_NICE (module init, main thread). */
void pool_priority_init(void);
/* Lowers the calling pool thread's priority below the main thread's, once per thread. */
void pool_thread_priority(void);

/* Writes all len bytes at pos of fd (pwrite, again after EINTR); 0, or the errno (restore.c). */
int write_all(int fd, const uint8_t *p, size_t len, off_t pos);

/* A blob's id, HMAC-SHA256(mac_key (32 bytes), data), into out (32 bytes); -1 on failure (blob.c). */
int blob_id(const uint8_t *mac_key, const uint8_t *data, size_t len, uint8_t *out);

napi_value js_openBlobs(napi_env env, napi_callback_info info);
napi_value js_sealBlobs(napi_env env, napi_callback_info info);
napi_value js_sealBlobsAsync(napi_env env, napi_callback_info info);
napi_value js_writeFiles(napi_env env, napi_callback_info info);
napi_value js_openBlobsAsync(napi_env env, napi_callback_info info);
napi_value js_writeFilesAsync(napi_env env, napi_callback_info info);
napi_value js_openBlobToFileAsync(napi_env env, napi_callback_info info);
napi_value js_blobIdAsync(napi_env env, napi_callback_info info);
napi_value js_copyRangeAsync(napi_env env, napi_callback_info info);

#endif

/* Batch work run at once or on libuv's thread pool, and the pool threads' priority (pool-work.c). */
#ifndef TSBAK_POOL_WORK_H
#define TSBAK_POOL_WORK_H
#include <node_api.h>
#include <stddef.h>

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

/* Reads TSBAK_POOL_NICE and TSBAK_POOL_BATCH (module init, main thread). */
void pool_priority_init(void);
/* Lowers the calling pool thread's priority below the main thread's, once per thread. */
void pool_thread_priority(void);

#endif

/*
 * Batch work for blob.c and restore.c, run at once or on libuv's thread pool (the arguments
 * stay referenced, their memory in use there, until the work is done), and the pool
 * threads' priority.
 */
#include <node_api.h>

#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "napi-util.h"
#include "pool-work.h"

/* How much nicer than the main thread the pool's threads run (TSBAK_POOL_NICE, default 5;
 * 0 leaves them alone). On 2 cores, 4 busy pool threads got 4/5 of the CPU, and the main
 * thread, which feeds them (reads, chunks, walks), was preempted each time it woke one. */
static int pool_nice = 5;
static int pool_batch = 1;

void pool_priority_init(void) {
  const char *v = getenv("TSBAK_POOL_NICE");
  if (v && *v) pool_nice = atoi(v);
  v = getenv("TSBAK_POOL_BATCH");
  if (v && *v) pool_batch = atoi(v);
}

void pool_thread_priority(void) {
  static __thread int done;
  if (done) return;
  done = 1;
  pid_t tid = (pid_t)syscall(SYS_gettid);
  if (pool_batch) {
    struct sched_param sp = {0};
    sched_setscheduler(tid, SCHED_BATCH, &sp);
  }
  if (pool_nice > 0) setpriority(PRIO_PROCESS, (id_t)tid, pool_nice);
}

struct pool_call {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[16];
  size_t nrefs;
  struct pool_job *job;
};

static void pool_execute(napi_env env, void *data) {
  struct pool_job *j = ((struct pool_call *)data)->job;
  pool_thread_priority();
  j->run(j);
}

static void pool_complete(napi_env env, napi_status status, void *data) {
  struct pool_call *c = data;
  napi_value v;
  if (status != napi_ok || c->job->failure) {
    napi_value msg;
    napi_create_string_utf8(env, c->job->failure ? c->job->failure : "tsbak: native work was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
    napi_reject_deferred(env, c->deferred, v);
  } else {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, c->deferred, v);
  }
  for (size_t i = 0; i < c->nrefs; i++) napi_delete_reference(env, c->refs[i]);
  napi_delete_async_work(env, c->work);
  free(c->job);
  free(c);
}

static napi_value queue_pool_job(napi_env env, const char *name, napi_value *argv, size_t argc, struct pool_job *job) {
  napi_value promise, wname;
  struct pool_call *c = calloc(1, sizeof *c);
  if (!c || argc > 16) {
    free(c);
    free(job);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->job = job;
  for (; c->nrefs < argc; c->nrefs++)
    if (napi_create_reference(env, argv[c->nrefs], 1, &c->refs[c->nrefs]) != napi_ok) goto fail;
  if (napi_create_promise(env, &c->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &wname) != napi_ok ||
      napi_create_async_work(env, NULL, wname, pool_execute, pool_complete, c, &c->work) != napi_ok)
    goto fail;
  if (napi_queue_async_work(env, c->work) != napi_ok) {
    napi_delete_async_work(env, c->work);
    goto fail;
  }
  return promise;
fail:
  throw_napi_failure(env);
  for (size_t i = 0; i < c->nrefs; i++) napi_delete_reference(env, c->refs[i]);
  free(c->job);
  free(c);
  return NULL;
}

napi_value call_job(napi_env env, napi_callback_info info, const struct job_kind *kind, int async) {
  napi_value argv[16], u;
  if (kind->argc > 16 || get_args(env, info, kind->argc, argv, NULL)) return NULL;
  struct pool_job *j = calloc(1, kind->size);
  if (!j) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->run = kind->run;
  if (kind->parse(env, argv, j)) {
    free(j);
    return NULL;
  }
  if (async) return queue_pool_job(env, kind->name, argv, kind->argc, j);
  j->run(j);
  const char *failure = j->failure;
  free(j);
  if (failure) {
    napi_throw_error(env, NULL, failure);
    return NULL;
  }
  napi_get_undefined(env, &u);
  return u;
}

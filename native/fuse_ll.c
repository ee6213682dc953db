/*
 * fuse_ll.c: a read-only FUSE file system served from JavaScript through libfuse 3's
 * low-level API (src/fuse/session.ts is the other half).
 *
 * fuseMount(mountpoint, options, onRequest, onEnd) mounts and runs fuse_session_loop on a
 * thread of its own. Each kernel request goes to the main thread through a thread-safe
 * function as onRequest(op, req, ino, a, b, fh, name): req is an external holding the
 * fuse_req_t, ino a Number (inode numbers are handed out in order, far below 2^53), name a
 * Buffer of the name's raw bytes. JavaScript answers later with one of the reply*
 * functions (libfuse's fuse_reply_* may be called from any thread). onEnd() runs once the
 * kernel side is gone (fusermount -u, umount); the session is freed when the last pending
 * request has been answered.
 *
 * A stat travels as a Float64Array of STAT_FIELDS numbers (ino, mode, nlink, uid, gid,
 * rdev, size, blksize, blocks, atime s, atime ns, mtime s, mtime ns, ctime s, ctime ns,
 * xattr flags): seconds may be negative (before 1970) or past 2^31 (after 2038).
 *
 * The xattr flags of an inode (XATTR_*) are remembered here when a reply carries its stat,
 * so that the session thread answers getxattr/listxattr of entries without extended
 * attributes itself: `ls -l` asks two or three names of every entry, `cp -a` lists every
 * file's, and nearly all have none.
 *
 * Directories: the kernel skips opendir and releasedir where it can (FUSE_CAP_NO_OPENDIR_SUPPORT:
 * opendir answers ENOSYS here), so readdir comes with fh 0 and JavaScript lists by inode.
 * A reply of a listing that never changes (inside a snapshot) says how many entries it has,
 * and the session thread answers the read past its end, which ends every listing, itself.
 *
 * Kinds of xattr no entry has (fuseSetXattrsAbsent: no ACLs, no security labels in any
 * snapshot shown): getxattr of such a name answers EOPNOTSUPP, not ENODATA, so that `ls -l`
 * decides the file system has none and stops asking for them entry by entry. ACLs only where
 * the kernel does not check them itself (the mount asked for noAcls: no FUSE_CAP_POSIX_ACL),
 * since its permission checks would take the error for a failure.
 *
 * Listings built ahead: JavaScript hands over the whole readdirplus reply of a directory a
 * walk will list next (fuseSetListing), and the session thread answers its reads from it,
 * then tells JavaScript (onListed) so that it builds the next ones, off the walk's path.
 * The targets of the symlinks in a listing come along (fuseSetLinkTargets): `ls -l` reads
 * each, and the session thread answers.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "fuse_ll.h"
#include "napi-util.h"

#define STAT_FIELDS 16
/* Xattr flags: getxattr of any name but XATTR_ASKED answers ENODATA; listxattr answers empty. */
#define XATTR_NO_GET 1
#define XATTR_NO_LIST 2
#define XATTR_ASKED "user.tsbak.state"
/* Inode numbers above this get no flags (memory: one byte per number). */
#define XATTR_MAX_INO (1u << 26)
/* fuseSetXattrsAbsent bits. */
#define ABSENT_SECURITY 1
#define ABSENT_ACL 2

enum { OP_LOOKUP = 1, OP_GETATTR, OP_READLINK, OP_OPEN, OP_READ, OP_RELEASE, OP_OPENDIR, OP_READDIR,
       OP_READDIRPLUS, OP_RELEASEDIR, OP_GETXATTR, OP_LISTXATTR, OP_STATFS, OP_END, OP_LISTED };

typedef struct listing listing;
#define LISTING_BUCKETS 1024
/* Symlink targets handed over with listings (fuseSetLinkTargets): by inode number. */
typedef struct link_target {
  struct link_target *next;
  uint64_t ino;
  char target[]; /* NUL-terminated */
} link_target;
#define LINK_BUCKETS 4096
#define LINKS_MAX_BYTES (16u << 20)

typedef struct session {
  struct fuse_session *se;
  pthread_t thread;
  napi_threadsafe_function tsfn;
  napi_ref handlers; /* {onRequest, onEnd} */
  atomic_int pending; /* requests handed to JavaScript and not answered yet */
  int ended;          /* the loop returned and onEnd ran (main thread only) */
  int freed;
  pthread_mutex_t xlock; /* xflags, xcap */
  uint8_t *xflags;       /* by inode number */
  size_t xcap;
  atomic_ulong answered_here; /* requests the session thread answered itself */
  int no_open;                /* asked for (handlers.noOpen): open answers ENOSYS when the kernel allows */
  atomic_int no_open_active;  /* the kernel allows it (set by init) */
  atomic_int no_opendir_active; /* opendir answers ENOSYS (set by init) */
  uint32_t *dir_end;          /* by inode number: the offset past a fixed listing's last entry, 0 unknown (xlock) */
  size_t dcap;
  int on_listed;              /* handlers.onListed exists: say which listings were served here */
  pthread_mutex_t llock;      /* the listings built ahead */
  listing *lbucket[LISTING_BUCKETS];
  listing *loldest, *lnewest; /* in the order they were set, for eviction */
  size_t lbytes;
  int no_acls;                /* asked for (handlers.noAcls): no FUSE_CAP_POSIX_ACL */
  atomic_int posix_acl_active; /* the kernel checks ACLs (set by init) */
  atomic_int absent;          /* ABSENT_* */
  pthread_mutex_t tlock;      /* link targets */
  link_target *tbucket[LINK_BUCKETS];
  size_t tbytes;
} session;

typedef struct request {
  int op;
  fuse_req_t req;
  double ino;
  double a, b, fh; /* a, b: size/offset/flags, per op */
  size_t name_len;
  char name[]; /* raw bytes, not NUL-terminated for JavaScript */
} request;

static void free_session(napi_env env, session *s) {
  if (s->freed) return;
  s->freed = 1;
  if (s->handlers) napi_delete_reference(env, s->handlers);
  s->handlers = NULL;
  pthread_join(s->thread, NULL);
  fuse_session_destroy(s->se);
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
}

static void post(fuse_req_t req, int op, fuse_ino_t ino, double a, double b, double fh, const char *name) {
  session *s = fuse_req_userdata(req);
  size_t n = name ? strlen(name) : 0;
  request *r = malloc(sizeof *r + n);
  if (!r) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  r->op = op;
  r->req = req;
  r->ino = (double)ino;
  r->a = a;
  r->b = b;
  r->fh = fh;
  r->name_len = n;
  if (n) memcpy(r->name, name, n);
  atomic_fetch_add(&s->pending, 1);
  if (napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking) != napi_ok) {
    atomic_fetch_sub(&s->pending, 1);
    free(r);
    fuse_reply_err(req, EIO);
  }
}

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session *s = userdata;
  /* The kernel checks ACLs itself (with default_permissions), from system.posix_acl_*. */
  if ((conn->capable & FUSE_CAP_POSIX_ACL) && !s->no_acls) {
    conn->want |= FUSE_CAP_POSIX_ACL;
    atomic_store(&s->posix_acl_active, 1);
  }
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* always plus: one request lists and stats */
  conn->max_readahead = 1 << 20;
  /* Read-ahead of several readers at once goes out as background requests: the kernel's
   * default (12 in flight) would queue them while the blob opens run on the pool. */
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
  /* An open answered ENOSYS counts as done, and no open or release is sent again: reads
   * come with fh 0 and are served by inode (a `cp -a` opens every file once). */
  if (s->no_open && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)) atomic_store(&s->no_open_active, 1);
  /* A directory's listing is made at its first readdir, by inode: opendir decides nothing. */
  if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) atomic_store(&s->no_opendir_active, 1);
}

static uint32_t dir_end_of(session *s, fuse_ino_t ino) {
  pthread_mutex_lock(&s->xlock);
  uint32_t e = ino < s->dcap ? s->dir_end[ino] : 0;
  pthread_mutex_unlock(&s->xlock);
  return e;
}

/* Main thread, from a reply to readdir of a listing that never changes. */
static void set_dir_end(session *s, double ino, double end) {
  if (!(ino >= 0 && ino < XATTR_MAX_INO) || !(end > 0 && end < 4294967295.0)) return;
  size_t i = (size_t)ino;
  pthread_mutex_lock(&s->xlock);
  if (i >= s->dcap) {
    size_t cap = s->dcap ? s->dcap : 4096;
    while (cap <= i) cap *= 2;
    uint32_t *n = realloc(s->dir_end, cap * sizeof *n);
    if (n) {
      memset(n + s->dcap, 0, (cap - s->dcap) * sizeof *n);
      s->dir_end = n;
      s->dcap = cap;
    }
  }
  if (i < s->dcap) s->dir_end[i] = (uint32_t)end;
  pthread_mutex_unlock(&s->xlock);
}

/* A read at or past the end of a fixed listing: empty, answered here. */
static int answer_dir_end(fuse_req_t req, fuse_ino_t ino, off_t off) {
  session *s = fuse_req_userdata(req);
  uint32_t end = dir_end_of(s, ino);
  if (!end || off < (off_t)end) return 0;
  atomic_fetch_add(&s->answered_here, 1);
  fuse_reply_buf(req, NULL, 0);
  return 1;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) { post(req, OP_LOOKUP, parent, 0, 0, 0, name); }
static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) { post(req, OP_GETATTR, ino, 0, 0, 0, NULL); }
static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  session *s = fuse_req_userdata(req);
  pthread_mutex_lock(&s->tlock);
  link_target *t = s->tbucket[ino % LINK_BUCKETS];
  while (t && t->ino != ino) t = t->next;
  if (t) {
    atomic_fetch_add(&s->answered_here, 1);
    fuse_reply_readlink(req, t->target);
  }
  pthread_mutex_unlock(&s->tlock);
  if (!t) post(req, OP_READLINK, ino, 0, 0, 0, NULL);
}
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session *s = fuse_req_userdata(req);
  if (atomic_load(&s->no_open_active)) {
    atomic_fetch_add(&s->answered_here, 1);
    fuse_reply_err(req, ENOSYS);
    return;
  }
  post(req, OP_OPEN, ino, fi->flags, 0, 0, NULL);
}
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) { post(req, OP_READ, ino, (double)size, (double)off, (double)fi->fh, NULL); }
static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) { post(req, OP_RELEASE, ino, 0, 0, (double)fi->fh, NULL); }
static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  session *s = fuse_req_userdata(req);
  if (atomic_load(&s->no_opendir_active)) {
    atomic_fetch_add(&s->answered_here, 1);
    fuse_reply_err(req, ENOSYS);
    return;
  }
  post(req, OP_OPENDIR, ino, 0, 0, 0, NULL);
}
static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (answer_dir_end(req, ino, off)) return;
  post(req, OP_READDIR, ino, (double)size, (double)off, (double)fi->fh, NULL);
}
static int answer_listing(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (answer_dir_end(req, ino, off)) return;
  if (answer_listing(req, ino, size, off)) return;
  post(req, OP_READDIRPLUS, ino, (double)size, (double)off, (double)fi->fh, NULL);
}
static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) { post(req, OP_RELEASEDIR, ino, 0, 0, (double)fi->fh, NULL); }
static int xflags_of(session *s, fuse_ino_t ino) {
  pthread_mutex_lock(&s->xlock);
  int f = ino < s->xcap ? s->xflags[ino] : 0;
  pthread_mutex_unlock(&s->xlock);
  return f;
}

/* Main thread, from a reply's stat. */
static void set_xflags(session *s, double ino, double flags) {
  if (!(ino >= 0 && ino < XATTR_MAX_INO)) return;
  size_t i = (size_t)ino;
  uint8_t f = (uint8_t)flags;
  pthread_mutex_lock(&s->xlock);
  if (i >= s->xcap && f) {
    size_t cap = s->xcap ? s->xcap : 4096;
    while (cap <= i) cap *= 2;
    uint8_t *n = realloc(s->xflags, cap);
    if (n) {
      memset(n + s->xcap, 0, cap - s->xcap);
      s->xflags = n;
      s->xcap = cap;
    }
  }
  if (i < s->xcap) s->xflags[i] = f;
  pthread_mutex_unlock(&s->xlock);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  session *s = fuse_req_userdata(req);
  if ((xflags_of(s, ino) & XATTR_NO_GET) && strcmp(name, XATTR_ASKED) != 0) {
    atomic_fetch_add(&s->answered_here, 1);
    int absent = atomic_load(&s->absent);
    int none = ((absent & ABSENT_SECURITY) && strncmp(name, "security.", 9) == 0) ||
               ((absent & ABSENT_ACL) && !atomic_load(&s->posix_acl_active) &&
                (strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0));
    fuse_reply_err(req, none ? EOPNOTSUPP : ENODATA);
    return;
  }
  post(req, OP_GETXATTR, ino, (double)size, 0, 0, name);
}
static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  session *s = fuse_req_userdata(req);
  if (xflags_of(s, ino) & XATTR_NO_LIST) {
    atomic_fetch_add(&s->answered_here, 1);
    if (size == 0) fuse_reply_xattr(req, 0);
    else fuse_reply_buf(req, NULL, 0);
    return;
  }
  post(req, OP_LISTXATTR, ino, (double)size, 0, 0, NULL);
}
static void ll_statfs(fuse_req_t req, fuse_ino_t ino) { post(req, OP_STATFS, ino, 0, 0, 0, NULL); }
static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) { fuse_reply_none(req); }
static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) { fuse_reply_none(req); }

static const struct fuse_lowlevel_ops ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .readlink = ll_readlink,
    .open = ll_open,
    .read = ll_read,
    .release = ll_release,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .getxattr = ll_getxattr,
    .listxattr = ll_listxattr,
    .statfs = ll_statfs,
};

static void *loop_thread(void *arg) {
  session *s = arg;
  fuse_session_loop(s->se);
  request *r = calloc(1, sizeof *r);
  if (r) {
    r->op = OP_END;
    napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_blocking);
  }
  return NULL;
}

/* Main thread: a request (or the end of the loop) to onRequest / onEnd. */
static void call_js(napi_env env, napi_value unused, void *context, void *data) {
  session *s = context;
  request *r = data;
  if (!env) {
    if (r->op != OP_END) fuse_reply_err(r->req, EIO);
    free(r);
    return;
  }
  napi_value global, argv[7], fn, ignored, js_cb;
  napi_get_global(env, &global);
  napi_get_reference_value(env, s->handlers, &js_cb);
  if (r->op == OP_END) {
    s->ended = 1;
    napi_get_named_property(env, js_cb, "onEnd", &fn);
    napi_call_function(env, global, fn, 0, NULL, &ignored);
    if (atomic_load(&s->pending) == 0) free_session(env, s);
    free(r);
    return;
  }
  if (r->op == OP_LISTED) {
    napi_get_named_property(env, js_cb, "onListed", &fn);
    napi_create_double(env, r->ino, &argv[0]);
    free(r);
    napi_call_function(env, global, fn, 1, argv, &ignored);
    bool thrown;
    if (napi_is_exception_pending(env, &thrown) == napi_ok && thrown) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    return;
  }
  napi_create_int32(env, r->op, &argv[0]);
  napi_create_external(env, r->req, NULL, NULL, &argv[1]);
  napi_create_double(env, r->ino, &argv[2]);
  napi_create_double(env, r->a, &argv[3]);
  napi_create_double(env, r->b, &argv[4]);
  napi_create_double(env, r->fh, &argv[5]);
  if (r->op == OP_LOOKUP || r->op == OP_GETXATTR) {
    void *p;
    napi_create_buffer_copy(env, r->name_len, r->name, &p, &argv[6]);
  } else {
    napi_get_undefined(env, &argv[6]);
  }
  free(r);
  napi_get_named_property(env, js_cb, "onRequest", &fn);
  napi_call_function(env, global, fn, 7, argv, &ignored);
  /* An exception here would be lost with the request unanswered: JavaScript catches its own. */
  bool pending;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
  }
}

/* fuseMount(mountpoint, options: string[], handlers: {onRequest, onEnd}) -> session external */
JS_FUNCTION(js_fuseMount) {
  napi_value argv[3];
  char *mnt = NULL;
  char **args = NULL;
  uint32_t nopt = 0;
  session *s = NULL;
  struct fuse_args fargs = FUSE_ARGS_INIT(0, NULL);
  if (get_args(env, info, 3, argv, NULL) < 0) return NULL;
  if (!(mnt = get_bytes_arg(env, argv[0], "mountpoint"))) goto fail;
  NAPI_OK(napi_get_array_length(env, argv[1], &nopt));
  args = calloc(nopt + 2, sizeof *args);
  if (!args) goto fail;
  args[0] = strdup("tsbak");
  for (uint32_t i = 0; i < nopt; i++) {
    napi_value v;
    NAPI_OK(napi_get_element(env, argv[1], i, &v));
    if (!(args[i + 1] = get_bytes_arg(env, v, "option"))) goto fail;
  }
  fargs.argc = (int)nopt + 1;
  fargs.argv = args;
  s = calloc(1, sizeof *s);
  if (!s) goto fail;
  pthread_mutex_init(&s->xlock, NULL);
  pthread_mutex_init(&s->llock, NULL);
  pthread_mutex_init(&s->tlock, NULL);
  {
    napi_value v;
    bool b = false;
    if (napi_get_named_property(env, argv[2], "noOpen", &v) == napi_ok) napi_get_value_bool(env, v, &b);
    s->no_open = b;
    b = false;
    if (napi_get_named_property(env, argv[2], "noAcls", &v) == napi_ok) napi_get_value_bool(env, v, &b);
    s->no_acls = b;
    bool has = false;
    napi_has_named_property(env, argv[2], "onListed", &has);
    s->on_listed = has;
  }
  s->se = fuse_session_new(&fargs, &ops, sizeof ops, s);
  if (!s->se) {
    throw_errno(env, EINVAL, "fuse_session_new", argv[0], mnt);
    goto fail;
  }
  if (fuse_session_mount(s->se, mnt) != 0) {
    fuse_session_destroy(s->se);
    throw_errno(env, EPERM, "fuse_session_mount", argv[0], mnt);
    goto fail;
  }
  napi_value name;
  NAPI_OK(napi_create_string_utf8(env, "fuse", NAPI_AUTO_LENGTH, &name));
  if (napi_create_reference(env, argv[2], 1, &s->handlers) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, s, call_js, &s->tsfn) != napi_ok) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    throw_napi_failure(env);
    goto fail;
  }
  if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    throw_errno(env, EAGAIN, "pthread_create", argv[0], mnt);
    goto fail;
  }
  for (uint32_t i = 0; i <= nopt; i++) free(args[i]);
  free(args);
  free(mnt);
  napi_value ext;
  /* Never freed: a mount lives as long as its process, and late calls must find it. */
  NAPI_OK(napi_create_external(env, s, NULL, NULL, &ext));
  return ext;
fail:
  if (args)
    for (uint32_t i = 0; i <= nopt; i++) free(args[i]);
  free(args);
  free(mnt);
  if (s && !s->thread) free(s);
  return NULL;
}

/* The request of an answer; NULL with an exception pending. Counts it as answered. */
static fuse_req_t take_req(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_type(env, "req must be a FUSE request");
    return NULL;
  }
  return p;
}

/* The session external of a JS_FUNCTION's first argument; NULL (a TypeError thrown) when it is not one. */
static session *session_arg(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    throw_type(env, "session must be a FUSE session");
    return NULL;
  }
  return p;
}

/* After a reply: the request is freed then, so its session is taken before. */
static void answered(napi_env env, session *s) {
  if (atomic_fetch_sub(&s->pending, 1) == 1 && s->ended) free_session(env, s);
}

static int get_stat(napi_env env, session *s, napi_value v, size_t at, struct stat *st) {
  double *d;
  size_t len;
  if (get_ta(env, v, napi_float64_array, "stat", 0, (void **)&d, &len) < 0) return -1;
  if (len < at + STAT_FIELDS) {
    throw_range(env, "stat array too short");
    return -1;
  }
  d += at;
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)d[0];
  st->st_mode = (mode_t)d[1];
  st->st_nlink = (nlink_t)d[2];
  st->st_uid = (uid_t)d[3];
  st->st_gid = (gid_t)d[4];
  st->st_rdev = (dev_t)d[5];
  st->st_size = (off_t)d[6];
  st->st_blksize = (blksize_t)d[7];
  st->st_blocks = (blkcnt_t)d[8];
  st->st_atim.tv_sec = (time_t)d[9];
  st->st_atim.tv_nsec = (long)d[10];
  st->st_mtim.tv_sec = (time_t)d[11];
  st->st_mtim.tv_nsec = (long)d[12];
  st->st_ctim.tv_sec = (time_t)d[13];
  st->st_ctim.tv_nsec = (long)d[14];
  set_xflags(s, d[0], d[15]);
  return 0;
}

static double num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/* replyErr(req, errno) */
JS_FUNCTION(js_fuseReplyErr) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  int e = (int)num(env, argv[1]);
  fuse_reply_err(req, e < 0 ? -e : e);
  answered(env, s);
  return NULL;
}

/* replyEntry(req, stat, entryTimeout, attrTimeout) */
JS_FUNCTION(js_fuseReplyEntry) {
  napi_value argv[4];
  if (get_args(env, info, 4, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  if (get_stat(env, s, argv[1], 0, &e.attr) < 0) return NULL;
  e.ino = e.attr.st_ino;
  e.entry_timeout = num(env, argv[2]);
  e.attr_timeout = num(env, argv[3]);
  fuse_reply_entry(req, &e);
  answered(env, s);
  return NULL;
}

/* replyAttr(req, stat, timeout) */
JS_FUNCTION(js_fuseReplyAttr) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  struct stat st;
  if (get_stat(env, s, argv[1], 0, &st) < 0) return NULL;
  fuse_reply_attr(req, &st, num(env, argv[2]));
  answered(env, s);
  return NULL;
}

/* replyBuf(req, buffer): read data, an xattr value or list. */
JS_FUNCTION(js_fuseReplyBuf) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_type(env, "data must be a Buffer");
    return NULL;
  }
  fuse_reply_buf(req, data, len);
  answered(env, s);
  return NULL;
}

/* replyIov(req, pieces: Buffer[]): read data in pieces (views of cached chunks), written to
 * the kernel as they are. */
#define IOV_MAX_PIECES 64
JS_FUNCTION(js_fuseReplyIov) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[1], &n) != napi_ok || n > IOV_MAX_PIECES) {
    throw_type(env, "pieces must be an array of at most 64 Buffers");
    return NULL;
  }
  struct iovec iov[IOV_MAX_PIECES];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || napi_get_buffer_info(env, v, &iov[i].iov_base, &iov[i].iov_len) != napi_ok) {
      throw_type(env, "pieces must be Buffers");
      return NULL;
    }
  }
  fuse_reply_iov(req, iov, (int)n);
  answered(env, s);
  return NULL;
}

/* answeredHere(session) -> requests the session thread answered without JavaScript. */
JS_FUNCTION(js_fuseAnsweredHere) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  napi_value out;
  napi_create_double(env, (double)atomic_load(&s->answered_here), &out);
  return out;
}

/* replyReadlink(req, target Buffer) */
JS_FUNCTION(js_fuseReplyReadlink) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  char *target = get_bytes_arg(env, argv[1], "target");
  if (!target) return NULL;
  fuse_reply_readlink(req, target);
  free(target);
  answered(env, s);
  return NULL;
}

/* replyOpen(req, fh, keepCache) */
JS_FUNCTION(js_fuseReplyOpen) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  struct fuse_file_info fi;
  memset(&fi, 0, sizeof fi);
  fi.fh = (uint64_t)num(env, argv[1]);
  bool keep = false;
  napi_get_value_bool(env, argv[2], &keep);
  fi.keep_cache = keep;
  fuse_reply_open(req, &fi);
  answered(env, s);
  return NULL;
}

/* replyXattrSize(req, size) */
JS_FUNCTION(js_fuseReplyXattrSize) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  fuse_reply_xattr(req, (size_t)num(env, argv[1]));
  answered(env, s);
  return NULL;
}

/* replyStatfs(req, files) */
JS_FUNCTION(js_fuseReplyStatfs) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  struct statvfs sv;
  memset(&sv, 0, sizeof sv);
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_files = (fsfilcnt_t)num(env, argv[1]);
  sv.f_flag = ST_RDONLY;
  sv.f_namemax = 255;
  fuse_reply_statfs(req, &sv);
  answered(env, s);
  return NULL;
}

/*
 * replyDir(req, plus, size, names: Buffer[], stats: Float64Array, offsets: Float64Array, timeout,
 * ino, end) -> entries sent. Fills at most `size` bytes with the entries in order (entry i's
 * next offset is offsets[i]); stops at the first that does not fit. end > 0: the listing of
 * directory `ino` never changes and ends at offset `end` (later reads there are answered here).
 */
JS_FUNCTION(js_fuseReplyDir) {
  napi_value argv[9];
  if (get_args(env, info, 9, argv, NULL) < 0) return NULL;
  fuse_req_t req = take_req(env, argv[0]);
  if (!req) return NULL;
  session *s = fuse_req_userdata(req);
  double timeout = num(env, argv[6]);
  bool plus = false;
  napi_get_value_bool(env, argv[1], &plus);
  size_t size = (size_t)num(env, argv[2]);
  uint32_t n = 0;
  double *offs;
  size_t noffs;
  if (napi_get_array_length(env, argv[3], &n) != napi_ok) {
    throw_type(env, "names must be an array");
    return NULL;
  }
  if (get_ta(env, argv[5], napi_float64_array, "offsets", n, (void **)&offs, &noffs) < 0) return NULL;
  char *buf = malloc(size ? size : 1);
  if (!buf) {
    fuse_reply_err(req, ENOMEM);
    answered(env, s);
    return NULL;
  }
  size_t used = 0;
  uint32_t i;
  char name[4096];
  for (i = 0; i < n; i++) {
    napi_value v;
    void *data;
    size_t len;
    if (napi_get_element(env, argv[3], i, &v) != napi_ok || napi_get_buffer_info(env, v, &data, &len) != napi_ok || len >= sizeof name) break;
    memcpy(name, data, len);
    name[len] = 0;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    if (get_stat(env, s, argv[4], (size_t)i * STAT_FIELDS, &e.attr) < 0) {
      free(buf);
      return NULL;
    }
    size_t need;
    if (plus) {
      e.ino = e.attr.st_ino;
      /* '.' and '..' are not looked up by the kernel: no entry for them. */
      if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) e.ino = 0;
      e.entry_timeout = e.attr_timeout = timeout;
      need = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)offs[i]);
    } else {
      need = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)offs[i]);
    }
    if (need > size - used) break;
    used += need;
  }
  set_dir_end(s, num(env, argv[7]), num(env, argv[8]));
  fuse_reply_buf(req, buf, used);
  free(buf);
  answered(env, s);
  napi_value out;
  napi_create_uint32(env, i, &out);
  return out;
}

/* fuseExit(session): ends the loop (after the kernel side was unmounted). */
JS_FUNCTION(js_fuseExit) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  if (!s->freed) fuse_session_exit(s->se);
  return NULL;
}

/* ---- listings built ahead ---- */

/* The whole readdirplus reply of one directory: entry i's record is buf[at[i], at[i + 1]). */
struct listing {
  uint64_t ino;
  uint32_t n;
  uint32_t *at;
  char *buf;
  listing *next;         /* in its bucket */
  listing *older, *newer;
};

/* Memory for listings not served yet; past it the oldest go (a walk that never came). */
#define LISTINGS_MAX_BYTES (32u << 20)

static void listing_free(listing *l) {
  free(l->at);
  free(l->buf);
  free(l);
}

/* llock held: takes l out of its bucket and the age list. */
static void listing_unlink(session *s, listing *l) {
  listing **p = &s->lbucket[l->ino % LISTING_BUCKETS];
  while (*p && *p != l) p = &(*p)->next;
  if (*p) *p = l->next;
  if (l->older) l->older->newer = l->newer;
  else s->loldest = l->newer;
  if (l->newer) l->newer->older = l->older;
  else s->lnewest = l->older;
  s->lbytes -= l->at[l->n] + (l->n + 1) * sizeof *l->at;
}

static listing *listing_find(session *s, uint64_t ino) {
  listing *l = s->lbucket[ino % LISTING_BUCKETS];
  while (l && l->ino != ino) l = l->next;
  return l;
}

/* A readdirplus served from a listing built ahead; the listing goes once its last entry is sent. */
static int answer_listing(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
  session *s = fuse_req_userdata(req);
  pthread_mutex_lock(&s->llock);
  listing *l = listing_find(s, ino);
  if (!l || off < 0 || (uint64_t)off >= l->n) {
    pthread_mutex_unlock(&s->llock);
    return 0;
  }
  uint32_t from = (uint32_t)off, to = from;
  while (to < l->n && l->at[to + 1] - l->at[from] <= size) to++;
  if (to == from) { /* not one entry fits: JavaScript says so */
    pthread_mutex_unlock(&s->llock);
    return 0;
  }
  fuse_reply_buf(req, l->buf + l->at[from], l->at[to] - l->at[from]);
  int first = from == 0;
  if (to == l->n) {
    listing_unlink(s, l);
    listing_free(l);
  }
  pthread_mutex_unlock(&s->llock);
  atomic_fetch_add(&s->answered_here, 1);
  if (first && s->on_listed) {
    request *r = calloc(1, sizeof *r);
    if (r) {
      r->op = OP_LISTED;
      r->ino = (double)ino;
      if (napi_call_threadsafe_function(s->tsfn, r, napi_tsfn_nonblocking) != napi_ok) free(r);
    }
  }
  return 1;
}

/*
 * fuseSetListing(session, ino, names: Buffer[], stats: Float64Array, timeout) -> bool: the
 * readdirplus reply of directory `ino` (a listing that never changes), entry i at offset i,
 * its next at i + 1, built now and served by the session thread. '.' and '..' (the first
 * two) carry no entry, as in fuseReplyDir. false: not kept (too large, or no memory).
 */
JS_FUNCTION(js_fuseSetListing) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  double dino = num(env, argv[1]);
  double timeout = num(env, argv[4]);
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[2], &n) != napi_ok) {
    throw_type(env, "names must be an array");
    return NULL;
  }
  napi_value out;
  napi_get_boolean(env, false, &out);
  if (!(dino > 0 && dino < XATTR_MAX_INO) || n == 0 || s->freed) return out;
  double *d;
  size_t len;
  if (get_ta(env, argv[3], napi_float64_array, "stats", (size_t)n * STAT_FIELDS, (void **)&d, &len) < 0) return NULL;
  listing *l = calloc(1, sizeof *l);
  uint32_t *at = malloc((n + 1) * sizeof *at);
  size_t cap = (size_t)n * 160, used = 0;
  char *buf = malloc(cap);
  if (!l || !at || !buf) goto drop;
  char name[4096];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    void *data;
    size_t nlen;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_buffer_info(env, v, &data, &nlen) != napi_ok || nlen == 0 || nlen >= sizeof name || memchr(data, 0, nlen)) goto drop;
    memcpy(name, data, nlen);
    name[nlen] = 0;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    if (get_stat(env, s, argv[3], (size_t)i * STAT_FIELDS, &e.attr) < 0) goto fail;
    e.ino = e.attr.st_ino;
    if ((nlen == 1 && name[0] == '.') || (nlen == 2 && name[0] == '.' && name[1] == '.')) e.ino = 0;
    e.entry_timeout = e.attr_timeout = timeout;
    /* libfuse 3.14 does not use the request here (it only formats the record). */
    size_t need = fuse_add_direntry_plus(NULL, NULL, 0, name, &e, (off_t)i + 1);
    if (used + need > cap) {
      while (used + need > cap) cap *= 2;
      char *nb = realloc(buf, cap);
      if (!nb) goto drop;
      buf = nb;
    }
    at[i] = (uint32_t)used;
    fuse_add_direntry_plus(NULL, buf + used, cap - used, name, &e, (off_t)i + 1);
    used += need;
    if (used > LISTINGS_MAX_BYTES / 4) goto drop;
  }
  at[n] = (uint32_t)used;
  l->ino = (uint64_t)dino;
  l->n = n;
  l->at = at;
  l->buf = buf;
  set_dir_end(s, dino, n);
  pthread_mutex_lock(&s->llock);
  listing *old = listing_find(s, l->ino);
  if (old) {
    listing_unlink(s, old);
    listing_free(old);
  }
  l->next = s->lbucket[l->ino % LISTING_BUCKETS];
  s->lbucket[l->ino % LISTING_BUCKETS] = l;
  l->older = s->lnewest;
  if (s->lnewest) s->lnewest->newer = l;
  else s->loldest = l;
  s->lnewest = l;
  s->lbytes += used + (n + 1) * sizeof *at;
  while (s->lbytes > LISTINGS_MAX_BYTES && s->loldest != l) {
    listing *o = s->loldest;
    listing_unlink(s, o);
    listing_free(o);
  }
  pthread_mutex_unlock(&s->llock);
  napi_get_boolean(env, true, &out);
  return out;
drop:
  free(l);
  free(at);
  free(buf);
  return out;
fail:
  free(l);
  free(at);
  free(buf);
  return NULL;
}

/* forgetXattrLists(session): listxattr goes to JavaScript again for every inode (XATTR_NO_LIST
 * cleared): a list the session answered itself may be wrong now (data found in cold storage). */
JS_FUNCTION(js_fuseForgetXattrLists) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  pthread_mutex_lock(&s->xlock);
  for (size_t i = 0; i < s->xcap; i++) s->xflags[i] &= (uint8_t)~XATTR_NO_LIST;
  pthread_mutex_unlock(&s->xlock);
  return NULL;
}

/* setXattrsAbsent(session, bits): ABSENT_SECURITY | ABSENT_ACL, the kinds no entry shown has
 * (getxattr of one on an entry without xattrs answers EOPNOTSUPP); 0 when any may be there. */
JS_FUNCTION(js_fuseSetXattrsAbsent) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  uint32_t bits = 0;
  if (napi_get_value_uint32(env, argv[1], &bits) != napi_ok) {
    throw_type(env, "bits must be a number");
    return NULL;
  }
  atomic_store(&s->absent, (int)(bits & (ABSENT_SECURITY | ABSENT_ACL)));
  return NULL;
}

/* setLinkTargets(session, inos: Float64Array, targets: Buffer[]): the targets of symlinks
 * inside snapshots (they never change), for the session thread to answer readlink with.
 * Targets that are empty or hold NUL are left to JavaScript; past LINKS_MAX_BYTES no more are kept. */
JS_FUNCTION(js_fuseSetLinkTargets) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv, NULL) < 0) return NULL;
  session *s = session_arg(env, argv[0]);
  if (!s) return NULL;
  uint32_t n = 0;
  if (napi_get_array_length(env, argv[2], &n) != napi_ok) {
    throw_type(env, "targets must be an array");
    return NULL;
  }
  double *inos;
  size_t len;
  if (get_ta(env, argv[1], napi_float64_array, "inos", (size_t)n, (void **)&inos, &len) < 0) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    void *data;
    size_t tlen;
    double dino = inos[i];
    if (!(dino > 0 && dino < 9007199254740992.0)) continue;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_buffer_info(env, v, &data, &tlen) != napi_ok) {
      throw_type(env, "targets must be Buffers");
      return NULL;
    }
    if (tlen == 0 || tlen >= 4096 || memchr(data, 0, tlen)) continue;
    uint64_t ino = (uint64_t)dino;
    pthread_mutex_lock(&s->tlock);
    link_target *t = s->tbucket[ino % LINK_BUCKETS];
    while (t && t->ino != ino) t = t->next;
    if (!t && s->tbytes + sizeof *t + tlen + 1 <= LINKS_MAX_BYTES && (t = malloc(sizeof *t + tlen + 1))) {
      t->ino = ino;
      memcpy(t->target, data, tlen);
      t->target[tlen] = 0;
      t->next = s->tbucket[ino % LINK_BUCKETS];
      s->tbucket[ino % LINK_BUCKETS] = t;
      s->tbytes += sizeof *t + tlen + 1;
    }
    pthread_mutex_unlock(&s->tlock);
  }
  return NULL;
}

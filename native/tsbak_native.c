/*
 * tsbak_native: the addon's module table. What each source file does:
 *
 *   syscalls.c   l*xattr, SEEK_DATA/SEEK_HOLE extents, mknod, lchmod, utimensat in ns; malloc_trim
 *   scan.c       scanDir(Sync), readSmallFiles: a directory's listing with every entry's
 *                statx (and xattrs), and its small files read, in one call on the pool
 *   blob.c       openBlobs, sealBlobs, openBlobToFileAsync, blobId(Async): the blob envelope
 *                (docs/FORMAT.md "Blob") for batches of blobs
 *   restore.c    writeFiles: a restore's batch of small files, created with their metadata
 *   chunk.c      gearScan: FastCDC's gear-hash loop
 *   inotify.c    inotifyOpen/AddWatch/RmWatch/Close: raw inotify events, listSubdirs, for `tsbak watch`
 *   fuse_ll.c    fuseMount, fuseReply*: a read-only FUSE session (libfuse 3 low-level API)
 *   parity.c     gfMulAdd(Async): Reed-Solomon multiply-accumulate for parity across packs
 *   scrypt.c     scryptRomixAsync: scrypt's SMix of a group of lanes, so lanes run in parallel
 *   parity.c     gfMulAdd(Async): Reed-Solomon multiply-accumulate for parity across packs;
 *                gfKernel(s): the SIMD kernel in use / the CPU has; gfAlloc: stripe memory;
 *                gfSha256Async: a parity object's hashes on the pool
 *   pool-work.c  batch work run at once or on libuv's pool (...Async -> Promise<void>)
 *   napi-util.c  Node-style errors and argument checks shared by all of them
 *
 * src/platform/native/ has one TypeScript module per file, over src/platform/native/addon.ts.
 */
#include <node_api.h>

#include "blob.h"
#include "chunk.h"
#include "inotify.h"
#include "fuse_ll.h"
#include "napi-util.h"
#include "parity.h"
#include "pool-work.h"
#include "restore.h"
#include "scan.h"
#include "scrypt.h"
#include "syscalls.h"

NAPI_MODULE_INIT() {
  pool_priority_init();
  napi_property_descriptor props[] = {
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lremovexattr", NULL, js_lremovexattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dataExtents", NULL, js_dataExtents, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lutimensNs", NULL, js_lutimensNs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lchmod", NULL, js_lchmod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanDir", NULL, js_scanDir, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanDirSync", NULL, js_scanDirSync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readSmallFiles", NULL, js_readSmallFiles, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openBlobs", NULL, js_openBlobs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeFiles", NULL, js_writeFiles, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openBlobsAsync", NULL, js_openBlobsAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealBlobs", NULL, js_sealBlobs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealBlobsAsync", NULL, js_sealBlobsAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeFilesAsync", NULL, js_writeFilesAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openBlobToFileAsync", NULL, js_openBlobToFileAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"blobIdAsync", NULL, js_blobIdAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"blobId", NULL, js_blobId, NULL, NULL, NULL, napi_enumerable, NULL},
      {"copyRangeAsync", NULL, js_copyRangeAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gearScan", NULL, js_gearScan, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyOpen", NULL, js_inotifyOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyAddWatch", NULL, js_inotifyAddWatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyRmWatch", NULL, js_inotifyRmWatch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inotifyClose", NULL, js_inotifyClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listSubdirs", NULL, js_listSubdirs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseMount", NULL, js_fuseMount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseExit", NULL, js_fuseExit, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyErr", NULL, js_fuseReplyErr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyEntry", NULL, js_fuseReplyEntry, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyAttr", NULL, js_fuseReplyAttr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyBuf", NULL, js_fuseReplyBuf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyReadlink", NULL, js_fuseReplyReadlink, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyOpen", NULL, js_fuseReplyOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyXattrSize", NULL, js_fuseReplyXattrSize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyStatfs", NULL, js_fuseReplyStatfs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyDir", NULL, js_fuseReplyDir, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseSetListing", NULL, js_fuseSetListing, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseReplyIov", NULL, js_fuseReplyIov, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseAnsweredHere", NULL, js_fuseAnsweredHere, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseForgetXattrLists", NULL, js_fuseForgetXattrLists, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseSetXattrsAbsent", NULL, js_fuseSetXattrsAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fuseSetLinkTargets", NULL, js_fuseSetLinkTargets, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfMulAdd", NULL, js_gfMulAdd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfMulAddAsync", NULL, js_gfMulAddAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scryptRomixAsync", NULL, js_scryptRomixAsync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scryptSimd", NULL, js_scryptSimd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, js_mallocTrim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfKernel", NULL, js_gfKernel, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfKernels", NULL, js_gfKernels, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfAlloc", NULL, js_gfAlloc, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gfSha256Async", NULL, js_gfSha256Async, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    throw_napi_failure(env);
    return NULL;
  }
  return exports;
}

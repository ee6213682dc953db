/* A read-only FUSE file system over libfuse 3's low-level API, answered from JavaScript (fuse_ll.c). */
#ifndef TSBAK_FUSE_LL_H
#define TSBAK_FUSE_LL_H
#include "napi-util.h"

JS_FUNCTION(js_fuseMount);
JS_FUNCTION(js_fuseExit);
JS_FUNCTION(js_fuseReplyErr);
JS_FUNCTION(js_fuseReplyEntry);
JS_FUNCTION(js_fuseReplyAttr);
JS_FUNCTION(js_fuseReplyBuf);
JS_FUNCTION(js_fuseReplyIov);
JS_FUNCTION(js_fuseAnsweredHere);
JS_FUNCTION(js_fuseForgetXattrLists);
JS_FUNCTION(js_fuseSetXattrsAbsent);
JS_FUNCTION(js_fuseSetLinkTargets);
JS_FUNCTION(js_fuseReplyReadlink);
JS_FUNCTION(js_fuseReplyOpen);
JS_FUNCTION(js_fuseReplyXattrSize);
JS_FUNCTION(js_fuseReplyStatfs);
JS_FUNCTION(js_fuseReplyDir);
JS_FUNCTION(js_fuseSetListing);

#endif

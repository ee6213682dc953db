/* The syscalls Node's fs does not expose (syscalls.c). */
#ifndef TSBAK_SYSCALLS_H
#define TSBAK_SYSCALLS_H
#include "napi-util.h"

JS_FUNCTION(js_lgetxattr);
JS_FUNCTION(js_llistxattr);
JS_FUNCTION(js_lsetxattr);
JS_FUNCTION(js_lremovexattr);
JS_FUNCTION(js_dataExtents);
JS_FUNCTION(js_mknod);
JS_FUNCTION(js_lutimensNs);
JS_FUNCTION(js_lchmod);
JS_FUNCTION(js_mallocTrim);

#endif

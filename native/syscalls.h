/* The syscalls Node's fs does not expose (syscalls.c). */
#ifndef TSBAK_SYSCALLS_H
#define TSBAK_SYSCALLS_H
#include <node_api.h>

napi_value js_lgetxattr(napi_env env, napi_callback_info info);
napi_value js_llistxattr(napi_env env, napi_callback_info info);
napi_value js_lsetxattr(napi_env env, napi_callback_info info);
napi_value js_lremovexattr(napi_env env, napi_callback_info info);
napi_value js_dataExtents(napi_env env, napi_callback_info info);
napi_value js_mknod(napi_env env, napi_callback_info info);
napi_value js_lutimensNs(napi_env env, napi_callback_info info);
napi_value js_lchmod(napi_env env, napi_callback_info info);

#endif

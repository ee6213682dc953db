/* Reed-Solomon over GF(2^8): multiply-accumulate of a buffer into several (parity.c). */
#ifndef TSBAK_PARITY_H
#define TSBAK_PARITY_H
#include <node_api.h>

napi_value js_gfMulAdd(napi_env env, napi_callback_info info);
napi_value js_gfMulAddAsync(napi_env env, napi_callback_info info);
napi_value js_gfKernel(napi_env env, napi_callback_info info);
napi_value js_gfKernels(napi_env env, napi_callback_info info);
napi_value js_gfAlloc(napi_env env, napi_callback_info info);
napi_value js_gfSha256Async(napi_env env, napi_callback_info info);

#endif

/* scrypt's SMix on libuv's pool, one call per group of lanes (scrypt.c). */
#ifndef TSBAK_SCRYPT_H
#define TSBAK_SCRYPT_H
#include <node_api.h>

napi_value js_scryptRomixAsync(napi_env env, napi_callback_info info);
napi_value js_scryptSimd(napi_env env, napi_callback_info info);

#endif

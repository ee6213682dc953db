/* Batched directory work for the backup walk (scan.c). */
#ifndef TSBAK_SCAN_H
#define TSBAK_SCAN_H
#include <node_api.h>

napi_value js_scanDir(napi_env env, napi_callback_info info);
napi_value js_scanDirSync(napi_env env, napi_callback_info info);
napi_value js_readSmallFiles(napi_env env, napi_callback_info info);

#endif

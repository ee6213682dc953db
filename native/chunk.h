/* FastCDC's gear-hash loop (chunk.c). */
#ifndef TSBAK_CHUNK_H
#define TSBAK_CHUNK_H
#include <node_api.h>

napi_value js_gearScan(napi_env env, napi_callback_info info);

#endif

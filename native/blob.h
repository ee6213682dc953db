/* The blob envelope for batches of blobs (blob.c). */
#ifndef TSBAK_BLOB_H
#define TSBAK_BLOB_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* A blob's id, HMAC-SHA256(mac_key (32 bytes), data), into out (32 bytes); -1 on failure. */
int blob_id(const uint8_t *mac_key, const uint8_t *data, size_t len, uint8_t *out);

napi_value js_openBlobs(napi_env env, napi_callback_info info);
napi_value js_openBlobsAsync(napi_env env, napi_callback_info info);
napi_value js_sealBlobs(napi_env env, napi_callback_info info);
napi_value js_sealBlobsAsync(napi_env env, napi_callback_info info);
napi_value js_openBlobToFileAsync(napi_env env, napi_callback_info info);
napi_value js_blobIdAsync(napi_env env, napi_callback_info info);

#endif

/* The blob envelope for batches of blobs (blob.c). */
#ifndef TSBAK_BLOB_H
#define TSBAK_BLOB_H
#include "napi-util.h"
#include <stddef.h>
#include <stdint.h>

/* A blob's id, HMAC-SHA256(mac_key (32 bytes), data), into out (32 bytes); -1 on failure. */
int blob_id(const uint8_t *mac_key, const uint8_t *data, size_t len, uint8_t *out);

JS_FUNCTION(js_openBlobs);
JS_FUNCTION(js_openBlobsAsync);
JS_FUNCTION(js_sealBlobs);
JS_FUNCTION(js_sealBlobsAsync);
JS_FUNCTION(js_openBlobToFileAsync);
JS_FUNCTION(js_blobIdAsync);
JS_FUNCTION(js_blobId);

#endif

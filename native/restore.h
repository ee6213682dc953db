/* A restore's batches of small files (restore.c). */
#ifndef TSBAK_RESTORE_H
#define TSBAK_RESTORE_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all len bytes at pos of fd (pwrite, again after EINTR); 0, or the errno. */
int write_all(int fd, const uint8_t *p, size_t len, off_t pos);

napi_value js_writeFiles(napi_env env, napi_callback_info info);
napi_value js_writeFilesAsync(napi_env env, napi_callback_info info);

#endif

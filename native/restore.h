/* A restore's batches of small files (restore.c). */
#ifndef TSBAK_RESTORE_H
#define TSBAK_RESTORE_H
#include "napi-util.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all len bytes at pos of fd (pwrite, again after EINTR); 0, or the errno. */
int write_all(int fd, const uint8_t *p, size_t len, off_t pos);

JS_FUNCTION(js_writeFiles);
JS_FUNCTION(js_writeFilesAsync);
JS_FUNCTION(js_copyRangeAsync);

#endif

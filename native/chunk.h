/* FastCDC's gear-hash loop (chunk.c). */
#ifndef TSBAK_CHUNK_H
#define TSBAK_CHUNK_H
#include "napi-util.h"

JS_FUNCTION(js_gearScan);

#endif

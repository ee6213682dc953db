/* Batched directory work for the backup walk (scan.c). */
#ifndef TSBAK_SCAN_H
#define TSBAK_SCAN_H
#include "napi-util.h"

JS_FUNCTION(js_scanDir);
JS_FUNCTION(js_scanDirSync);
JS_FUNCTION(js_readSmallFiles);

#endif

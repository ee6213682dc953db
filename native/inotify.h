/* inotify for `tsbak watch` (inotify.c). */
#ifndef TSBAK_INOTIFY_H
#define TSBAK_INOTIFY_H
#include "napi-util.h"

JS_FUNCTION(js_inotifyOpen);
JS_FUNCTION(js_inotifyAddWatch);
JS_FUNCTION(js_inotifyRmWatch);
JS_FUNCTION(js_inotifyClose);
JS_FUNCTION(js_listSubdirs);

#endif

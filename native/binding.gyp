{
  "targets": [
    {
      "target_name": "tsbak_native",
      "sources": ["tsbak_native.c", "napi-util.c", "pool-work.c", "syscalls.c", "scan.c", "blob.c", "restore.c", "chunk.c", "inotify.c", "fuse_ll.c", "parity.c", "scrypt.c"],
      "libraries": ["-lzstd", "-lfuse3"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "_FILE_OFFSET_BITS=64"],
      "cflags_c": ["-I/usr/include/fuse3", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}

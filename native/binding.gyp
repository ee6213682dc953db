{
  "targets": [
    {
      "target_name": "tsbak_native",
      "sources": ["tsbak_native.c", "napi-util.c", "pool-work.c", "syscalls.c", "scan.c", "blob.c", "restore.c", "chunk.c", "parity.c"],
      "libraries": ["-lzstd"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "_FILE_OFFSET_BITS=64"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}

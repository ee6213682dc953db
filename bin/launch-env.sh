# Sourced by bin/tsbak and bin/tsbak-write (POSIX sh): what they set before node starts.

# tsbak_no_tls REPO_ARG ARGS...: unsets NODE_EXTRA_CA_CERTS when the command cannot use TLS.
# Node parses that file's certificates at every start, before any code runs (~40 ms of CPU for
# a distribution's bundle), and only an S3 repository (or `tsbak s3 ...`) makes TLS
# connections. REPO_ARG is the argument that names the repository when it is given
# positionally; the variable is kept unless it names a local directory or sftp:// (holds a '/',
# not s3://), no argument holds s3:// or is -r/--repo, and TSBAK_REPOSITORY is unset or also not S3.
tsbak_no_tls() {
  [ -n "${NODE_EXTRA_CA_CERTS:-}" ] || return 0
  case ${TSBAK_REPOSITORY:-/} in s3://*) return 0 ;; */*) ;; *) return 0 ;; esac
  case ${1:-} in s3://* | -*) return 0 ;; */*) ;; *) return 0 ;; esac
  for a in "$@"; do
    case $a in *s3://* | -r | --repo | --repo=* | -r?*) return 0 ;; esac
  done
  unset NODE_EXTRA_CA_CERTS
}

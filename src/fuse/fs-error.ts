/** An error with an errno name (ENOENT, EROFS, EAGAIN, ...), for the FUSE layer to pass on. */
export class FsError extends Error {
  constructor(
    readonly errno: string,
    message = errno,
  ) {
    super(message);
  }
}

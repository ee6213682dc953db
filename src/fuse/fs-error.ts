/** An error with an errno name (ENOENT, EROFS, ENODATA, ...), for the FUSE layer to pass on. */
export class FsError extends Error {
  constructor(
    readonly errno: string,
    message = errno,
  ) {
    super(message);
  }
}

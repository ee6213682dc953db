// How many bytes of SFTP WRITE requests one SSH connection has in flight, across every
// upload on it. OpenSSH's sshd copies, and reallocates, its buffers in proportion to the
// data queued inside it: with 2 MiB or more in flight on a connection (its channel window)
// it spent ~2x the CPU per byte written, and faulted in ~2 fresh pages per page of data,
// against 1 MiB in flight (docs/PERFORMANCE.md, "SFTP: bytes in flight per connection").
// On a 2-core server that CPU is taken from the client's backup. Less than 1 MiB saved little
// more on the server and cost the client more wake-ups per byte.

/** Default bytes of WRITE requests in flight per connection: four of OpenSSH's 255 KiB requests. */
export const SFTP_WRITE_WINDOW = 1024 * 1024;

/** A counting gate: at most `slots` holders at once, the rest wait in order. */
export class WriteWindow {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly slots: number) {
    this.free = slots;
  }

  /** Bytes in flight -> requests of `requestSize` in flight (at least one). */
  static forRequests(windowBytes: number, requestSize: number): WriteWindow {
    return new WriteWindow(Math.max(1, Math.floor(windowBytes / Math.max(1, requestSize))));
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }

  /** Runs `f` holding one slot. */
  async run<T>(f: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await f();
    } finally {
      this.release();
    }
  }
}

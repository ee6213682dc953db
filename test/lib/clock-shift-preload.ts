// Loaded with `node --import` into a program under test (never into a test itself): moves
// its wall clock (Date) forward by TSBAK_TEST_CLOCK_SHIFT_MS, to agree with a dev server
// whose clock a test advanced (restore expiry is judged by the program's own clock).
const shift = Number(process.env.TSBAK_TEST_CLOCK_SHIFT_MS ?? 0);
if (Number.isFinite(shift) && shift !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + shift);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return realNow() + shift;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
export {};

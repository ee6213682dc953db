// Human output helpers: sizes, durations, tables, and the one-line progress display.

/** The command the user typed (tsbak, tsbak-write): what messages on stderr start with. Set by main. */
export let programName = 'tsbak';
export function setProgramName(name: string): void {
  programName = name;
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${u[i]}`;
}

export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function table(rows: string[][]): string {
  const w: number[] = [];
  for (const r of rows) r.forEach((c, i) => (w[i] = Math.max(w[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ')).join('\n');
}

/** A single status line on stderr, redrawn at most every 200 ms, only on a TTY. */
export class ProgressLine {
  private last = 0;
  private shown = false;
  readonly enabled = !!process.stderr.isTTY;

  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 200) return;
    this.last = now;
    const cols = process.stderr.columns || 100;
    process.stderr.write(`\r\x1b[K${text.slice(0, cols - 1)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

export function fmtUsd(v: number): string {
  if (v === 0) return '$0';
  return v >= 0.01 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`;
}

/** "1 file", "2 files": `n` and the noun, plural unless n is 1 (`plural` for irregular ones). */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/**
 * A time for tables and messages: UTC, to the second, with the zone named
 * ("2026-12-04 07:38:00 UTC"), as snapshot times are stored and as a mount names them.
 */
export function fmtTime(t: string | Date | number): string {
  const m = typeof t === 'string' ? /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(t) : null;
  if (m) return `${m[1]} ${m[2]} UTC`;
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// Parity group records (src/format/parity-group.ts) as hostile input: what a writer encodes
// decodes the same; a flipped byte, another repository's key, rows of two groups, a repeated
// row or too many rows are refused with ParityFormatError.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { ParityFormatError, type ParityHeader } from '../src/format/parity.js';
import { decodeParityGroup, encodeParityGroup, type ParityGroupRow } from '../src/format/parity-group.js';

const key = randomBytes(32);
const members = [0, 1, 2].map((i) => ({ id: randomBytes(32), kind: (i === 2 ? 'tree' : 'data') as 'data' | 'tree', length: 1000 + i }));
const header = (row: number, over: Partial<ParityHeader> = {}): ParityHeader => ({ k: 4, m: 2, row, members, stripe: 1002, payloadSha256: randomBytes(32), ...over });
const rows: ParityGroupRow[] = [0, 1].map((row) => ({ object: randomBytes(32), size: 5000 + row, header: header(row) }));

t.test('round trip', async (t) => {
  const back = decodeParityGroup(key, encodeParityGroup(key, rows));
  t.equal(back.length, 2);
  for (let i = 0; i < 2; i++) {
    t.ok(back[i]!.object.equals(rows[i]!.object));
    t.equal(back[i]!.size, rows[i]!.size);
    t.same(back[i]!.header, rows[i]!.header);
  }
});

t.test('refused', async (t) => {
  const refused = (fn: () => unknown, what: string) => {
    try {
      fn();
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.ok(e instanceof ParityFormatError, `${what}: ${(e as Error).message}`);
    }
  };
  const good = encodeParityGroup(key, rows);
  for (const at of [0, 4, 5, 20, good.length - 1]) {
    const bad = Buffer.from(good);
    bad[at]! ^= 0x40;
    refused(() => decodeParityGroup(key, bad), `byte ${at} flipped`);
  }
  refused(() => decodeParityGroup(randomBytes(32), good), 'another key');
  refused(() => decodeParityGroup(key, good.subarray(0, 10)), 'cut short');
  const other = { ...rows[1]!, header: header(1, { members: members.slice(0, 2), stripe: 1001 }) };
  refused(() => decodeParityGroup(key, encodeParityGroup(key, [rows[0]!, other])), 'rows of two groups');
  refused(() => decodeParityGroup(key, encodeParityGroup(key, [rows[0]!, rows[0]!])), 'a repeated row');
  const m1 = [0].map((row) => ({ ...rows[0]!, header: header(row, { m: 1 }) }));
  t.equal(decodeParityGroup(key, encodeParityGroup(key, m1)).length, 1, 'one row of M=1');
  refused(() => decodeParityGroup(key, encodeParityGroup(key, [])), 'no rows');
  refused(() => decodeParityGroup(key, Buffer.alloc(200_000)), 'too large');
  // The largest group there can be (K=128, M=32) fits.
  const big = Array.from({ length: 128 }, () => ({ id: randomBytes(32), kind: 'data' as const, length: 7 }));
  const bigRows = Array.from({ length: 32 }, (_, row) => ({ object: randomBytes(32), size: 9, header: header(row, { k: 128, m: 32, members: big, stripe: 7 }) }));
  t.equal(decodeParityGroup(key, encodeParityGroup(key, bigRows)).length, 32, 'a record of 32 rows of 128 members is accepted');
});

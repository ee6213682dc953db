// Issue 24: check --read-data-subset n/t | x% | size (restic's forms).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { selectPacks } from '../src/repo/check-subset.js';
import { parseDataSubset } from '../src/cli/data-subset.js';
import { lastJson, run } from './lib/cli.js';
import { listFiles } from './lib/files.js';
import { tempDir } from './lib/temp.js';

const packs = Array.from({ length: 40 }, (_, i) => ({ name: `packs/data/00/${randomBytes(32).toString('hex')}`, size: (1 << 20) + i }));

t.test('groups n/t split the packs: disjoint, and together every pack', async (t) => {
  const seen = new Map<string, number>();
  for (let n = 1; n <= 5; n++) for (const p of selectPacks(packs, { group: n, of: 5 })) seen.set(p.name, (seen.get(p.name) ?? 0) + 1);
  t.equal(seen.size, packs.length, 'every pack in some group');
  t.ok([...seen.values()].every((c) => c === 1), 'in exactly one');
  t.same(selectPacks(packs, { group: 1, of: 1 }), packs);
});

t.test('a percentage or a size chooses packs at random', async (t) => {
  t.equal(selectPacks(packs, { percent: 10 }).length, 4);
  t.equal(selectPacks(packs, { percent: 0.1 }).length, 1, 'at least one pack');
  t.equal(selectPacks(packs, { percent: 100 }).length, 40);
  const sized = selectPacks(packs, { bytes: 3.5 * (1 << 20) });
  t.equal(sized.length, 4, 'packs until their sizes reach the bound');
  t.equal(new Set(sized.map((p) => p.name)).size, 4, 'distinct');
  t.same(selectPacks([], { percent: 50 }), []);
});

t.test('parsing: restic forms, and one line for anything else', async (t) => {
  t.same(parseDataSubset('1/5'), { group: 1, of: 5 });
  t.same(parseDataSubset('10%'), { percent: 10 });
  t.same(parseDataSubset('2.5%'), { percent: 2.5 });
  t.same(parseDataSubset('2G'), { bytes: 2 * 2 ** 30 });
  t.same(parseDataSubset('500M'), { bytes: 500 << 20 });
  for (const bad of ['0/5', '6/5', '1/0', '0%', '101%', 'abc', '', '-1G', '0'])
    t.throws(() => parseDataSubset(bad), { code: 'USAGE', message: /--read-data-subset/ }, JSON.stringify(bad));
});

t.test('through tsbak check: groups read every pack once, and find damage in theirs', async (t) => {
  const repo = path.join(tempDir(t), 'repo');
  t.equal(run('tsbak', ['init', repo, '--pack-size', '1']).code, 0);
  const src = tempDir(t);
  for (let i = 0; i < 12; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(600_000));
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const all = lastJson(run('tsbak', ['check', repo, '--read-data', '--json']).stdout);
  t.ok(all.packs_read >= 5, `${all.packs_read} packs`);
  const groups = [1, 2, 3].map((n) => {
    const r = run('tsbak', ['check', repo, '--read-data-subset', `${n}/3`, '--json']);
    t.equal(r.code, 0, r.stderr);
    return lastJson(r.stdout);
  });
  t.equal(groups.reduce((s, g) => s + g.packs_read, 0), all.packs_read, 'the three groups read every pack');
  t.equal(groups.reduce((s, g) => s + g.blobs_read, 0), all.blobs_read, 'and every blob');
  const human = run('tsbak', ['check', repo, '--read-data-subset', '25%']);
  t.equal(human.code, 0);
  t.match(human.stdout, /packs, \d+ of them read \(subset 25%\), \d+ blobs: no errors/);

  // Damage one data pack: only the group holding it finds it.
  const victim = listFiles(path.join(repo, 'packs', 'data'))[0]!;
  const file = path.join(repo, 'packs', 'data', victim);
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  const at = statSync(file).size >> 1;
  readSync(fd, b, 0, 1, at);
  b[0]! ^= 0xff;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  const group = (parseInt(path.basename(victim).slice(0, 8), 16) % 3) + 1;
  for (let n = 1; n <= 3; n++) {
    const r = run('tsbak', ['check', repo, '--read-data-subset', `${n}/3`]);
    t.equal(r.code, n === group ? 14 : 0, `group ${n}/3 ${n === group ? 'holds the damaged pack' : 'does not'}`);
  }
  const bad = run('tsbak', ['check', repo, '--read-data-subset', '7/3']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^tsbak: --read-data-subset 7\/3: n\/t needs 1 <= n <= t/);
});

// What the commands print: JSON (snake_case, one document, checked field by field against
// docs/JSON.md), errors under --json, names that are not plain text, times and plurals,
// and restore --include of a path that is not UTF-8. Through the real programs.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, lastJson, newRepo, run, testEnv } from './lib/cli.js';
import { DOC, checkAgainstDoc } from './lib/json-doc.js';
import { tempDir } from './lib/temp.js';

/** Runs a program through bash, so that arguments can hold any bytes ($'\xff'). */
function runShell(t: Test, script: string): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync('bash', ['-c', script], { env: { ...testEnv(), TSBAK: BIN('tsbak') } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

const NL = Buffer.from('new\nline');
const TAB = Buffer.from('tab\there');
const FF = Buffer.from([0x62, 0xff]); // "b\xff"
const FE = Buffer.from([0x62, 0xfe]); // "b\xfe": a directory
const REPL = Buffer.from('b\ufffd'); // valid UTF-8, what b\xff would become if decoded lossily

/** A source tree with names a terminal or a lossy decoding would confuse. */
function weirdSource(t: Test): string {
  const src = tempDir(t);
  const at = (name: Buffer) => Buffer.concat([Buffer.from(src + '/'), name]);
  writeFileSync(at(NL), 'nl\n');
  writeFileSync(at(Buffer.from('new')), 'a different file\n');
  writeFileSync(at(TAB), 'tab\n');
  writeFileSync(at(FF), 'ff\n');
  mkdirSync(at(FE));
  writeFileSync(Buffer.concat([at(FE), Buffer.from('/inside')]), 'in fe\n');
  mkdirSync(at(REPL));
  writeFileSync(Buffer.concat([at(REPL), Buffer.from('/other')]), 'in replacement-char dir\n');
  writeFileSync(path.join(src, 'back\\xff'), 'a literal backslash-x-f-f\n');
  symlinkSync(Buffer.from([0x74, 0x9, 0xfd]), at(Buffer.from('link')));
  return src;
}

t.test('ls: names quoted like ls -b; --json one document with lossless names; --json-lines the stream', async (t) => {
  const src = weirdSource(t);
  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src, '--json']);
  t.equal(w.code, 0, w.stderr);
  checkAgainstDoc(t, '`tsbak backup --json` and `tsbak-write --json`', lastJson(w.stdout));

  const ls = run('tsbak', ['ls', repo, 'latest', src]);
  t.equal(ls.code, 0, ls.stderr);
  const lines = ls.stdout.trim().split('\n');
  const rel = lines.map((l) => l.slice(src.length + 1));
  t.same(rel.sort(), ['b\\xfe', 'b\\xfe/inside', 'b\\xff', 'b\ufffd', 'b\ufffd/other', 'back\\\\xff', 'link', 'new', 'new\\nline', 'tab\\there'].sort(), 'escaped: \\n, \\t, \\xHH, \\\\');
  t.equal(new Set(lines).size, lines.length, 'no two names print the same');
  t.notOk(ls.stdout.includes('\t'), 'no raw tab');
  t.match(ls.stderr, /^snapshot [0-9a-f]{8} of .* at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC on /, 'the header names the time zone');
  const long = run('tsbak', ['ls', '-l', repo, 'latest', src]);
  t.match(long.stdout, / \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC .*\/link -> t\\t\\xfd$/m, 'ls -l: time with its zone, the target quoted');

  const doc = run('tsbak', ['ls', repo, 'latest', '--json']);
  t.equal(doc.code, 0, doc.stderr);
  const j = JSON.parse(doc.stdout); // one document: JSON.parse of the whole stdout
  checkAgainstDoc(t, '`tsbak ls --json`', j);
  t.equal(j.version, 1);
  t.equal(j.dir, '/');
  const byRaw = new Map<string, any>(j.entries.map((e: any) => [e.path_b64 ? Buffer.from(e.path_b64, 'base64').toString('latin1') : Buffer.from(e.path).toString('latin1'), e]));
  const key = (name: Buffer) => Buffer.concat([Buffer.from(src + '/'), name]).toString('latin1');
  t.equal(byRaw.get(key(NL))?.name, 'new\nline', 'a newline is exact in JSON');
  t.notOk(byRaw.get(key(NL))?.name_b64, 'no base64 for valid UTF-8');
  const ff = byRaw.get(key(FF));
  t.equal(ff?.name, 'b\ufffd', 'display form of a name that is not UTF-8');
  t.same(Buffer.from(ff.name_b64, 'base64'), FF, 'name_b64 holds the exact bytes');
  t.same(Buffer.from(byRaw.get(key(Buffer.concat([FE, Buffer.from('/inside')])))?.path_b64, 'base64'), Buffer.concat([Buffer.from(src + '/'), FE, Buffer.from('/inside')]), 'path_b64 below such a directory');
  t.notOk(byRaw.get(key(REPL))?.name_b64, 'U+FFFD itself is valid UTF-8');
  const link = byRaw.get(key(Buffer.from('link')));
  t.equal(link?.type, 'symlink');
  t.equal(link?.target, 't\t\ufffd');
  t.same(Buffer.from(link.target_b64, 'base64'), Buffer.from([0x74, 0x9, 0xfd]), 'the target, losslessly');
  t.equal(j.snapshot.id, lastJson(w.stdout).snapshot_id);

  const stream = run('tsbak', ['ls', repo, 'latest', '--json-lines']);
  t.equal(stream.code, 0, stream.stderr);
  const objs = stream.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.equal(objs[0].struct_type, 'snapshot');
  t.equal(objs[0].id, j.snapshot.id);
  checkAgainstDoc(t, '`tsbak ls --json`', Object.fromEntries(Object.entries(objs[0]).filter(([k]) => k !== 'struct_type')), 'snapshot.');
  t.ok(objs.slice(1).every((o) => o.struct_type === 'node'));
  t.equal(objs.length - 1, j.entries.length, 'one line per entry');
  for (const o of objs.slice(1)) {
    const { struct_type: _s, ...e } = o;
    checkAgainstDoc(t, '`tsbak ls --json`', [e], 'entries');
  }
  t.match(stream.stdout.split('\n')[0], /"struct_type":"snapshot"/);
  t.ok(DOC.get('`tsbak ls --json-lines`')?.has('struct_type'), 'struct_type is documented');

  // A directory named by its bytes.
  const sub = runShell(t, `exec "$TSBAK" ls "${repo}" latest "${src}/b"$'\\xfe' --json`);
  t.equal(sub.code, 0, sub.stderr);
  const sj = JSON.parse(sub.stdout.toString());
  t.same(Buffer.from(sj.dir_b64, 'base64'), Buffer.concat([Buffer.from(src + '/'), FE]), 'ls of a directory that is not UTF-8');
  t.same(sj.entries.map((e: any) => e.name), ['inside'], 'its entries, not those of the U+FFFD directory');
});

t.test('restore --include compares the bytes of the path', async (t) => {
  const src = weirdSource(t);
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);
  const target = tempDir(t);
  // b\xfd is not in the snapshot; decoded lossily it would equal b\ufffd, which is.
  const missing = runShell(t, `exec "$TSBAK" restore "${repo}" latest --target "${target}/m" --include "${src}/b"$'\\xfd'`);
  t.equal(missing.code, 16, `a path not in the snapshot: exit 16 (${missing.stderr})`);
  t.match(missing.stderr, /b\\xfd is not in snapshot/, 'named with its byte escaped');
  t.notOk(existsSync(path.join(target, 'm', src)), 'nothing restored');

  const fe = runShell(t, `exec "$TSBAK" restore "${repo}" latest --target "${target}/fe" --include="${src}/b"$'\\xfe'`);
  t.equal(fe.code, 0, fe.stderr);
  const names = readdirSync(Buffer.from(path.join(target, 'fe', src)) as unknown as string, { encoding: 'buffer' });
  t.same(names, [FE], 'only b\\xfe is restored');
  t.equal(readFileSync(Buffer.concat([Buffer.from(path.join(target, 'fe', src) + '/'), FE, Buffer.from('/inside')])).toString(), 'in fe\n');

  const repl = run('tsbak', ['restore', repo, 'latest', '--target', path.join(target, 'r'), '-i', path.join(src, 'b\ufffd'), '--json']);
  t.equal(repl.code, 0, repl.stderr);
  checkAgainstDoc(t, '`tsbak restore --json`', JSON.parse(repl.stdout));
  t.same(readdirSync(Buffer.from(path.join(target, 'r', src)) as unknown as string, { encoding: 'buffer' }), [REPL], 'the U+FFFD directory, not b\\xfe nor b\\xff');
});

t.test('every --json is documented and snake_case; errors under --json', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'one.txt'), 'one\n');
  const repo = newRepo(t);
  t.equal(run('tsbak-write', [repo, src]).code, 0);

  const snaps = run('tsbak', ['snapshots', repo, '--json']);
  checkAgainstDoc(t, '`tsbak snapshots --json`', JSON.parse(snaps.stdout));
  const check = run('tsbak', ['check', repo, '--read-data', '--json']);
  t.equal(check.code, 0, check.stderr);
  const cj = JSON.parse(check.stdout);
  checkAgainstDoc(t, '`tsbak check --json`', cj);
  t.ok(cj.blobs_read > 0, 'blobs_read');
  checkAgainstDoc(t, '`tsbak key list --json`', JSON.parse(run('tsbak', ['key', 'list', repo, '--json']).stdout));
  const cost = run('tsbak', ['cost', repo, '--json']);
  t.equal(cost.code, 0, cost.stderr);
  checkAgainstDoc(t, '`tsbak cost --json`', JSON.parse(cost.stdout));
  t.ok(JSON.parse(cost.stdout).restore.tiers.length >= 1);
  const warm = run('tsbak', ['warm', repo, 'latest', '--json']);
  t.equal(warm.code, 0, warm.stderr);
  checkAgainstDoc(t, '`tsbak warm --json`', JSON.parse(warm.stdout));
  const version = run('tsbak', ['version', '--json']);
  checkAgainstDoc(t, '`tsbak version --json`', JSON.parse(version.stdout));

  // Errors: the text line, then {"error": ...} as the last line of stderr; stdout empty.
  const lastErr = (stderr: string) => JSON.parse(stderr.trim().split('\n').pop()!);
  const nf = run('tsbak', ['ls', repo, 'nosuch', '--json']);
  t.equal(nf.code, 16);
  t.equal(nf.stdout, '');
  const e = lastErr(nf.stderr);
  t.same(Object.keys(e), ['error']);
  t.same(e.error, { code: 'NOT_FOUND', exit: 16, message: e.error.message });
  t.match(e.error.message, /no snapshot with id nosuch/);
  t.match(nf.stderr, /^tsbak: no snapshot with id nosuch/, 'the text line first');
  checkAgainstDoc(t, 'Errors', e);
  const usage = run('tsbak', ['restore', repo, 'latest', '--json']);
  t.equal(usage.code, 2);
  t.same(lastErr(usage.stderr).error.code, 'USAGE');
  t.equal(lastErr(usage.stderr).error.exit, 2);
  const wrong = run('tsbak', ['snapshots', repo, '--json'], { TSBAK_PASSWORD: 'wrong' });
  t.equal(wrong.code, 11);
  t.same(lastErr(wrong.stderr).error.code, 'WRONG_PASSWORD');
  const plain = run('tsbak', ['ls', repo, 'nosuch']);
  t.equal(plain.stderr.trim().split('\n').length, 1, 'without --json: one line, no JSON');
});

t.test('tables: times name their zone; counts are singular for 1', async (t) => {
  const src = tempDir(t);
  writeFileSync(path.join(src, 'one.txt'), 'one\n');
  const repo = newRepo(t);
  const w = run('tsbak-write', [repo, src]);
  t.match(w.stdout, /saved: 1 file, \d+ dirs?,/);
  const s = run('tsbak', ['snapshots', repo]);
  t.match(s.stdout, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  t.match(s.stdout, /^1 snapshot$/m);
  const c = run('tsbak', ['check', repo]);
  t.match(c.stdout, /checked 1 snapshot, /);
  const r = run('tsbak', ['restore', repo, 'latest', '--target', tempDir(t), '--include', path.join(src, 'one.txt')]);
  t.match(r.stdout, /: 1 file, /);
  const cost = run('tsbak', ['cost', repo]);
  t.match(cost.stdout, /\d\d:\d\d:\d\d UTC/, 'cost: snapshot times with their zone');
});

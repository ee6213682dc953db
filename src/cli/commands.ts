// The repository commands: init, snapshots, ls, restore, check, key. Backup is in write.ts.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../backend/open.js';
import { Repository, type Snapshot } from '../repo/repository.js';
import { checkRepository } from '../repo/check.js';
import { TreePrefetch } from '../repo/tree-prefetch.js';
import { restoreSnapshot } from '../restore/restore.js';
import type { TreeNode } from '../format/tree.js';
import { parseParitySpec } from '../format/parity.js';
import type { StorageClass } from '../backend/backend.js';
import { TsbakError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { parseDataSubset } from './data-subset.js';
import { openRepo, openRepoBackend, s3Options, type RepoArgs } from './open-repo.js';
import { count, fmtBytes, fmtTime, ProgressLine, table } from './output.js';
import { JSON_FORMAT_VERSION, lsEntryJson, snapshotJson } from './json-out.js';
import { isUtf8 as isUtf8Path, quoteName } from './names.js';
import { getAddedPassword, getNewPassword, givenPassword, promptHidden, readPasswordFile } from './secrets.js';
import { prepareColdData, type ColdArgs } from './warm.js';
import { coldPacksForCheck } from './check-cold.js';
import { cleanUpOnSignals } from './interrupt.js';
import { findSnapshot, signerLabel, snapshotFilter, type SelectArgs } from './select.js';
import { isFuture, matchesFilter } from '../repo/snapshot-select.js';
import { isUtf8 } from 'node:buffer';
import { buildPathMatcher } from '../writer/exclude-rules.js';
import { walkSelection } from '../restore/selection.js';
import { verifyRestore, type VerifyResult } from '../restore/verify.js';

const out = (s: string) => process.stdout.write(s + '\n');

export interface InitArgs extends RepoArgs {
  compression?: number;
  dataClass?: StorageClass;
  treeClass?: StorageClass;
  indexClass?: StorageClass;
  packSize?: number;
  parity?: string;
}

export async function cmdInit(a: InitArgs): Promise<number> {
  // zstd's levels 1..22; 0 (and below: tsbak does not use zstd's fast negative levels) stores uncompressed.
  if (a.compression !== undefined && !(Number.isInteger(a.compression) && a.compression >= 0 && a.compression <= 22)) throw new TsbakError('USAGE', `--compression ${a.compression}: give a zstd level from 1 (fastest) to 22 (smallest), or 0 for none`);
  // A bad --parity is refused before anything is created.
  if (a.parity !== undefined) {
    try {
      parseParitySpec(a.parity === 'none' ? 'off' : a.parity);
    } catch (e) {
      throw new TsbakError('USAGE', `--parity: ${(e as Error).message}`);
    }
  }
  const backend = await openRepoBackend(a);
  const password = await getNewPassword(a);
  const cold = a.dataClass === 'GLACIER' || a.dataClass === 'DEEP_ARCHIVE';
  const dataPack = (a.packSize ?? (cold ? 64 : 16)) << 20;
  const repo = await Repository.init(backend, password, {
    compressionLevel: a.compression,
    packSize: { data: dataPack, tree: 4 << 20 },
    storageClass: initStorageClasses(a),
  });
  out(`created tsbak repository ${repo.id} at ${backend.location}`);
  if (a.parity !== undefined) await repo.setParity(a.parity);
  const par = repo.parity;
  const how = a.parity !== undefined ? '' : par ? ' (the default here; --parity none for none)' : ' (the default here; tsbak cost shows what --parity 10+2 would cost)';
  out(`parity across packs: ${par ? `${par.k}+${par.m} (any ${par.m} lost packs of ${par.k} rebuilt)` : 'off'}${how}`);
  const sc = repo.storageClasses;
  out(`storage classes: data packs ${sc.data}, tree packs ${sc.tree}, index ${sc.index}, snapshots, keys and config ${sc.other}`);
  out('Keep the passphrase safe: without it (or a copy of keys/ and the passphrase) the data cannot be read.');
  if (backend.location.startsWith('s3://')) await (await import('./s3.js')).warnAboutBucket(a);
  return EXIT.OK;
}

/**
 * The classes init writes into config. Tree packs and index files of a cold repository
 * (data in GLACIER or DEEP_ARCHIVE) default to COLD_METADATA_CLASS (README, "Storage
 * classes"); of a hot one, STANDARD. `index` is named only when it differs from `other`, so
 * that such configs stay version 2.
 */
export function initStorageClasses(a: Pick<InitArgs, 'dataClass' | 'treeClass' | 'indexClass'>): { data: StorageClass; tree: StorageClass; other: StorageClass; index?: StorageClass } {
  const data = a.dataClass ?? 'STANDARD';
  const meta: StorageClass = data === 'GLACIER' || data === 'DEEP_ARCHIVE' ? COLD_METADATA_CLASS : 'STANDARD';
  const tree = a.treeClass ?? meta;
  const index = a.indexClass ?? meta;
  return { data, tree, other: 'STANDARD', ...(index !== 'STANDARD' ? { index } : {}) };
}

/** Class of tree packs and index files of a new cold repository, unless --tree-class/--index-class say otherwise. */
export const COLD_METADATA_CLASS: StorageClass = 'STANDARD';

function shortId(id: string): string {
  return id.slice(0, 8);
}

/** The `n` newest of each host and set of paths (restic's --latest), in the list's order (oldest first). */
function latestPerGroup(snaps: Snapshot[], n: number): Snapshot[] {
  const kept = new Set<Snapshot>();
  const count = new Map<string, number>();
  for (let i = snaps.length - 1; i >= 0; i--) {
    const s = snaps[i]!;
    const key = JSON.stringify([s.info.host, [...s.info.paths].sort()]);
    const c = count.get(key) ?? 0;
    if (c >= n) continue;
    count.set(key, c + 1);
    kept.add(s);
  }
  return snaps.filter((s) => kept.has(s));
}

export async function cmdSnapshots(a: RepoArgs & SelectArgs & { json?: boolean; latest?: number }): Promise<number> {
  if (a.latest !== undefined && !(Number.isInteger(a.latest) && a.latest >= 1)) throw new TsbakError('USAGE', `--latest ${a.latest}: give a whole number of snapshots, 1 or more`);
  const repo = await openRepo(a, { index: false });
  const bad: string[] = [];
  let snaps = await repo.listSnapshots((id, e) => bad.push(`snapshot ${shortId(id)}: ${(e as Error).message}`));
  const filter = snapshotFilter(a);
  snaps = snaps.filter((s) => matchesFilter(s, filter));
  if (a.latest !== undefined) snaps = latestPerGroup(snaps, a.latest);
  const now = Date.now();
  if (a.json) out(JSON.stringify(snaps.map((s) => snapshotJson(s, now))));
  else {
    const rows = [['ID', 'Time', 'Host', 'Signer', 'Tags', 'Files', 'Added', 'Paths']];
    let future = 0;
    for (const s of snaps) {
      const f = isFuture(s.info, now);
      if (f) future++;
      rows.push([shortId(s.id), fmtTime(s.info.time) + (f ? ' (future!)' : ''), s.info.host, signerLabel(s.signer), s.info.tags.join(','), String(s.info.stats.files), fmtBytes(s.info.stats.bytesAdded), s.info.paths.join(' ')]);
    }
    out(table(rows));
    out(count(snaps.length, 'snapshot'));
    if (future) out(`${future} dated more than a day in the future (future!): never taken as latest; check the clock of the machine that made them, or who signed them`);
  }
  for (const b of bad) process.stderr.write(`tsbak: ${b}\n`);
  return bad.length ? EXIT.CORRUPT : EXIT.OK;
}

/** Walks from the snapshot root to `p` (absolute path inside the snapshot). */
async function findNode(repo: Repository, snap: Snapshot, p: Buffer): Promise<{ node: TreeNode | null; subtree: Buffer }> {
  let subtree: Buffer = Buffer.from(snap.info.tree, "hex");
  let node: TreeNode | null = null;
  const comps = splitPath(p);
  for (let i = 0; i < comps.length; i++) {
    const tree = await repo.loadTree(subtree);
    node = tree.nodes.find((n) => n.name.equals(comps[i]!)) ?? null;
    // Below a file (or symlink) there is nothing: /a/file/x is not in the snapshot.
    if (!node || (node.type !== 'dir' && i < comps.length - 1)) throw new TsbakError('NOT_FOUND', `${quoteName(p)} is not in snapshot ${shortId(snap.id)}; list it with 'tsbak ls'`);
    if (node.type !== 'dir') return { node, subtree: Buffer.alloc(0) };
    subtree = node.subtree!;
  }
  return { node, subtree };
}

/** The components of a path given as bytes ('.' and empty ones dropped, '..' going up), compared as bytes. */
function splitPath(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== 0x2f) continue;
    const c = p.subarray(start, i);
    start = i + 1;
    if (!c.length || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) out.pop();
    else out.push(c);
  }
  return out;
}

/** `p` as an absolute path without '.', '..' or empty components, as bytes. */
function absolutePath(p: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const c of splitPath(p)) parts.push(Buffer.from('/'), c);
  return parts.length ? Buffer.concat(parts) : Buffer.from('/');
}

/** The bytes of a value as typed (main.ts passes them in rawValues), or its UTF-8. */
function rawOf(a: { rawValues?: Record<string, Buffer[]> }, name: string, value: string, i = 0): Buffer {
  const b = a.rawValues?.[name]?.[i];
  return b && b.toString() === value ? b : Buffer.from(value);
}

export function modeString(n: TreeNode): string {
  const t = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b', socket: 's' }[n.type];
  const m = n.mode;
  const rwx = (b: number, s: boolean, sc: string) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${s ? (b & 1 ? sc : sc.toUpperCase()) : b & 1 ? 'x' : '-'}`;
  return t + rwx((m >> 6) & 7, !!(m & 0o4000), 's') + rwx((m >> 3) & 7, !!(m & 0o2000), 's') + rwx(m & 7, !!(m & 0o1000), 't');
}

export async function cmdLs(a: RepoArgs & SelectArgs & { snapshot: string; dir?: string; long?: boolean; recursive?: boolean; json?: boolean; jsonLines?: boolean; rawValues?: Record<string, Buffer[]> }): Promise<number> {
  const repo = await openRepo(a);
  const snap = await findSnapshot(repo, a.snapshot, a);
  await repo.loadIndex();
  // --json: one document, the snapshot and its entries; --json-lines: the snapshot, then one
  // entry per line as they are found (docs/JSON.md). Without either, which snapshot this is
  // goes to stderr: stdout stays a list of paths.
  const entries: Array<Record<string, unknown>> = [];
  if (a.jsonLines) out(JSON.stringify({ struct_type: 'snapshot', ...snapshotJson(snap) }));
  else if (!a.json) process.stderr.write(`snapshot ${shortId(snap.id)} of ${snap.info.paths.map(quoteName).join(' ')} at ${fmtTime(snap.info.time)} on ${quoteName(snap.info.host)}, signed by ${signerLabel(snap.signer)}:\n`);
  const base = absolutePath(a.dir === undefined ? Buffer.from('/') : rawOf(a, 'dir', a.dir));
  const { node, subtree } = await findNode(repo, snap, base);
  const print = (p: Buffer, n: TreeNode) => {
    if (a.jsonLines) out(JSON.stringify({ struct_type: 'node', ...lsEntryJson(p, n) }));
    else if (a.json) entries.push(lsEntryJson(p, n));
    else if (a.long) {
      const t = fmtTime(new Date(Number(n.mtimeNs / 1_000_000n)));
      out(`${modeString(n)} ${quoteName(String(n.user || n.uid)).padEnd(8)} ${quoteName(String(n.group || n.gid)).padEnd(8)} ${String(n.size).padStart(12)} ${t} ${quoteName(p)}${n.type === 'symlink' ? ' -> ' + quoteName(n.target ?? Buffer.alloc(0)) : ''}`);
    } else out(quoteName(p));
  };
  const finish = (code: number) => {
    if (a.json && !a.jsonLines) out(JSON.stringify({ version: JSON_FORMAT_VERSION, snapshot: snapshotJson(snap), dir: base.toString(), ...(isUtf8Path(base) ? {} : { dir_b64: base.toString('base64') }), entries }));
    return code;
  };
  if (node && node.type !== 'dir') {
    print(base, node);
    return finish(EXIT.OK);
  }
  let refused = 0;
  // Subdirectories' trees load ahead of the walk, several at once; the output keeps its order.
  const trees = new TreePrefetch((id) => repo.loadTree(id), { concurrency: a.recursive ?? true ? 16 : 0 });
  const walk = async (tree: Buffer, dir: Buffer) => {
    const t = await trees.get(tree);
    // Entries the decoder refused (format/tree.ts) are not listed: named on stderr, and the exit says damage.
    for (const x of t.rejected ?? []) {
      refused++;
      process.stderr.write(`tsbak: ${quoteName(dir)}: entry "${quoteName(x.name)}" of tree ${tree.toString('hex').slice(0, 16)} refused (${x.reason}); run 'tsbak check'\n`);
    }
    for (const n of t.nodes) {
      const p = Buffer.concat([dir.length === 1 ? Buffer.alloc(0) : dir, Buffer.from('/'), n.name]);
      print(p, n);
      if (n.type === 'dir' && n.subtree && (a.recursive ?? true)) await walk(n.subtree, p);
    }
  };
  await walk(subtree, base);
  return finish(refused ? EXIT.CORRUPT : EXIT.OK);
}

export async function cmdRestore(
  a: ColdArgs &
    SelectArgs & { snapshot: string; target: string; include?: string[]; exclude?: string[]; iexclude?: string[]; dryRun?: boolean; verify?: boolean; json?: boolean; noOwner?: boolean; securityXattrs?: boolean; mapByName?: boolean; noWait?: boolean; rawValues?: Record<string, Buffer[]> },
): Promise<number> {
  const exclude = buildPathMatcher(a.exclude, a.iexclude);
  const repo = await openRepo(a);
  // The index loads while the snapshot is found (their reads are independent).
  const indexLoaded = repo.loadIndex();
  indexLoaded.catch(() => {});
  const snap = await findSnapshot(repo, a.snapshot, a);
  await indexLoaded;
  // An --include that names nothing would restore nothing and "succeed": exit 16 instead.
  // Include paths are compared as the bytes typed: argv's UTF-8 decoding would make a name
  // that is not UTF-8 equal to another one.
  const include = (a.include ?? []).map((s, i) => rawOf(a, 'include', s, i));
  for (const inc of include) await findNode(repo, snap, absolutePath(inc));
  if (a.dryRun) return restoreDryRun(repo, snap, { ...a, include }, exclude);
  // Data in Glacier/Deep Archive: request every restore needed in one batch, then wait for
  // them, or (--no-wait) stop with EXIT.COLD_PENDING; the next run resumes (journaled).
  const cold = await prepareColdData(repo, snap, a.include, a, { wait: !a.noWait, defaultTier: 'Standard' });
  if (!cold.ready) {
    await repo.coldStorage?.close();
    process.stderr.write(`tsbak: restores requested, run again later${cold.expectedBy ? ` (expected by ${fmtTime(cold.expectedBy)})` : ''}\n`);
    return EXIT.COLD_PENDING;
  }
  const progress = new ProgressLine();
  const start = Date.now();
  let files = 0;
  let bytes = 0;
  const res = await restoreSnapshot(repo, snap, {
    target: a.target,
    include,
    exclude,
    owner: a.noOwner ? false : undefined,
    securityXattrs: a.securityXattrs,
    mapByName: a.mapByName,
    onWarning: (p, m) => {
      progress.clear();
      process.stderr.write(`tsbak: ${p}: ${m}\n`);
    },
    onFile: (n) => {
      files++;
      bytes += n;
      progress.update(`restored ${count(files, 'file')}, ${fmtBytes(bytes)}`);
    },
  });
  progress.clear();
  let verified: VerifyResult | undefined;
  if (a.verify) {
    let n = 0;
    verified = await verifyRestore(repo, snap, path.resolve(a.target), { include, exclude }, () => progress.update(`verified ${++n} files`));
    progress.clear();
    for (const m of verified.mismatches) process.stderr.write(`tsbak: verify: ${m.path}: ${m.message}\n`);
  }
  const summary = {
    snapshot: snap.id,
    target: a.target,
    files: res.files,
    dirs: res.dirs,
    bytes: res.bytes,
    errors: res.errors.map((e) => ({ path: e.path, message: e.message, damage: !!e.damage })),
    duration_seconds: (Date.now() - start) / 1000,
    ...(verified ? { verified: { files: verified.files, bytes: verified.bytes, mismatches: verified.mismatches } } : {}),
  };
  if (a.json) out(JSON.stringify(summary));
  else {
    out(`restored snapshot ${shortId(snap.id)} to ${a.target}: ${count(res.files, 'file')}, ${count(res.dirs, 'dir')}, ${fmtBytes(res.bytes)}${res.errors.length ? `, ${count(res.errors.length, 'error')}` : ''}`);
    if (verified) out(`verified ${count(verified.files, 'file')}, ${fmtBytes(verified.bytes)}: ${verified.mismatches.length ? `${verified.mismatches.length} differ from the snapshot (see above)` : 'all as in the snapshot'}`);
  }
  // Entries the snapshot's trees hold but no restore may trust are damage (14), as are files
  // that read back differently (--verify); files that could not be read or written, partial (3).
  return res.errors.some((e) => e.damage) || verified?.mismatches.length ? EXIT.CORRUPT : res.errors.length ? EXIT.PARTIAL : EXIT.OK;
}

/** restore --dry-run: what would be restored, one path a line (or in --json), nothing written. */
async function restoreDryRun(repo: Repository, snap: Snapshot, a: { include?: Array<string | Buffer>; json?: boolean; target: string }, exclude: ((p: Buffer, isDir: boolean) => boolean) | undefined): Promise<number> {
  let files = 0;
  let dirs = 0;
  let bytes = 0;
  const paths: string[] = [];
  await walkSelection(repo, snap, { include: a.include, exclude }, (p, node) => {
    if (node.type === 'dir') dirs++;
    else if (node.type === 'file') {
      files++;
      bytes += node.size;
    }
    if (a.json) paths.push(p.toString());
    else out(`would restore ${quoteName(p)}`);
  });
  if (a.json) out(JSON.stringify({ dry_run: true, snapshot: snap.id, target: a.target, files, dirs, bytes, paths }));
  else out(`would restore snapshot ${shortId(snap.id)} to ${a.target}: ${files} file${files === 1 ? '' : 's'}, ${dirs} dir${dirs === 1 ? '' : 's'}, ${fmtBytes(bytes)}`);
  return EXIT.OK;
}

export async function cmdCheck(a: ColdArgs & { readData?: boolean; readDataSubset?: string }): Promise<number> {
  const subset = a.readDataSubset !== undefined ? parseDataSubset(a.readDataSubset) : undefined;
  const repo = await openRepo(a);
  // check verifies the repository's trees, not this machine's copies of them.
  repo.useTreeCache(null);
  const progress = new ProgressLine();
  let expected: string | null = null;
  const coldPacks = coldPacksForCheck(
    repo,
    a,
    (line) => {
      progress.clear();
      process.stderr.write(`tsbak: ${line}\n`);
    },
    (by) => (expected = by),
  );
  // Interrupted, it takes its lock back: a lock left behind would hold off prune for 30 minutes.
  const interrupt = cleanUpOnSignals(repo, (sig) => `check interrupted by ${sig}`);
  const r = await checkRepository(repo, { readData: a.readData, readDataSubset: subset, coldPacks, onProgress: (m) => progress.update(m, true) });
  interrupt.dispose();
  await repo.coldStorage?.close();
  progress.clear();
  const { packsRead, coldNotRead, ...report } = r;
  if (a.json) out(JSON.stringify({ errors: report.errors, warnings: report.warnings, snapshots: report.snapshots, trees: report.trees, packs: report.packs, blobs_read: report.blobsRead, ...(a.readData || subset ? { packs_read: packsRead, cold_not_read: coldNotRead } : {}) }));
  else {
    for (const w of r.warnings) out(`warning: ${w}`);
    for (const e of r.errors) out(`error: ${e}`);
    const read = subset ? `, ${packsRead} of them read (subset ${a.readDataSubset}), ${count(r.blobsRead, 'blob')}` : a.readData ? `, ${count(r.blobsRead, 'blob')} read` : '';
    out(`checked ${count(r.snapshots, 'snapshot')}, ${count(r.trees, 'tree')}, ${count(r.packs, 'pack')}${read}: ${r.errors.length ? count(r.errors.length, 'error') : 'no errors'}`);
    if (coldNotRead.packs)
      out(
        `${coldNotRead.packs} packs (${fmtBytes(coldNotRead.bytes)}) in cold storage were not read: their restores are requested${expected ? `, expected by ${expected}` : ''}; ` +
          `run this check again then${subset && 'group' in subset ? ' (the same n/t reads the same packs)' : ''}`,
      );
  }
  // Not read yet is not damage: exit 15 (run again later) unless damage was found.
  return r.errors.length ? EXIT.CORRUPT : coldNotRead.packs ? EXIT.COLD_PENDING : EXIT.OK;
}

export async function cmdKeyAddWriter(a: RepoArgs & { name: string; out: string; protect?: boolean; newPasswordFile?: string }): Promise<number> {
  if (a.newPasswordFile !== undefined && !a.protect) throw new TsbakError('USAGE', '--new-password-file is the passphrase of a protected key file: give --protect too');
  const repo = await openRepo(a);
  let passphrase: string | undefined;
  if (a.protect && a.newPasswordFile !== undefined) {
    passphrase = readPasswordFile(a.newPasswordFile);
    if (!passphrase) throw new TsbakError('USAGE', `${a.newPasswordFile} holds an empty passphrase`);
  } else if (a.protect) {
    if (!process.stdin.isTTY) throw new TsbakError('USAGE', 'no passphrase for the key file: give it with --new-password-file (no terminal to ask on)');
    passphrase = await promptHidden('Passphrase for the new key file: ');
    if (passphrase !== (await promptHidden('Repeat: '))) throw new TsbakError('USAGE', 'the passphrases do not match');
  }
  // The file is written before the key is registered: a key whose file cannot be saved is not made.
  const file = await repo.addWriterKey(a.name, passphrase, async (f) => {
    try {
      writeFileSync(a.out, JSON.stringify(f, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' ? 'it exists already; choose another --out or move it away' : code === 'ENOENT' ? 'its folder does not exist' : (code ?? (e as Error).message);
      throw new TsbakError('USAGE', `cannot write key file ${a.out}: ${why}; no key was added`);
    }
  });
  out(`added write-only key ${file.keyId} (${a.name}); saved to ${a.out}`);
  return EXIT.OK;
}

export async function cmdKeyList(a: RepoArgs & { json?: boolean }): Promise<number> {
  const repo = await openRepo(a, { index: false });
  const keys = await repo.listKeys();
  if (a.json) out(JSON.stringify(keys.map((k) => ({ id: k.id, kind: k.kind, name: k.name ?? null, host: k.host ?? null, created: k.created, revoked: k.revoked ?? null }))));
  else out(table([['ID', 'Kind', 'Name/Host', 'Created'], ...keys.map((k) => [k.id.slice(0, 12), k.kind === 'full' ? 'full (passphrase)' : k.kind === 'writer' ? (k.revoked ? `write-only, revoked ${k.revoked}` : 'write-only') : String(k.kind), k.name ?? k.host ?? '', k.created])]));
  return EXIT.OK;
}

export async function cmdKeyAddPassword(a: RepoArgs & { newPasswordFile?: string }): Promise<number> {
  const repo = await openRepo(a, { index: false });
  await repo.addPassword(await getAddedPassword(a.newPasswordFile, givenPassword(a)));
  out('added a passphrase to the repository');
  return EXIT.OK;
}

export async function cmdKeyPasswd(a: RepoArgs & { newPasswordFile?: string }): Promise<number> {
  const repo = await openRepo(a, { index: false });
  if (!repo.canRead) throw new TsbakError('USAGE', 'key passwd changes a passphrase of the full key; a write-only key file is protected by its own (make a new one with key add-writer --protect)');
  const r = await repo.changePassword(await getAddedPassword(a.newPasswordFile, givenPassword(a)));
  out(`changed the passphrase: ${r.removed} replaced by ${r.added}`);
  return EXIT.OK;
}


export async function cmdKeyRemove(a: RepoArgs & { key: string }): Promise<number> {
  const repo = await openRepo(a, { index: false });
  const r = await repo.revokeWriterKey(a.key);
  out(`revoked write-only key ${r.keyId} (${r.name}); its ${count(r.kept, 'snapshot')} made so far ${r.kept === 1 ? 'stays' : 'stay'} trusted, any later one is refused`);
  return EXIT.OK;
}

export async function cmdKeySignConfig(a: RepoArgs): Promise<number> {
  const repo = await openRepo(a, { index: false });
  out((await repo.signConfig()) ? `signed the config of ${repo.backend.location} (wrote config.sig)` : `the config of ${repo.backend.location} is signed already`);
  return EXIT.OK;
}

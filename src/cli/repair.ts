// `tsbak repair index`, `tsbak repair snapshots`, `tsbak recover`: rebuilding what a lost or
// damaged index file, a lost pack or a lost index/ and snapshots/ took away, from the packs.
import * as path from 'node:path';
import type { StorageClass } from '../backend/backend.js';
import type { Snapshot } from '../repo/repository.js';
import { repairIndex } from '../repo/index-repair.js';
import { repairSnapshots } from '../repo/snapshot-repair.js';
import { findRoots, indexFromPackHeaders } from '../repo/pack-recovery.js';
import { restoreSnapshot } from '../restore/restore.js';
import { TsbakError } from '../errors.js';
import type { StoredPack } from '../repo/pack-headers.js';
import { estimateRestoreCost, fmtUsd } from '../glacier/cost.js';
import { checkRestoreRequest, parseTier } from '../glacier/policy.js';
import { EXIT } from './exit-codes.js';
import { openRepo, type RepoArgs } from './open-repo.js';
import { fmtBytes, programName, ProgressLine } from './output.js';
import { takeExclusiveLock } from './repair-lock.js';

const out = (s: string) => process.stdout.write(s + '\n');

export interface RepairIndexArgs extends RepoArgs {
  dryRun?: boolean;
  readData?: boolean;
  json?: boolean;
  warm?: boolean;
  tier?: string;
  days?: number;
}

/** Cold packs: how many, how big, and what a restore of them costs, per storage class. */
function coldSummary(cold: StoredPack[], a: { tier?: string; days?: number }) {
  const byClass = new Map<StorageClass, StoredPack[]>();
  for (const p of cold) {
    const sc = (p.storageClass ?? 'GLACIER') as StorageClass;
    let l = byClass.get(sc);
    if (!l) byClass.set(sc, (l = []));
    l.push(p);
  }
  const tier = parseTier(a.tier, 'Bulk');
  const days = a.days ?? 7;
  return [...byClass].map(([sc, packs]) => {
    const bytes = packs.reduce((n, p) => n + p.size, 0);
    const cost = estimateRestoreCost(sc, tier, packs.length, bytes, days);
    return { storage_class: sc, packs: packs.length, bytes, tier, days, restore_usd: cost.totalUsd, hours: [cost.hoursLow, cost.hoursHigh] as [number, number] };
  });
}

export async function cmdRepairIndex(a: RepairIndexArgs): Promise<number> {
  const repo = await openRepo(a);
  // The new index files are the master's, and backups dedup against them: with write-only
  // keys about, a pack's header is a writer's word, so its blobs are read and checked first.
  if (!a.readData && (await repo.listKeys()).some((k) => k.kind !== 'full')) {
    a = { ...a, readData: true };
    process.stderr.write(`${programName}: write-only keys exist: reading the packs to be listed whole, so that the master's index lists only blobs that open and match their id\n`);
  }
  const lock = a.dryRun ? null : await takeExclusiveLock(repo, 'repair index');
  const progress = new ProgressLine();
  let r: Awaited<ReturnType<typeof repairIndex>>;
  try {
    r = await repairIndex(repo, { dryRun: a.dryRun, readData: a.readData, onProgress: (m) => progress.update(m, true), assertLocked: lock?.assertHeld });
  } finally {
    progress.clear();
    await lock?.release();
  }
  const cold = coldSummary(r.cold, a);
  let warmed = 0;
  if (a.warm && r.cold.length && !a.dryRun) {
    if (!repo.coldStorage) throw new TsbakError('USAGE', `${repo.backend.location} says some packs are archived, but has no cold storage to restore them with`);
    const tier = parseTier(a.tier, 'Bulk');
    for (const c of cold) checkRestoreRequest(c.storage_class, tier, c.days);
    const res = await repo.coldStorage.warm(
      r.cold.map((p) => ({ name: p.name, kind: p.kind, bytes: p.size, storageClass: (p.storageClass ?? 'GLACIER') as StorageClass })),
      { tier, days: a.days ?? 7 },
    );
    warmed = res.requested;
  }
  await repo.coldStorage?.close();
  if (a.json) {
    out(
      JSON.stringify({
        dry_run: r.dryRun,
        packs: r.packs,
        indexed_already: r.indexedAlready,
        headers_read: r.headersRead,
        packs_listed: r.packsListed,
        blobs_listed: r.blobsListed,
        damaged_packs: r.damaged,
        blobs_verified: a.readData ? r.blobsVerified : null,
        damaged_blobs: r.damagedBlobs,
        packs_not_matching_name: r.packsNotMatchingName,
        cold_packs: r.cold.map((p) => ({ pack: p.name, bytes: p.size, storage_class: p.storageClass ?? null })),
        cold_restore: cold,
        restores_requested: warmed,
        index_files_written: r.indexFilesWritten,
        index_files_removed: r.indexFilesRemoved,
        index_files_kept: r.indexFilesKept,
      }),
    );
  } else {
    const would = r.dryRun ? 'would be ' : '';
    out(`${r.packs} packs: ${r.indexedAlready} listed by sound index files, ${r.headersRead} headers read`);
    out(`${r.packsListed} packs (${r.blobsListed} blobs) ${would}listed in ${r.indexFilesWritten.length} new index file(s)${r.dryRun ? '' : ` ${r.indexFilesWritten.map((f) => path.basename(f).slice(0, 12)).join(' ')}`}`);
    for (const f of r.indexFilesRemoved) out(`index file ${f.name} ${would}removed: ${f.reason}`);
    for (const f of r.indexFilesKept) out(`index file ${f.name} kept: ${f.reason}`);
    for (const d of r.damaged) out(`damaged: pack ${d.pack}: ${d.reason}; not listed from its header (an index file that lists it already is kept): run 'tsbak check --read-data', then 'tsbak repair snapshots --read-data'`);
    if (a.readData) out(`${r.blobsVerified} blobs read and verified`);
    for (const b of r.damagedBlobs) out(`damaged: blob ${b.blob.slice(0, 16)} in pack ${b.pack}: ${b.reason}; left out of the index`);
    for (const p of r.packsNotMatchingName) out(`damaged: pack ${p}: its bytes do not match its name`);
    if (r.cold.length) {
      for (const p of r.cold) out(`cold: pack ${p.name} (${p.storageClass ?? 'archived'}, ${fmtBytes(p.size)}): its header cannot be read before a restore`);
      for (const c of cold) out(`restoring ${c.packs} ${c.storage_class} packs (${fmtBytes(c.bytes)}, tier ${c.tier}, kept ${c.days} days) costs ~${fmtUsd(c.restore_usd)} and takes ${Math.round(c.hours[0])}-${Math.round(c.hours[1])} h`);
      out(warmed ? `requested ${warmed} restores; run 'tsbak repair index' again once they are done` : `run with --warm to request these restores, then again once they are done`);
    }
  }
  if (r.cold.length) return EXIT.COLD_PENDING;
  return r.damaged.length || r.damagedBlobs.length || r.packsNotMatchingName.length ? EXIT.CORRUPT : EXIT.OK;
}

export interface RepairSnapshotsArgs extends RepoArgs {
  forget?: boolean;
  readData?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export async function cmdRepairSnapshots(a: RepairSnapshotsArgs): Promise<number> {
  const repo = await openRepo(a);
  // The repository's trees are what is judged, not this machine's copies of them.
  repo.useTreeCache(null);
  const lock = a.dryRun ? null : await takeExclusiveLock(repo, 'repair snapshots');
  const progress = new ProgressLine();
  let r: Awaited<ReturnType<typeof repairSnapshots>>;
  try {
    r = await repairSnapshots(repo, { forget: a.forget, readData: a.readData, dryRun: a.dryRun, onProgress: (m) => progress.update(m, true), assertLocked: lock?.assertHeld });
  } finally {
    progress.clear();
    await repo.closeWriter();
    await lock?.release();
  }
  await repo.coldStorage?.close();
  if (a.json) {
    out(
      JSON.stringify({
        dry_run: r.dryRun,
        snapshots: r.snapshots,
        repaired: r.repaired.map((s) => ({ id: s.id, new_id: s.newId, existing: s.existing, forgotten: s.forgotten, affected: s.affected })),
        unreadable_snapshots: r.unreadable,
      }),
    );
  } else {
    const would = r.dryRun ? 'would be ' : '';
    for (const s of r.repaired) {
      out(`snapshot ${s.id.slice(0, 8)} ${would}repaired${s.newId ? ` as ${s.newId.slice(0, 8)}${s.existing ? ' (made by an earlier run)' : ''}` : ''}${s.forgotten ? ', original removed' : ''}:`);
      for (const x of s.affected) out(`  ${x.path}: ${x.what}`);
    }
    for (const u of r.unreadable) out(`snapshot ${u.id.slice(0, 8)} cannot be read: ${u.reason}`);
    out(`${r.snapshots} snapshots checked, ${r.repaired.length} ${r.dryRun ? 'need repair' : 'repaired'}${r.repaired.length && !a.forget && !r.dryRun ? " (the originals stay: remove them with --forget or 'tsbak forget')" : ''}`);
  }
  return r.unreadable.length ? EXIT.CORRUPT : EXIT.OK;
}

export interface RecoverArgs extends RepoArgs {
  target: string;
  noOwner?: boolean;
  allRoots?: boolean;
  json?: boolean;
}

export async function cmdRecover(a: RecoverArgs): Promise<number> {
  // Nothing of a local cache is used: what the repository's packs hold, and nothing else.
  const repo = await openRepo({ ...a, noCache: true });
  const progress = new ProgressLine();
  const say = (m: string) => progress.update(m, true);
  const found = await indexFromPackHeaders(repo, { onProgress: say });
  const roots = await findRoots(repo, { onProgress: say });
  progress.clear();
  const log = (s: string) => (a.json ? process.stderr.write(s + '\n') : out(s));
  log(`${found.packs} packs: ${found.headersRead} headers read (${found.blobs} blobs), ${found.damaged.length} damaged, ${found.cold.length} cold`);
  for (const d of found.damaged) log(`damaged: pack ${d.pack}: ${d.reason}; its blobs are lost`);
  for (const p of found.cold) log(`cold: pack ${p.name} (${p.storageClass ?? 'archived'}, ${fmtBytes(p.size)}): its header cannot be read before a restore`);
  const cold = coldSummary(found.cold, {});
  for (const c of cold) log(`restoring ${c.packs} ${c.storage_class} packs (${fmtBytes(c.bytes)}, tier ${c.tier}) costs ~${fmtUsd(c.restore_usd)}; request them with 'tsbak repair index --warm', then run recover again`);
  log(`${roots.trees} trees (${roots.badTrees.length} unreadable), ${roots.snapshots.length} snapshots readable, ${roots.unreadableSnapshots.length} not, ${roots.orphanTrees.length} trees no snapshot or tree names`);
  for (const u of roots.unreadableSnapshots) log(`snapshot ${u.id.slice(0, 8)} cannot be read: ${u.reason}`);

  // The snapshots there are; without any, the trees nothing names (and with --all-roots, those too).
  const jobs: Array<{ snap: Snapshot; dir: string; kind: 'snapshot' | 'tree' }> = roots.snapshots.map((s) => ({ snap: s, dir: s.id, kind: 'snapshot' }));
  if (!roots.snapshots.length || a.allRoots) for (const t of roots.orphanTrees) jobs.push({ snap: treeAsSnapshot(t), dir: `tree-${t}`, kind: 'tree' });
  else if (roots.orphanTrees.length) log(`not restored: ${roots.orphanTrees.length} trees no snapshot names (left by interrupted backups or forgotten snapshots); --all-roots restores them too`);
  const results = [];
  let damage = false;
  for (const j of jobs) {
    const target = path.join(a.target, j.dir);
    const res = await restoreSnapshot(repo, j.snap, {
      target,
      owner: a.noOwner ? false : undefined,
      onWarning: (p, m) => process.stderr.write(`tsbak: ${p}: ${m}\n`),
    });
    damage ||= res.errors.length > 0;
    const info = j.snap.info;
    results.push({ kind: j.kind, id: j.kind === 'snapshot' ? j.snap.id : info.tree, tree: info.tree, time: j.kind === 'snapshot' ? info.time : null, host: j.kind === 'snapshot' ? info.host : null, paths: info.paths, target, files: res.files, dirs: res.dirs, bytes: res.bytes, errors: res.errors.length });
    log(`${j.kind} ${j.kind === 'snapshot' ? `${j.snap.id.slice(0, 8)} (${info.time} ${info.host} ${info.paths.join(' ')})` : info.tree.slice(0, 16)} -> ${target}: ${res.files} files, ${res.dirs} dirs, ${fmtBytes(res.bytes)}${res.errors.length ? `, ${res.errors.length} errors` : ''}`);
  }
  await repo.coldStorage?.close();
  if (a.json)
    out(
      JSON.stringify({
        packs: found.packs,
        headers_read: found.headersRead,
        blobs: found.blobs,
        damaged_packs: found.damaged,
        cold_packs: found.cold.map((p) => ({ pack: p.name, bytes: p.size, storage_class: p.storageClass ?? null })),
        cold_restore: cold,
        trees: roots.trees,
        unreadable_trees: roots.badTrees,
        unreadable_snapshots: roots.unreadableSnapshots,
        orphan_trees: roots.orphanTrees,
        restored: results,
      }),
    );
  if (!jobs.length) throw new TsbakError('NOT_FOUND', `nothing to recover in ${repo.backend.location}: no readable snapshot and no tree`);
  if (found.cold.length) return EXIT.COLD_PENDING;
  return damage || found.damaged.length || roots.badTrees.length || roots.unreadableSnapshots.length ? EXIT.PARTIAL : EXIT.OK;
}

/** A root tree without its snapshot object, restored like a snapshot of it. */
function treeAsSnapshot(tree: string): Snapshot {
  return {
    id: `tree-${tree}`,
    info: { time: new Date(0).toISOString(), host: '', user: '', paths: [], tags: [], tree, program: '', stats: { files: 0, dirs: 0, bytesRead: 0, bytesAdded: 0, blobsAdded: 0, durationMs: 0, errors: 0 } },
    signer: { id: '', name: '' },
  };
}

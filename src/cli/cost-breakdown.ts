// Parts of `tsbak cost` (cost.ts calls them): which region's prices apply, the repository's
// objects by kind from one listing, metadata against data per host, and what other class
// choices would cost.
//
// Per host, packs are attributed through who signed the index file listing them: each key's
// packs are shared among the hosts whose snapshots that key signed, in proportion to the
// bytes those snapshots added (their recorded stats). Exact when each machine has its own
// writer key; approximate when one key (the master) backs up several machines; packs of a
// key that signed no snapshot, or listed by an unsigned index file, go to "(unknown)".
import type { StorageClass } from '../backend/backend.js';
import { addSize, DEFAULT_REGION, emptySizes, MIN_OBJECT_BYTES, monthlyUsdOf, pricesFor, typicalMonthUsd, unknownRegionWarning, type MonthActivity, type ObjectSizes, type RepoSizes } from '../glacier/cost.js';
import { INDEX, packName, packPrefix, parsePackName, parseParityName, SNAPSHOTS } from '../repo/layout.js';
import type { Repository, Snapshot } from '../repo/repository.js';
import type { RepoArgs } from './open-repo.js';

export interface PriceRegion {
  /** The region whose prices are shown (the fallback's when the table lacks the asked one). */
  region: string;
  name: string;
  /** A local repository: the prices are a what-if, its storage is the user's disk. */
  local: boolean;
  /** A line to print when the region is not in the table. */
  warning: string | null;
}

/** --region, else (S3) --s3-region, AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
export function priceRegion(repo: Repository, a: RepoArgs & { region?: string }): PriceRegion {
  const local = !repo.backend.location.startsWith('s3://');
  const asked = askedRegion(repo, a);
  const p = pricesFor(asked);
  return { region: p.region, name: p.name, local, warning: unknownRegionWarning(asked) };
}

/** The region asked for (it may be missing from the price table: pricesFor falls back). */
export function askedRegion(repo: Repository, a: RepoArgs & { region?: string }): string {
  const local = !repo.backend.location.startsWith('s3://');
  return a.region ?? (local ? undefined : a.s3Region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION) ?? DEFAULT_REGION;
}

/** One object of the listing. */
export interface Listed {
  bytes: number;
  storageClass: StorageClass;
}

export interface Listing {
  /** Packs by name (packs/data/.., packs/tree/..), index files (index/..), snapshots (snapshots/<id>). */
  packs: Map<string, Listed>;
  indexFiles: Map<string, Listed>;
  snapshots: Map<string, Listed>;
  /** Parity objects (packs/parity/..), by name; counted in sizes.data (they are stored in the data class). */
  parity: Map<string, Listed>;
  sizes: RepoSizes;
  /** The class objects of each kind are stored in now (the most bytes' class). */
  classes: { data: StorageClass; tree: StorageClass; index: StorageClass };
}

/** The repository's objects from one listing, by kind, with their classes as stored. */
export async function listRepository(repo: Repository): Promise<Listing> {
  const l: Listing = { packs: new Map(), indexFiles: new Map(), snapshots: new Map(), parity: new Map(), sizes: { data: emptySizes(), tree: emptySizes(), index: emptySizes(), other: emptySizes() }, classes: { data: repo.storageClasses.data, tree: repo.storageClasses.tree, index: repo.storageClasses.index } };
  const byClass = { data: new Map<StorageClass, number>(), tree: new Map<StorageClass, number>(), index: new Map<StorageClass, number>() };
  for await (const o of repo.backend.list('')) {
    const pk = parsePackName(o.name);
    const kind = pk ? pk.kind : o.name.startsWith(INDEX) ? 'index' : 'other';
    // Parity objects are written in the data class (FORMAT.md "Parity").
    const isParity = kind === 'other' && parseParityName(o.name) !== null;
    const sc = o.storageClass ?? (isParity ? repo.storageClasses.data : kind === 'other' ? 'STANDARD' : repo.storageClasses[kind]);
    const e = { bytes: o.size, storageClass: sc };
    if (isParity) l.parity.set(o.name, e);
    else if (kind === 'data' || kind === 'tree') l.packs.set(o.name, e);
    else if (kind === 'index') l.indexFiles.set(o.name, e);
    else if (o.name.startsWith(SNAPSHOTS)) l.snapshots.set(o.name.slice(SNAPSHOTS.length), e);
    addSize(l.sizes[isParity ? 'data' : kind], o.size);
    if (kind !== 'other') byClass[kind].set(sc, (byClass[kind].get(sc) ?? 0) + o.size);
  }
  for (const k of ['data', 'tree', 'index'] as const) {
    const top = [...byClass[k]].sort((a, b) => b[1] - a[1])[0];
    if (top) l.classes[k] = top[0];
  }
  return l;
}

export interface HostCost {
  host: string;
  dataBytes: number;
  metadataBytes: number;
  dataMonthlyUsd: number;
  metadataMonthlyUsd: number;
}

/** Metadata (tree packs, index files, snapshots) against data (data packs) per host; see the head of this file. Needs the index loaded. */
export function costByHost(repo: Repository, snaps: Snapshot[], l: Listing, region: string): HostCost[] {
  // Each signing key's hosts, weighted by the bytes their snapshots added.
  const weights = new Map<string, Map<string, number>>();
  for (const s of snaps) {
    const w = weights.get(s.signer.id) ?? new Map<string, number>();
    w.set(s.info.host, (w.get(s.info.host) ?? 0) + Math.max(1, s.info.stats.bytesAdded));
    weights.set(s.signer.id, w);
  }
  const UNKNOWN = '(unknown)';
  const acc = new Map<string, { data: Map<StorageClass, ObjectSizes>; meta: Map<StorageClass, ObjectSizes> }>();
  const add = (host: string, what: 'data' | 'meta', e: Listed, share: number) => {
    const h = acc.get(host) ?? { data: new Map(), meta: new Map() };
    acc.set(host, h);
    const s = h[what].get(e.storageClass) ?? emptySizes();
    h[what].set(e.storageClass, s);
    s.objects += share;
    s.bytes += e.bytes * share;
    s.bytesAtMin += Math.max(e.bytes, MIN_OBJECT_BYTES) * share;
  };
  const attribute = (signer: string | null, what: 'data' | 'meta', e: Listed) => {
    const w = signer ? weights.get(signer) : undefined;
    if (!w || !w.size) return add(UNKNOWN, what, e, 1);
    const total = [...w.values()].reduce((a, b) => a + b, 0);
    for (const [host, n] of w) add(host, what, e, n / total);
  };
  const seenPacks = new Set<string>();
  const indexSigner = new Map<string, string | null>();
  for (const p of repo.index.packs) {
    const name = packName(p.kind, p.id.toString('hex'));
    if (!indexSigner.has(p.indexFile)) indexSigner.set(p.indexFile, p.signer);
    if (seenPacks.has(name)) continue;
    seenPacks.add(name);
    const e = l.packs.get(name);
    if (e) attribute(p.signer, p.kind === 'data' ? 'data' : 'meta', e);
  }
  for (const [name, e] of l.packs) if (!seenPacks.has(name)) add(UNKNOWN, name.startsWith(packPrefix('data')) ? 'data' : 'meta', e, 1);
  for (const [name, e] of l.indexFiles) attribute(indexSigner.get(name) ?? null, 'meta', e);
  const snapHost = new Map(snaps.map((s) => [s.id, s.info.host]));
  for (const [id, e] of l.snapshots) add(snapHost.get(id) ?? UNKNOWN, 'meta', e, 1);

  const sum = (m: Map<StorageClass, ObjectSizes>) => {
    let bytes = 0;
    let usd = 0;
    for (const [sc, s] of m) {
      bytes += s.bytes;
      usd += monthlyUsdOf(sc, s, region);
    }
    return { bytes, usd };
  };
  return [...acc]
    .map(([host, h]) => {
      const d = sum(h.data);
      const m = sum(h.meta);
      return { host, dataBytes: Math.round(d.bytes), metadataBytes: Math.round(m.bytes), dataMonthlyUsd: d.usd, metadataMonthlyUsd: m.usd };
    })
    .sort((a, b) => b.dataMonthlyUsd + b.metadataMonthlyUsd - (a.dataMonthlyUsd + a.metadataMonthlyUsd));
}

export interface WhatIf {
  data: StorageClass;
  tree: StorageClass;
  index: StorageClass;
  current: boolean;
  storageUsd: number;
  metadataStorageUsd: number;
  dataStorageUsd: number;
  putsUsd: number;
  readsUsd: number;
  totalUsd: number;
}

/**
 * A typical month under other class choices: tree packs and index files in STANDARD,
 * STANDARD_IA or GLACIER_IR; data in its class, and for a cold repository in the other
 * archive class. The month, as scripts/bench/metadata-class.mjs measured it: 30 daily
 * backups, each storing a data pack, a tree pack, an index file and a snapshot, and reading
 * every index file (dedup needs the whole index) and, with the full key, its parent's trees
 * (a write-only key takes them from its local cache: priced as the full key's); and one browse
 * (`ls -l` of a snapshot, a mount's `ls -lR`), reading every index file and the snapshot's
 * trees. A snapshot's trees are priced as every tree pack: an upper bound, close for a short
 * history, high for a long one.
 */
export function whatIfClasses(l: Listing, region: string): WhatIf[] {
  const dataClasses: StorageClass[] = l.classes.data === 'GLACIER' || l.classes.data === 'DEEP_ARCHIVE' ? ['GLACIER', 'DEEP_ARCHIVE'] : [l.classes.data];
  const meta: StorageClass[] = ['STANDARD', 'STANDARD_IA', 'GLACIER_IR'];
  const allIndex = { indexGets: l.sizes.index.objects, indexBytes: l.sizes.index.bytes };
  const activity: MonthActivity = {
    backups: 30,
    putsPerBackup: { data: 1, tree: 1, index: 1, other: 1 },
    backupReads: { ...allIndex, treeGets: l.sizes.tree.objects, treeBytes: l.sizes.tree.bytes },
    browses: 1,
    browseReads: { ...allIndex, treeGets: l.sizes.tree.objects, treeBytes: l.sizes.tree.bytes },
  };
  const rows: WhatIf[] = [];
  const seen = new Set<string>();
  const push = (c: { data: StorageClass; tree: StorageClass; index: StorageClass }) => {
    const k = `${c.data}/${c.tree}/${c.index}`;
    if (seen.has(k)) return;
    seen.add(k);
    rows.push({ ...c, current: c.data === l.classes.data && c.tree === l.classes.tree && c.index === l.classes.index, ...typicalMonthUsd(l.sizes, c, activity, region) });
  };
  push(l.classes);
  for (const data of dataClasses) {
    for (const tree of meta) push({ data, tree, index: 'STANDARD' });
    push({ data, tree: 'GLACIER_IR', index: 'GLACIER_IR' });
  }
  return rows;
}

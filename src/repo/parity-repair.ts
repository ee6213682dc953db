// Finding lost or damaged packs that parity can rebuild, and rebuilding them (`tsbak repair
// packs`; `tsbak check` reports). Every group's members are read and checked against their
// ids (a pack's id is the SHA-256 of its bytes); a member missing, of the wrong length or
// not matching is an erasure; a group with no more erasures than intact parity objects is
// rebuilt, each rebuilt pack checked against its id before it is stored. A parity object,
// even a hostile one, can thus only make a rebuild fail, never put other bytes in a pack.
// A member no index lists any more (prune removed it) is not rebuilt: it counts as lost.
// Archived members and parity (Glacier, Deep Archive) cannot be read before a restore: the
// groups come from their records (format/parity-group.ts), and a group that must read some
// waits for the restores of the fewest archived shards it needs (the caller requests them).
import type { StorageClass } from '../backend/backend.js';
import { sha256 } from '../crypto/hash.js';
import { decodeParity, decodeParityHeader, PARITY_PREFIX, ParityFormatError, type ParityHeader } from '../format/parity.js';
import { decodeParityGroup, PARITY_GROUP_MAX } from '../format/parity-group.js';
import { ColdError, NotFoundError } from '../errors.js';
import type { BlobState, ColdFacade, ColdPack } from './cold-facade.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import { packName, PARITY, PARITY_GROUPS, packPrefix, parityName, parseParityGroupName, parseParityName, parsePackName } from './layout.js';
import { rebuild } from './parity-code.js';

export type RepairState = 'rebuilt' | 'repairable' | 'unrepairable' | 'waiting';

/** An archived object a rebuild needs that is not readable yet (a restore must come first). */
export interface ColdShard extends ColdPack {
  state: BlobState;
}

export interface PackRepairReport {
  groups: number;
  /**
   * Packs found lost or damaged in groups, with what happened to them; 'waiting': rebuilt
   * once the restores of `cold` are done.
   */
  packs: Array<{ name: string; problem: 'missing' | 'damaged'; state: RepairState }>;
  /** Parity objects and group records that could not be used (damaged or not of this repository). */
  badParity: string[];
  /** Archived objects the rebuilds need, not restored yet: n of each waiting group, the warmest first. */
  cold: ColdShard[];
  /** Archived parity objects no group record describes: their groups are unknown until restored. */
  coldParityUnplanned: string[];
  /** Archived members of groups with nothing missing, not read (damage in them shows once restored). */
  coldNotChecked: number;
}

interface Group {
  header: ParityHeader;
  parity: Map<number, string>;
  /** Group records that describe this group (deleted with it). */
  records: string[];
}

interface Listed {
  size: number;
  storageClass: StorageClass | undefined;
}

const groupKey = (h: ParityHeader) => `${h.k}+${h.m}:${h.members.map((x) => `${x.id.toString('hex')}/${x.kind}/${x.length}`).join(',')}`;

/**
 * Every parity group: from the group records (readable even where the parity objects are
 * archived), then from the headers of the parity objects no record names. `unplanned`
 * receives the parity objects whose header cannot be read before a restore.
 */
export async function listParityGroups(ctx: RepoContext, bad: string[], unplanned: string[] = [], listed?: Map<string, Listed>): Promise<Group[]> {
  const objects = listed ?? new Map<string, Listed>();
  if (!listed) for await (const o of ctx.backend.list(PARITY)) if (parseParityName(o.name)) objects.set(o.name, { size: o.size, storageClass: o.storageClass });
  const groups = new Map<string, Group>();
  const add = (header: ParityHeader, name: string, record?: string) => {
    const key = groupKey(header);
    const g: Group = groups.get(key) ?? { header, parity: new Map(), records: [] };
    g.parity.set(header.row, name);
    if (record && !g.records.includes(record)) g.records.push(record);
    groups.set(key, g);
  };
  const described = new Set<string>();
  for await (const o of ctx.backend.list(PARITY_GROUPS)) {
    if (!parseParityGroupName(o.name)) continue;
    if (o.size > PARITY_GROUP_MAX) {
      bad.push(o.name);
      continue;
    }
    try {
      const rows = decodeParityGroup(ctx.secrets.indexKey, await ctx.backend.get(o.name));
      for (const r of rows) {
        const name = parityName(r.object.toString('hex'));
        described.add(name);
        // A row whose object is gone is no parity: the group keeps its record only.
        if (objects.get(name)?.size === r.size) add(r.header, name, o.name);
        else {
          const g: Group = groups.get(groupKey(r.header)) ?? { header: r.header, parity: new Map(), records: [] };
          if (!g.records.includes(o.name)) g.records.push(o.name);
          groups.set(groupKey(r.header), g);
        }
      }
    } catch (e) {
      // Archived by a lifecycle rule: its groups are learned from the parity headers instead.
      if (e instanceof NotFoundError || e instanceof ColdError) continue;
      if (!(e instanceof ParityFormatError)) throw e;
      bad.push(o.name);
    }
  }
  for (const [name, o] of objects) {
    if (described.has(name)) continue;
    try {
      const { header } = decodeParityHeader(ctx.secrets.indexKey, await ctx.backend.get(name, { offset: 0, length: Math.min(o.size, PARITY_PREFIX) }));
      add(header, name);
    } catch (e) {
      if (e instanceof NotFoundError) continue;
      if (e instanceof ColdError) {
        unplanned.push(name);
        continue;
      }
      if (!(e instanceof ParityFormatError)) throw e;
      bad.push(name);
    }
  }
  return [...groups.values()];
}

const STATE_RANK: Record<BlobState, number> = { hot: 0, cached: 1, available: 2, restoring: 3, cold: 4 };
const readable = (s: BlobState) => STATE_RANK[s] <= STATE_RANK.available;

/** A member (index < n) or parity row (n + row) of a group, as listed. */
interface Shard {
  i: number;
  obj: ColdPack;
  state?: BlobState;
}

/**
 * Finds lost or damaged packs and, with `fix`, rebuilds them. Where members or parity are
 * archived (Glacier, Deep Archive), a group needs n readable shards: those readable now
 * first (hot, then in the local cache, then restored in S3), then those being restored, then
 * cold ones; a group still short of n readable ones is 'waiting', and the archived shards it
 * chose are in `cold` for the caller to restore (one batch) before running again. Archived
 * members of groups with nothing missing are not read (they cannot be without a restore).
 */
export async function repairPacks(ctx: RepoContext, indexes: IndexStore, colds: ColdFacade, opts: { fix: boolean; onProgress?: (m: string) => void }): Promise<PackRepairReport> {
  if (opts.fix) ctx.requireRead('repair packs');
  const report: PackRepairReport = { groups: 0, packs: [], badParity: [], cold: [], coldParityUnplanned: [], coldNotChecked: 0 };
  const parityListed = new Map<string, Listed>();
  for await (const o of ctx.backend.list(PARITY)) if (parseParityName(o.name)) parityListed.set(o.name, { size: o.size, storageClass: o.storageClass });
  const groups = await listParityGroups(ctx, report.badParity, report.coldParityUnplanned, parityListed);
  report.groups = groups.length;
  const stored = new Map<string, Listed>();
  for (const kind of ['data', 'tree'] as const) for await (const o of ctx.backend.list(packPrefix(kind))) if (parsePackName(o.name)) stored.set(o.name, { size: o.size, storageClass: o.storageClass });
  const objOf = (name: string, kind: ColdPack['kind'], l: Listed): ColdPack => ({ name, kind, bytes: l.size, storageClass: l.storageClass ?? (kind === 'tree' ? ctx.classes.tree : ctx.classes.data) });
  for (const g of groups) {
    const { members, m, stripe } = g.header;
    const n = members.length;
    const have = new Map<number, Uint8Array>();
    const lost: Array<{ i: number; problem: 'missing' | 'damaged' }> = [];
    const spare: Shard[] = [];
    // A member's bytes, checked against its id.
    const check = (i: number, bytes: Buffer | null) => {
      const mem = members[i]!;
      if (!bytes) lost.push({ i, problem: 'missing' });
      else if (bytes.length !== mem.length || !sha256(bytes).equals(mem.id)) lost.push({ i, problem: 'damaged' });
      else have.set(i, bytes);
    };
    for (let i = 0; i < n; i++) {
      const mem = members[i]!;
      const name = packName(mem.kind, mem.id.toString('hex'));
      const l = stored.get(name);
      if (!l) {
        lost.push({ i, problem: 'missing' });
        continue;
      }
      const obj = objOf(name, mem.kind, l);
      if (colds.isColdPack(obj)) {
        spare.push({ i, obj });
        continue;
      }
      check(i, await getOrNull(ctx, name));
    }
    if (!lost.length) {
      report.coldNotChecked += spare.length;
      continue;
    }
    for (const [row, name] of g.parity) {
      const l = parityListed.get(name);
      if (l) spare.push({ i: n + row, obj: objOf(name, 'parity', l) });
    }
    // Readable ones first, then the warmest; parity rows after members of the same state.
    for (const s of spare) s.state = colds.isColdPack(s.obj) ? await colds.objectState(s.obj) : 'hot';
    spare.sort((a, b) => STATE_RANK[a.state!] - STATE_RANK[b.state!] || a.i - b.i);
    const pending: ColdShard[] = [];
    for (const s of spare) {
      if (have.size + pending.length >= n) break;
      if (!readable(s.state!)) {
        pending.push({ ...s.obj, state: s.state! });
        continue;
      }
      let bytes: Buffer | null;
      try {
        bytes = s.state === 'hot' ? await getOrNull(ctx, s.obj.name) : await colds.readRestored(s.obj);
      } catch (e) {
        if (!(e instanceof ColdError)) throw e;
        pending.push({ ...s.obj, state: 'cold' });
        continue;
      }
      if (s.i < n) check(s.i, bytes);
      else if (bytes) {
        try {
          const { header, payload } = decodeParity(ctx.secrets.indexKey, bytes);
          // The object must be the row of this group its name was listed for.
          if (groupKey(header) !== groupKey(g.header) || header.row !== s.i - n || header.stripe !== stripe) throw new ParityFormatError('not the parity row of this group');
          have.set(s.i, payload);
        } catch (e) {
          if (!(e instanceof ParityFormatError)) throw e;
          report.badParity.push(s.obj.name);
        }
      }
    }
    // Only packs an index still lists are worth rebuilding (a pruned one is not reported).
    const wanted = lost.filter((l) => indexes.index.hasPack(members[l.i]!.id));
    const entry = (l: { i: number; problem: 'missing' | 'damaged' }) => ({ name: packName(members[l.i]!.kind, members[l.i]!.id.toString('hex')), problem: l.problem });
    if (!wanted.length) continue;
    if (have.size + pending.length < n) {
      for (const l of wanted) report.packs.push({ ...entry(l), state: 'unrepairable' });
      continue;
    }
    if (pending.length) {
      report.cold.push(...pending);
      for (const l of wanted) report.packs.push({ ...entry(l), state: 'waiting' });
      continue;
    }
    if (!opts.fix) {
      for (const l of wanted) report.packs.push({ ...entry(l), state: 'repairable' });
      continue;
    }
    const rebuilt = await rebuild(n, m, stripe, have, wanted.map((l) => l.i));
    for (const l of wanted) {
      const mem = members[l.i]!;
      const bytes = rebuilt.get(l.i)!.subarray(0, mem.length);
      const e = entry(l);
      if (!sha256(bytes).equals(mem.id)) {
        // A damaged or hostile parity object that still authenticated its header.
        report.packs.push({ ...e, state: 'unrepairable' });
        continue;
      }
      if (l.problem === 'damaged') await ctx.backend.delete(e.name);
      // The class the repository gives packs of its kind: where the lost one was meant to be.
      await ctx.backend.put(e.name, bytes, { storageClass: mem.kind === 'data' ? ctx.classes.data : ctx.classes.tree });
      opts.onProgress?.(`rebuilt ${e.name}`);
      report.packs.push({ ...e, state: 'rebuilt' });
    }
  }
  return report;
}

async function getOrNull(ctx: RepoContext, name: string): Promise<Buffer | null> {
  try {
    return await ctx.backend.get(name);
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    return null;
  }
}

/**
 * For `check`: which of these packs (found missing or damaged) a parity group covers with
 * enough parity objects left (counted from their headers; payloads are read by repair).
 */
export async function parityCoverage(ctx: RepoContext, bad: Set<string>): Promise<{ repairable: string[]; unrepairable: string[] }> {
  const res = { repairable: [] as string[], unrepairable: [] as string[] };
  if (!bad.size) return res;
  for (const g of await listParityGroups(ctx, [])) {
    const names = g.header.members.map((x) => packName(x.kind, x.id.toString('hex')));
    const lost = names.filter((n) => bad.has(n));
    if (!lost.length) continue;
    (lost.length <= g.parity.size ? res.repairable : res.unrepairable).push(...lost);
  }
  return res;
}

/**
 * After prune deleted packs: the parity objects of groups none of whose members is stored
 * any more are deleted (they protect nothing). A group with members left keeps its parity:
 * a deleted member counts as a lost one, so the group still rebuilds up to M - (deleted)
 * further losses. Returns how many parity objects were deleted.
 */
export async function dropOrphanParity(ctx: RepoContext): Promise<number> {
  const stored = new Set<string>();
  for (const kind of ['data', 'tree'] as const) for await (const o of ctx.backend.list(packPrefix(kind))) stored.add(o.name);
  let n = 0;
  for (const g of await listParityGroups(ctx, [])) {
    if (g.header.members.some((x) => stored.has(packName(x.kind, x.id.toString('hex'))))) continue;
    for (const name of g.parity.values()) {
      await ctx.backend.delete(name);
      n++;
    }
    for (const name of g.records) await ctx.backend.delete(name);
  }
  return n;
}

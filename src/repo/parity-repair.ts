// Finding lost or damaged packs that parity can rebuild, and rebuilding them (`tsbak repair
// packs`; `tsbak check` reports). Every group's members are read and checked against their
// ids (a pack's id is the SHA-256 of its bytes); a member missing, of the wrong length or
// not matching is an erasure; a group with no more erasures than intact parity objects is
// rebuilt, each rebuilt pack checked against its id before it is stored. A parity object,
// even a hostile one, can thus only make a rebuild fail, never put other bytes in a pack.
// A member no index lists any more (prune removed it) is not rebuilt: it counts as lost.
import { sha256 } from '../crypto/hash.js';
import { decodeParity, decodeParityHeader, PARITY_PREFIX, ParityFormatError, type ParityHeader } from '../format/parity.js';
import { NotFoundError } from '../errors.js';
import type { RepoContext } from './context.js';
import type { IndexStore } from './index-store.js';
import { packName, PARITY, packPrefix, parseParityName, parsePackName } from './layout.js';
import { rebuild } from './parity-code.js';

export interface PackRepairReport {
  groups: number;
  /** Packs found lost or damaged in groups, with what happened to them. */
  packs: Array<{ name: string; problem: 'missing' | 'damaged'; state: 'rebuilt' | 'repairable' | 'unrepairable' }>;
  /** Parity objects that could not be used (damaged or not of this repository). */
  badParity: string[];
}

interface Group {
  header: ParityHeader;
  parity: Map<number, string>;
}

export async function listParityGroups(ctx: RepoContext, bad: string[]): Promise<Group[]> {
  const groups = new Map<string, Group>();
  for await (const o of ctx.backend.list(PARITY)) {
    if (!parseParityName(o.name)) continue;
    let header: ParityHeader;
    try {
      ({ header } = decodeParityHeader(ctx.secrets.indexKey, await ctx.backend.get(o.name, { offset: 0, length: Math.min(o.size, PARITY_PREFIX) })));
    } catch (e) {
      if (e instanceof NotFoundError) continue;
      if (!(e instanceof ParityFormatError)) throw e;
      bad.push(o.name);
      continue;
    }
    const key = `${header.k}+${header.m}:${header.members.map((x) => `${x.id.toString('hex')}/${x.kind}/${x.length}`).join(',')}`;
    const g = groups.get(key) ?? { header, parity: new Map() };
    g.parity.set(header.row, o.name);
    groups.set(key, g);
  }
  return [...groups.values()];
}

export async function repairPacks(ctx: RepoContext, indexes: IndexStore, opts: { fix: boolean; onProgress?: (m: string) => void }): Promise<PackRepairReport> {
  if (opts.fix) ctx.requireRead('repair packs');
  const report: PackRepairReport = { groups: 0, packs: [], badParity: [] };
  const groups = await listParityGroups(ctx, report.badParity);
  report.groups = groups.length;
  const stored = new Map<string, number>();
  for (const kind of ['data', 'tree'] as const) for await (const o of ctx.backend.list(packPrefix(kind))) if (parsePackName(o.name)) stored.set(o.name, o.size);
  for (const g of groups) {
    const { members, m, stripe } = g.header;
    const n = members.length;
    const have = new Map<number, Uint8Array>();
    const lost: Array<{ i: number; problem: 'missing' | 'damaged' }> = [];
    for (let i = 0; i < n; i++) {
      const mem = members[i]!;
      const name = packName(mem.kind, mem.id.toString('hex'));
      const size = stored.get(name);
      if (size === undefined) {
        lost.push({ i, problem: 'missing' });
        continue;
      }
      let bytes: Buffer | null = null;
      try {
        bytes = await ctx.backend.get(name);
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
      if (!bytes) lost.push({ i, problem: 'missing' });
      else if (bytes.length !== mem.length || !sha256(bytes).equals(mem.id)) lost.push({ i, problem: 'damaged' });
      else have.set(i, bytes);
    }
    if (!lost.length) continue;
    // Only packs an index still lists are worth rebuilding (a pruned one is not reported).
    const wanted = lost.filter((l) => indexes.index.hasPack(members[l.i]!.id));
    const entry = (l: { i: number; problem: 'missing' | 'damaged' }) => ({ name: packName(members[l.i]!.kind, members[l.i]!.id.toString('hex')), problem: l.problem });
    for (const [row, name] of g.parity) {
      if (have.size >= n) break;
      try {
        const { header, payload } = decodeParity(ctx.secrets.indexKey, await ctx.backend.get(name));
        if (header.stripe !== stripe) throw new ParityFormatError('stripe length changed');
        have.set(n + row, payload);
      } catch (e) {
        if (e instanceof NotFoundError) continue;
        if (!(e instanceof ParityFormatError)) throw e;
        report.badParity.push(name);
      }
    }
    if (have.size < n) {
      for (const l of wanted) report.packs.push({ ...entry(l), state: 'unrepairable' });
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
      await ctx.backend.put(e.name, bytes, { storageClass: mem.kind === 'data' ? ctx.classes.data : ctx.classes.tree });
      opts.onProgress?.(`rebuilt ${e.name}`);
      report.packs.push({ ...e, state: 'rebuilt' });
    }
  }
  return report;
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
  }
  return n;
}

// `tsbak stats <repo> [snapshot..]`, restic's three modes:
//   restore-size       what a restore writes: the sizes of the files, counted where they
//                      appear (a hardlinked inode once per snapshot)
//   files-by-contents  files with distinct contents, each content counted once
//   raw-data           the blobs the snapshots reference (data and trees), each once, as
//                      stored (sealed) and before compression, from the index
import { createHash } from 'node:crypto';
import { walkTrees } from '../repo/tree-walk.js';
import { EXIT } from './exit-codes.js';
import type { RepoArgs } from './open-repo.js';
import { fmtBytes } from './output.js';
import { openSnapshotsForWalk, type TaggedSelectArgs } from './snapshot-args.js';

export interface StatsArgs extends RepoArgs, TaggedSelectArgs {
  snapshot?: string[];
  mode?: 'restore-size' | 'raw-data' | 'files-by-contents';
  json?: boolean;
}

const out = (s: string) => process.stdout.write(s + '\n');
const warn = (s: string) => process.stderr.write(`tsbak: ${s}\n`);

export async function cmdStats(a: StatsArgs): Promise<number> {
  const mode = a.mode ?? 'restore-size';
  const opened = await openSnapshotsForWalk(a);
  const { repo, snaps, source } = opened;
  let damage = opened.damage;
  let files = 0;
  let dirs = 0;
  let others = 0;
  let size = 0;
  // raw-data: every blob once (data and tree); files-by-contents: every content once.
  const blobs = new Map<string, Buffer>();
  const contents = new Set<string>();
  const treesSeen = new Set<string>();
  for (const snap of snaps) {
    const links = new Set<string>();
    const root = Buffer.from(snap.info.tree, 'hex');
    // Only restore-size counts a directory again where it appears again.
    if (mode !== 'restore-size') {
      if (treesSeen.has(root.toString('latin1'))) continue;
      treesSeen.add(root.toString('latin1'));
    }
    blobs.set(root.toString('latin1'), root);
    await walkTrees(source, [{ id: root, at: '' }], (item, tree) => {
      if (tree instanceof Error) {
        damage++;
        warn(`snapshot ${snap.id.slice(0, 8)}: tree ${item.id.toString('hex').slice(0, 16)}: ${tree.message}`);
        return;
      }
      if (tree.rejected?.length) {
        damage += tree.rejected.length;
        warn(`snapshot ${snap.id.slice(0, 8)}: tree ${item.id.toString('hex').slice(0, 16)} has ${tree.rejected.length} refused entries; run 'tsbak check'`);
      }
      const next = [];
      for (const n of tree.nodes) {
        if (n.type === 'dir') {
          if (mode === 'restore-size') dirs++;
          if (!n.subtree) continue;
          const k = n.subtree.toString('latin1');
          if (mode !== 'restore-size') {
            if (treesSeen.has(k)) continue;
            treesSeen.add(k);
            blobs.set(k, n.subtree);
          }
          next.push({ id: n.subtree, at: '' });
        } else if (n.type === 'file') {
          if (mode === 'restore-size') {
            if (n.hardlink !== undefined) {
              if (links.has(n.hardlink)) continue;
              links.add(n.hardlink);
            }
            files++;
            size += n.size;
          } else if (mode === 'raw-data') {
            for (const c of n.content ?? []) blobs.set(c.toString('latin1'), c);
          } else {
            const h = createHash('sha256');
            for (const c of n.content ?? []) h.update(c);
            h.update(JSON.stringify([n.size, n.extents ?? null]));
            const key = h.digest('base64');
            if (contents.has(key)) continue;
            contents.add(key);
            files++;
            size += n.size;
          }
        } else if (mode === 'restore-size') others++;
      }
      return next;
    });
  }
  let doc: Record<string, unknown>;
  if (mode === 'raw-data') {
    let stored = 0;
    let raw = 0;
    let missing = 0;
    for (const id of blobs.values()) {
      const loc = repo.locate(id);
      if (!loc) {
        missing++;
        continue;
      }
      stored += loc.length;
      raw += loc.rawLength;
    }
    if (missing) {
      damage++;
      warn(`${missing} blobs the snapshots reference are not in the index; run 'tsbak check'`);
    }
    doc = { mode, snapshots_count: snaps.length, total_blob_count: blobs.size, total_size: stored, total_uncompressed_size: raw, compression_ratio: stored ? raw / stored : null, compression_space_saving: raw ? (1 - stored / raw) * 100 : null, missing_blob_count: missing };
  } else if (mode === 'restore-size') doc = { mode, snapshots_count: snaps.length, total_size: size, total_file_count: files, total_dir_count: dirs, total_other_count: others };
  else doc = { mode, snapshots_count: snaps.length, total_size: size, total_file_count: files };
  if (a.json) out(JSON.stringify(doc));
  else {
    out(`Stats in ${mode} mode:`);
    out(`     Snapshots processed:  ${snaps.length}`);
    if (mode === 'raw-data') {
      out(`        Total Blob Count:  ${doc.total_blob_count}`);
      out(` Total Uncompressed Size:  ${fmtBytes(doc.total_uncompressed_size as number)}`);
      out(`              Total Size:  ${fmtBytes(doc.total_size as number)} (as stored: compressed, encrypted)`);
      if (doc.compression_ratio !== null) {
        out(`       Compression Ratio:  ${(doc.compression_ratio as number).toFixed(2)}x`);
        out(`Compression Space Saving:  ${(doc.compression_space_saving as number).toFixed(2)} %`);
      }
    } else {
      out(`        Total File Count:  ${files}`);
      if (mode === 'restore-size') out(`  Directories and others:  ${dirs}, ${others}`);
      out(`              Total Size:  ${fmtBytes(size)}`);
    }
  }
  return damage ? EXIT.CORRUPT : EXIT.OK;
}

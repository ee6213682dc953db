// The tree id of a source directory in every snapshot of a repository (oldest first): what
// tests compare to see whether two backups stored the same tree.
import { openBackend } from '../../src/backend/open.js';
import { Repository } from '../../src/repo/repository.js';
import { testEnv } from './cli.js';

export async function subtreeIds(repoDir: string, src: string): Promise<string[]> {
  const repo = await Repository.open(await openBackend(repoDir, {}), { password: testEnv().TSBAK_PASSWORD });
  await repo.loadIndex();
  const out: string[] = [];
  for (const s of await repo.listSnapshots()) {
    let id: Buffer = Buffer.from(s.info.tree, 'hex');
    for (const c of src.split('/').filter(Boolean)) id = (await repo.loadTree(id)).nodes.find((n) => n.name.toString() === c)!.subtree!;
    out.push(id.toString('hex'));
  }
  return out;
}

// Tree blobs (docs/FORMAT.md "Trees"): the binary version 2 round-trips every field, is
// canonical, refuses damaged bytes with an error (never a wrong tree), and version 1 (JSON),
// which repositories written before version 2 hold, still decodes.
import t from 'tap';
import { decodeTree, encodeTree, TreeEncoder, type TreeNode } from '../src/format/tree.js';

const id = (b: number): Buffer => Buffer.alloc(32, b);

function full(): TreeNode[] {
  return [
    {
      name: Buffer.from([0x66, 0xff, 0x01, 0x41]), // not UTF-8: names are raw bytes (any but '/' and NUL)
      type: 'file',
      mode: 0o7755,
      uid: 4294967294,
      gid: 0,
      user: 'üser',
      group: '',
      mtimeNs: -1234567890123456789n,
      atimeNs: 9223372036854775807n,
      ctimeNs: 1700000000123456789n,
      btimeNs: 0n,
      size: 2 ** 53 - 1,
      ino: 18446744073709551615n,
      dev: 2049n,
      nlink: 3,
      hardlink: '2049:18446744073709551615',
      xattrs: [
        ['user.z', Buffer.from('last')],
        ['system.posix_acl_access', Buffer.from([2, 0, 0, 0, 1, 0, 6, 0])],
        ['user.empty', Buffer.alloc(0)],
        ['user.big', Buffer.alloc(70000, 7)],
      ],
      content: [id(1), id(2), id(1)],
      extents: [
        [0, 4096],
        [2 ** 40, 8192],
      ],
    },
    { name: Buffer.from('dir'), type: 'dir', mode: 0o755, uid: 1, gid: 1, user: 'a', group: 'a', mtimeNs: 1n, atimeNs: 2n, ctimeNs: 3n, btimeNs: 4n, size: 0, ino: 5n, dev: 6n, nlink: 2, subtree: id(9) },
    { name: Buffer.from('link'), type: 'symlink', mode: 0o777, uid: 1, gid: 1, user: 'a', group: 'a', mtimeNs: 1n, atimeNs: 1n, ctimeNs: 1n, btimeNs: 0n, size: 0, ino: 7n, dev: 6n, nlink: 1, target: Buffer.from([0x2e, 0x2e, 0x2f, 0xfe]) },
    { name: Buffer.from('tty'), type: 'chardev', mode: 0o620, uid: 0, gid: 5, user: 'root', group: 'tty', mtimeNs: 1n, atimeNs: 1n, ctimeNs: 1n, btimeNs: 0n, size: 0, ino: 8n, dev: 6n, nlink: 1, rdevMajor: 136, rdevMinor: 4095 },
    { name: Buffer.from('empty'), type: 'file', mode: 0o600, uid: 0, gid: 0, user: 'root', group: 'root', mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 9n, dev: 6n, nlink: 1, content: [] },
    // a time outside int64 nanoseconds (year 10000): kept exactly
    { name: Buffer.from('far'), type: 'fifo', mode: 0o644, uid: 0, gid: 0, user: 'root', group: 'root', mtimeNs: 253402300800000000000n, atimeNs: -253402300800000000000n, ctimeNs: 5n, btimeNs: 0n, size: 0, ino: 10n, dev: 6n, nlink: 1 },
    { name: Buffer.from('sock'), type: 'socket', mode: 0o755, uid: 0, gid: 0, user: 'root', group: 'root', mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 11n, dev: 6n, nlink: 1 },
    { name: Buffer.from('disk'), type: 'blockdev', mode: 0o660, uid: 0, gid: 6, user: 'root', group: 'disk', mtimeNs: 0n, atimeNs: 0n, ctimeNs: 0n, btimeNs: 0n, size: 0, ino: 12n, dev: 6n, nlink: 1, rdevMajor: 8, rdevMinor: 1 },
  ];
}

/** What decoding should give: entries by name bytes, xattrs by name bytes, buffers as plain bytes. */
function canonical(nodes: TreeNode[]): unknown {
  const sorted = [...nodes].sort((a, b) => Buffer.compare(a.name, b.name));
  return sorted.map((n) => {
    const o: Record<string, unknown> = { ...n };
    if (n.xattrs) o.xattrs = [...n.xattrs].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    return JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  });
}

t.test('every field round-trips, in canonical order', async (t) => {
  const nodes = full();
  const bytes = encodeTree({ nodes });
  t.equal(bytes.subarray(0, 4).toString('latin1'), 'TSBT', 'magic');
  t.equal(bytes[4], 2, 'version 2');
  t.equal(bytes.readUInt32LE(5), nodes.length, 'entry count');
  const back = decodeTree(bytes).nodes;
  t.same(canonical(back), canonical(nodes));
  t.same(
    back.map((n) => n.name.toString('hex')),
    nodes.map((n) => n.name).sort(Buffer.compare).map((n) => n.toString('hex')),
    'sorted by raw name bytes',
  );
  t.ok(encodeTree({ nodes: [...nodes].reverse() }).equals(bytes), 'the order given does not matter');
  t.ok(encodeTree({ nodes: back }).equals(bytes), 'a decoded tree encodes to the same bytes');
  t.same(decodeTree(encodeTree({ nodes: [] })).nodes, [], 'an empty directory');
  t.equal(back.find((n) => n.name.toString() === 'empty')!.content!.length, 0, 'an empty content list stays a list');
  t.equal(back.find((n) => n.name.toString() === 'dir')!.content, undefined, 'and an absent one stays absent');
});

t.test('TreeEncoder, fed one node at a time in any order, writes encodeTree\'s bytes', async (t) => {
  const encode = (nodes: TreeNode[]) => {
    const e = new TreeEncoder();
    for (const n of nodes) e.add(n);
    t.equal(e.count, nodes.length, 'it counts what it was given');
    return e.finish();
  };
  const nodes = full();
  const want = encodeTree({ nodes });
  t.ok(encode(nodes).equals(want), 'in the order given');
  t.ok(encode([...nodes].sort((a, b) => Buffer.compare(a.name, b.name))).equals(want), 'in name order (written in place)');
  t.ok(encode([...nodes].reverse()).equals(want), 'in reverse order');
  // Many small nodes, shuffled: names that share prefixes and differ in length.
  const many: TreeNode[] = [];
  for (let i = 0; i < 2000; i++) many.push({ ...nodes[1]!, name: Buffer.from(`f${i % 7 ? i : i * 10}`), ino: BigInt(i) });
  const shuffled = [...many];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  t.ok(encode(shuffled).equals(encodeTree({ nodes: many })), '2000 nodes, shuffled');
  t.ok(encode([]).equals(encodeTree({ nodes: [] })), 'no nodes: an empty directory');
  const e = new TreeEncoder();
  e.add(nodes[2]!);
  t.throws(() => e.add({ ...nodes[1]!, name: Buffer.from('x'), user: 'u'.repeat(70000) }), /longer than 65535/, 'a node that cannot be encoded throws');
  e.add(nodes[1]!);
  t.ok(e.finish().equals(encodeTree({ nodes: [nodes[1]!, nodes[2]!] })), 'and leaves nothing behind');
});

t.test('values the encoding cannot hold are refused, not truncated', async (t) => {
  const bad: Array<[string, (n: TreeNode) => void]> = [
    ['a 33-byte content id', (n) => (n.content = [Buffer.alloc(33)])],
    ['a short subtree id', (n) => (n.subtree = Buffer.alloc(31))],
    ['a name of 65536 bytes', (n) => (n.name = Buffer.alloc(65536, 0x61))],
    ['an inode beyond 64 bits', (n) => (n.ino = 2n ** 64n)],
    ['a negative uid', (n) => (n.uid = -1)],
    ['an unknown type', (n) => ((n as { type: string }).type = 'door')],
  ];
  for (const [what, change] of bad) {
    const n = full()[1]!;
    change(n);
    t.throws(() => encodeTree({ nodes: [n] }), what);
  }
});

t.test('cut, padded or unknown bytes fail to decode (the blob id guards the rest)', async (t) => {
  const bytes = encodeTree({ nodes: full() });
  let refused = 0;
  for (let cut = 0; cut < bytes.length; cut += cut < 200 ? 1 : 97) {
    t.throws(() => decodeTree(bytes.subarray(0, cut)), `truncated to ${cut} bytes`);
    refused++;
  }
  t.ok(refused > 200, 'every short length tried');
  t.throws(() => decodeTree(Buffer.concat([bytes, Buffer.from([0])])), /after its last entry/, 'a byte too many');
  const v9 = Buffer.from(bytes);
  v9[4] = 9;
  t.throws(() => decodeTree(v9), /unknown tree version 9/);
  const badType = encodeTree({ nodes: [full()[1]!] });
  badType[typeOffset('dir')] = 7;
  t.throws(() => decodeTree(badType), /unknown node type 7/);
  t.throws(() => decodeTree(Buffer.from('not a tree')), /not a tree blob/);
});

/** Offset of the type byte of a tree's only entry named `name`. */
function typeOffset(name: string): number {
  return 9 + 2 + Buffer.byteLength(name);
}

t.test('version 1 (JSON) trees, as earlier tsbak wrote them, still decode', async (t) => {
  // A tree as version 1 encoded it (docs/FORMAT.md "Trees, version 1"), written out by hand.
  const v1 = JSON.stringify({
    v: 1,
    nodes: [
      { name: Buffer.from('a b').toString('base64'), type: 'file', mode: 420, uid: 1000, gid: 1000, user: 'me', group: 'me', mtime: '1700000000123456789', atime: '-5', ctime: '1700000000123456789', btime: '0', size: 5, ino: '42', dev: '2049', nlink: 2, hardlink: '2049:42', xattrs: [['user.k', Buffer.from('v').toString('base64')]], content: [id(3).toString('hex')], extents: [[0, 5]] },
      { name: 'ZA==', type: 'dir', mode: 493, uid: 0, gid: 0, user: 'root', group: 'root', mtime: '1', atime: '2', ctime: '3', btime: '4', size: 0, ino: '43', dev: '2049', nlink: 2, subtree: id(4).toString('hex') },
      { name: 'dg==', type: 'chardev', mode: 420, uid: 0, gid: 0, user: 'root', group: 'root', mtime: '1', atime: '1', ctime: '1', btime: '0', size: 0, ino: '44', dev: '2049', nlink: 1, rdev: [1, 3] },
      { name: 'bA==', type: 'symlink', mode: 511, uid: 0, gid: 0, user: 'root', group: 'root', mtime: '1', atime: '1', ctime: '1', btime: '0', size: 0, ino: '45', dev: '2049', nlink: 1, target: Buffer.from('a b').toString('base64') },
    ],
  });
  const [file, dir, dev, link] = decodeTree(Buffer.from(v1)).nodes;
  t.same(file!.name, Buffer.from('a b'));
  t.equal(file!.atimeNs, -5n);
  t.equal(file!.mtimeNs, 1700000000123456789n);
  t.equal(file!.ino, 42n);
  t.equal(file!.hardlink, '2049:42');
  t.same(file!.xattrs, [['user.k', Buffer.from('v')]]);
  t.same(file!.content, [id(3)]);
  t.same(file!.extents, [[0, 5]]);
  t.same(dir!.subtree, id(4));
  t.same([dev!.rdevMajor, dev!.rdevMinor], [1, 3]);
  t.same(link!.target, Buffer.from('a b'));
  t.throws(() => decodeTree(Buffer.from('{"v":3,"nodes":[]}')), /unknown tree version/);
});

t.test('entries no consumer may trust are set aside in `rejected`, the rest of the tree kept', async (t) => {
  const base = full()[4]!; // 'empty', a plain file
  const n = (name: string | Buffer, more: Partial<TreeNode> = {}): TreeNode => ({ ...base, name: Buffer.from(name), ...more });
  const nodes = [
    n(''),
    n('.'),
    n('..', { type: 'dir', content: undefined, subtree: id(1) }),
    n('../../../x'),
    n('a/b'),
    n(Buffer.from([0x61, 0x00, 0x62])),
    n('dup', { type: 'symlink', content: undefined, target: Buffer.from('/elsewhere') }),
    n('dup', { type: 'dir', content: undefined, subtree: id(2) }),
    n('xattr-empty', { xattrs: [['', Buffer.from('v')]] }),
    n('xattr-nul', { xattrs: [['user.a\0b', Buffer.from('v')]] }),
    n('ext-beyond', { size: 10, extents: [[0, 11]] }),
    n('ext-overlap', { size: 100, extents: [[0, 10], [5, 10]] }),
    n('ext-descending', { size: 100, extents: [[50, 10], [0, 10]] }),
    n('ok'),
    n('ok-sparse', { size: 100, extents: [[0, 10], [10, 5], [90, 10]] }),
    n('..., a name with dots', { target: Buffer.from('../../anything is data') }),
  ];
  const tree = decodeTree(encodeTree({ nodes }));
  t.same(tree.nodes.map((x) => x.name.toString()), ['..., a name with dots', 'ok', 'ok-sparse'], 'the sound entries are kept');
  const why = new Map(tree.rejected!.map((r) => [r.name.toString('latin1'), r.reason]));
  t.same(Object.fromEntries(why), {
    '': 'an empty name',
    '.': "the name '.'",
    '..': "the name '..'",
    '../../../x': "a name holding '/'",
    'a/b': "a name holding '/'",
    'a\0b': 'a name holding NUL',
    dup: 'a duplicate name',
    'xattr-empty': 'an xattr name that is empty or holds NUL',
    'xattr-nul': 'an xattr name that is empty or holds NUL',
    'ext-beyond': 'extents out of order or beyond the size',
    'ext-overlap': 'extents out of order or beyond the size',
    'ext-descending': 'extents out of order or beyond the size',
  });
  t.equal(tree.rejected!.filter((r) => r.name.toString() === 'dup').length, 2, 'both entries of a duplicated name are refused');
  t.notOk('rejected' in decodeTree(encodeTree({ nodes: full() })), 'a sound tree has no `rejected`');

  // Names out of order (no encoder writes that): duplicates are still found, through a set.
  const record = (x: TreeNode) => encodeTree({ nodes: [x] }).subarray(9);
  const header = Buffer.from(encodeTree({ nodes: [] }));
  header.writeUInt32LE(4, 5);
  const unsorted = Buffer.concat([header, record(n('c')), record(n('b')), record(n('a')), record(n('b', { mode: 0o4755 }))]);
  const u = decodeTree(unsorted);
  t.same(u.nodes.map((x) => x.name.toString()), ['c', 'a'], 'order kept, both b refused');
  t.same(u.rejected!.map((r) => [r.name.toString(), r.reason]), [['b', 'a duplicate name'], ['b', 'a duplicate name']]);

  // Version 1 (JSON) trees are checked the same way.
  const v1node = (name: Buffer) => ({ name: name.toString('base64'), type: 'file', mode: 420, uid: 0, gid: 0, user: '', group: '', mtime: '0', atime: '0', ctime: '0', btime: '0', size: 0, ino: '1', dev: '1', nlink: 1 });
  const v1 = decodeTree(Buffer.from(JSON.stringify({ v: 1, nodes: [v1node(Buffer.from('..')), v1node(Buffer.from('x')), v1node(Buffer.from('x')), v1node(Buffer.from('y/z')), v1node(Buffer.from('ok'))] })));
  t.same(v1.nodes.map((x) => x.name.toString()), ['ok']);
  t.same(v1.rejected!.map((r) => r.reason).sort(), ['a duplicate name', 'a duplicate name', "a name holding '/'", "the name '..'"]);
});

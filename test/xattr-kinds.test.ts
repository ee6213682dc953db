// SnapshotInfo.xattrKinds: what a backup records, and what a reader accepts of it.
import t from 'tap';
import { parseXattrKinds, xattrKindOf, XattrKindsSeen } from '../src/format/xattr-kinds.js';

t.test('names map to kinds', async (t) => {
  t.equal(xattrKindOf('system.posix_acl_access'), 'acl');
  t.equal(xattrKindOf('system.posix_acl_default'), 'acl');
  t.equal(xattrKindOf('security.selinux'), 'security');
  t.equal(xattrKindOf('security.capability'), 'security');
  t.equal(xattrKindOf('user.note'), undefined);
  t.equal(xattrKindOf('trusted.x'), undefined);
  t.equal(xattrKindOf('system.posix_acl_accessx'), undefined);
});

t.test('a backup records the kinds it wrote, merged with the parent where trees were taken over unread', async (t) => {
  const none = new XattrKindsSeen();
  none.note(undefined);
  none.note([['user.a', Buffer.alloc(1)]]);
  t.same(none.result(false, undefined), [], 'none seen, nothing taken over: none');
  t.same(new XattrKindsSeen().result(true, undefined), undefined, 'trees taken over from a parent without the field: unknown');
  t.same(new XattrKindsSeen().result(true, new Set(['security'])), ['security'], "the parent's kinds");
  const both = new XattrKindsSeen();
  both.note([['security.selinux', Buffer.alloc(1)], ['user.a', Buffer.alloc(1)]]);
  both.note([['system.posix_acl_default', Buffer.alloc(1)]]);
  t.same(both.result(false, undefined), ['acl', 'security'], 'both, in a fixed order');
});

t.test('a reader takes only a list of known kinds', async (t) => {
  t.same([...parseXattrKinds([])!], []);
  t.same([...parseXattrKinds(['security', 'acl'])!].sort(), ['acl', 'security']);
  t.equal(parseXattrKinds(undefined), undefined, 'absent: any kind may be there');
  t.equal(parseXattrKinds('acl'), undefined, 'not a list');
  t.equal(parseXattrKinds(['acl', 'other']), undefined, 'an unknown kind');
  t.equal(parseXattrKinds([1]), undefined, 'not a string');
  t.equal(parseXattrKinds(['acl', 'acl', 'acl']), undefined, 'longer than the kinds there are');
});

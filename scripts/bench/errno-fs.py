# A one-file FUSE file system (llfuse) whose reads fail with the errno named: see cold-errno-tools.sh.
import errno, os, stat, sys, llfuse
E = getattr(errno, sys.argv[2])
class Fs(llfuse.Operations):
    def getattr(self, inode, ctx=None):
        a = llfuse.EntryAttributes()
        if inode == llfuse.ROOT_INODE:
            a.st_mode = stat.S_IFDIR | 0o755; a.st_nlink = 2
        else:
            a.st_mode = stat.S_IFREG | 0o644; a.st_nlink = 1; a.st_size = 100000
        a.st_ino = inode; a.attr_timeout = 1; a.entry_timeout = 1
        return a
    def lookup(self, parent, name, ctx=None):
        if name == b'f': return self.getattr(2)
        raise llfuse.FUSEError(errno.ENOENT)
    def opendir(self, inode, ctx): return inode
    def readdir(self, fh, off):
        if off == 0: yield (b'f', self.getattr(2), 1)
    def open(self, inode, flags, ctx): return inode
    def read(self, fh, off, size): raise llfuse.FUSEError(E)
    def release(self, fh): pass
llfuse.init(Fs(), sys.argv[1], ['fsname=errfs', 'ro'])
try: llfuse.main(workers=1)
finally: llfuse.close()

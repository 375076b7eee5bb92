import DatanetObjects
import Foundation
import Glibc

extension ObjectStore {
    /// Rewrites the environment compactly (free pages dropped) and swaps it in.
    ///
    /// Needs the store to itself: takes the lock file exclusively or fails with `.busy`. The copy
    /// is written and fsynced beside the data file, then renamed over it (atomic), then the
    /// directory is fsynced; a crash at any point leaves either the old or the new file whole.
    /// The store object must not be used afterwards; open the store again.
    /// - Returns: the data file's size before and after.
    public func compact() throws -> (before: Int64, after: Int64) {
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else { throw StoreError.busy(path: directory) }
        defer { flock(lockFD, LOCK_SH) }
        let tmp = directory + "/compact.tmp"
        _ = try? FileManager.default.removeItem(atPath: tmp)
        guard mkdir(tmp, 0o700) == 0 else { throw StoreError.io(path: tmp, operation: "create", errno: errno) }
        defer { _ = try? FileManager.default.removeItem(atPath: tmp) }
        do {
            try env.copyCompacted(to: tmp)
        } catch let e as LMDBError {
            throw StoreError.database(e, context: "cannot write the compacted copy")
        }
        let newFile = tmp + "/data.mdb", oldFile = directory + "/data.mdb"
        // mdb_env_copy2 creates the copy under the umask (0644 under 022); the store is 0600.
        guard chmod(newFile, 0o600) == 0 else { throw StoreError.io(path: newFile, operation: "restrict", errno: errno) }
        try fsyncPath(newFile)
        let before = fileSize(oldFile), after = fileSize(newFile)
        guard rename(newFile, oldFile) == 0 else { throw StoreError.io(path: oldFile, operation: "replace", errno: errno) }
        try fsyncPath(directory)
        return (before, after)
    }
}

func fsyncPath(_ path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw StoreError.io(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw StoreError.io(path: path, operation: "sync", errno: errno) }
}

/// The size of a file in bytes, or -1.
public func fileSize(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : -1
}

/// Bytes a directory's files occupy on disk (like `du`), not following links.
public func diskUsage(_ path: String) -> Int64 {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    var total = Int64(st.st_blocks) * 512
    if st.st_mode & S_IFMT == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
        for n in names { total += diskUsage(path + "/" + n) }
    }
    return total
}

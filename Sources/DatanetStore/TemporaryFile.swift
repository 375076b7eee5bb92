import DatanetObjects
import Glibc

/// Creates an empty file beside `path` for an atomic replace (write, fsync, rename over
/// `path`). The name takes a random suffix and is created exclusively without following
/// links, so nothing already there — a file another process left, or a symbolic link planted
/// to make this process overwrite something else — is ever opened or truncated.
public func createTemporaryFile(beside path: String, mode: mode_t = 0o644) throws -> (fd: Int32, path: String) {
    for _ in 0..<16 {
        let tmp = path + ".tmp-\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 36))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd >= 0 { return (fd, tmp) }
        guard errno == EEXIST else { throw StoreError.io(path: tmp, operation: "create", errno: errno) }
    }
    throw StoreError.io(path: path, operation: "create a temporary file beside", errno: EEXIST)
}

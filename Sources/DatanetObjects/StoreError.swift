import DatanetCrypto
import Glibc

/// Why a store operation failed, worded for the person who has to act on it.
public enum StoreError: Error, CustomStringConvertible {
    /// The directory holds no store.
    case noStore(path: String)
    /// The store was written by a newer Datanet.
    case newerFormat(found: UInt32, supported: UInt32)
    /// A system call on a file failed.
    case io(path: String, operation: String, errno: Int32)
    /// A path is neither a regular file nor a folder.
    case unsupportedFile(path: String)
    /// Following symbolic links leads back into a folder being added.
    case symlinkLoop(path: String)
    /// No object has this id (or prefix).
    case notFound(id: String)
    /// An id prefix matches several objects.
    case ambiguous(prefix: String, matches: Int)
    /// An id or prefix is not hexadecimal.
    case badId(String)
    /// The database refused an operation; `context` says what was being done.
    case database(any Error, context: String)
    /// Stored bytes do not match their id or format.
    case corrupt(String)
    /// Another process holds the store where exclusive use is needed.
    case busy(path: String)
    /// Work that needs the store quiet finds another process working in it.
    case inUse(String)
    /// A file name in a folder being read is not one this operation accepts.
    case badName(path: String, why: String)

    public var description: String {
        switch self {
        case .noStore(let p): return "no Datanet store at \(p) (create one with `datanet init`)"
        case .newerFormat(let f, let s):
            return "store format \(f) is newer than this datanet supports (\(s)); upgrade datanet"
        case .io(let p, let op, let e): return "cannot \(op) \(p): \(String(cString: strerror(e)))"
        case .unsupportedFile(let p): return "\(p) is not a regular file or folder"
        case .symlinkLoop(let p): return "symbolic link loop at \(p)"
        case .notFound(let id): return "no object \(id) in the store"
        case .ambiguous(let p, let n): return "id prefix \(p) is ambiguous (\(n) objects match); give more digits"
        case .badId(let s): return "'\(s)' is not a hex object id or prefix"
        case .database(let e, let ctx): return "\(ctx): \(e)"
        case .corrupt(let what): return "store is damaged: \(what) (run `datanet fsck`)"
        case .busy(let p): return "store \(p) is in use by another process"
        case .inUse(let why): return why
        case .badName(let p, let why): return "\(p): \(why)"
        }
    }
}

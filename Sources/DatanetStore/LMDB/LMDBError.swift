import CLMDB
import DatanetObjects
import Glibc

/// An LMDB return code as a value: negative codes are LMDB's own, positive ones are errno.
///
/// Match specific codes with `catch LMDBError.mapFull`.
public struct LMDBError: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw return code of the failing `mdb_*` call.
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Key/data pair not found (MDB_NOTFOUND).
    public static let notFound = LMDBError(rawValue: MDB_NOTFOUND)
    /// Key already present with MDB_NOOVERWRITE (MDB_KEYEXIST).
    public static let keyExists = LMDBError(rawValue: MDB_KEYEXIST)
    /// The environment's map is full; the caller grows it and retries (MDB_MAP_FULL).
    public static let mapFull = LMDBError(rawValue: MDB_MAP_FULL)
    /// Another process grew the map; adopt the new size and retry (MDB_MAP_RESIZED).
    public static let mapResized = LMDBError(rawValue: MDB_MAP_RESIZED)
    /// The transaction has too many dirty pages (MDB_TXN_FULL).
    public static let txnFull = LMDBError(rawValue: MDB_TXN_FULL)
    /// The file is not a valid LMDB file or is damaged (MDB_CORRUPTED).
    public static let corrupted = LMDBError(rawValue: MDB_CORRUPTED)
    /// A fatal error; the environment must be closed (MDB_PANIC).
    public static let panic = LMDBError(rawValue: MDB_PANIC)
    /// The environment was written by an incompatible LMDB version (MDB_VERSION_MISMATCH).
    public static let versionMismatch = LMDBError(rawValue: MDB_VERSION_MISMATCH)
    /// The file is not an LMDB data file (MDB_INVALID).
    public static let invalid = LMDBError(rawValue: MDB_INVALID)
    /// The disk is full (ENOSPC).
    public static let noSpace = LMDBError(rawValue: ENOSPC)
    /// An I/O error (EIO); also what an injected fault reports.
    public static let io = LMDBError(rawValue: EIO)

    /// LMDB's own message (`mdb_strerror`), which is `strerror` for errno codes.
    public var description: String {
        if rawValue == EFBIG { return "file too large (the file-size limit, ulimit -f, was reached)" }
        return String(cString: mdb_strerror(rawValue))
    }

    public static func ~= (match: LMDBError, error: any Error) -> Bool {
        (error as? LMDBError) == match
    }
}

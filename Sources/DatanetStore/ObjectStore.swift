import DatanetCrypto
import DatanetObjects
import Foundation
import Glibc

/// The content-addressed store of one node: chunks, blobs and trees in LMDB, plus the list of
/// what was added (`roots`) and the leases of unfinished adds. One store per directory.
public final class ObjectStore: @unchecked Sendable {
    /// The on-disk format this build writes; stores with a larger number are refused.
    public static let formatVersion: UInt32 = 1
    /// Address space reserved at open: sparse, so it costs nothing until used (SWIFT-NOTES §3).
    public static let defaultMapSize = 1 << 40

    /// The store's directory.
    public let directory: String
    /// The LMDB environment.
    public let env: Environment
    let meta, chunks, blobs, trees, roots, leases: Table
    /// Held shared by every process using the store, exclusive by `compact`.
    let lockFD: Int32

    /// Opens the store in `directory`; with `create`, makes the directory and an empty store.
    ///
    /// The map size is `mapSize`, else `DATANET_MAP_SIZE` from the environment (tests use a small
    /// one to exercise growth), else `defaultMapSize`.
    /// - Throws: `StoreError.noStore`, `.newerFormat`, `.io`, `.database`.
    public init(directory: String, create: Bool = false, mapSize: Int? = nil) throws {
        self.directory = directory
        let dataFile = directory + "/data.mdb"
        if create {
            if mkdir(directory, 0o700) != 0 && errno != EEXIST {
                throw StoreError.io(path: directory, operation: "create folder", errno: errno)
            }
        } else if access(dataFile, F_OK) != 0 {
            throw StoreError.noStore(path: directory)
        }
        lockFD = open(directory + "/datanet.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw StoreError.io(path: directory, operation: "open the lock file in", errno: errno) }
        guard flock(lockFD, LOCK_SH) == 0 else {
            close(lockFD)
            throw StoreError.io(path: directory, operation: "lock", errno: errno)
        }
        let mapSize = mapSize ?? ProcessInfo.processInfo.environment["DATANET_MAP_SIZE"].flatMap(Int.init) ?? Self.defaultMapSize
        do {
            env = try Environment(directory: directory, mapSize: mapSize)
        } catch let e as LMDBError {
            close(lockFD)
            throw StoreError.database(e, context: "cannot open the store at \(directory)")
        }
        do {
            // Read the format before anything is created, so a newer store is left untouched.
            let existing: UInt32? = try env.read { txn in
                guard let t = try? txn.openTable("meta") else { return nil }
                return try txn.withValue(t, Array("format".utf8)) { v -> UInt32 in
                    guard v.count == 4 else { throw StoreError.corrupt("the store's format number is \(v.count) bytes, not 4 (table 'meta', key 'format')") }
                    return UInt32(BigEndian.read(v, 0, 4))
                }
            }
            if let existing, existing > Self.formatVersion {
                throw StoreError.newerFormat(found: existing, supported: Self.formatVersion)
            }
            if existing == nil && !create { throw StoreError.noStore(path: directory) }
            let names = ["meta", "chunks", "blobs", "trees", "roots", "leases"]
            let t = try env.openTables(names, create: existing == nil)
            (meta, chunks, blobs, trees, roots, leases) = (t[0], t[1], t[2], t[3], t[4], t[5])
            if existing == nil {
                try env.write { txn in
                    var v = [UInt8](); BigEndian.append(UInt64(Self.formatVersion), 4, &v)
                    try txn.put(meta, Array("format".utf8), v)
                }
            }
        } catch let e as LMDBError {
            close(lockFD)
            throw StoreError.database(e, context: "cannot open the store at \(directory)")
        } catch {
            close(lockFD)
            throw error
        }
    }

    /// Unlocks before closing: a child forked meanwhile shares the lock until it execs.
    deinit { flock(lockFD, LOCK_UN); close(lockFD) }

    /// The table that holds objects of `kind`.
    func table(_ kind: ObjectKind) -> Table {
        switch kind { case .chunk: chunks; case .blob: blobs; case .tree: trees }
    }

    /// Resolves a full id or a unique hex prefix to (kind, id), searching blobs, trees and chunks.
    /// - Throws: `.badId`, `.notFound`, `.ambiguous`.
    public func resolve(_ text: String) throws -> (ObjectKind, ObjectID) {
        let lower = text.lowercased()
        guard !lower.isEmpty, lower.utf8.count <= 64, lower.utf8.allSatisfy({ Hex.nibble($0) != nil }) else {
            throw StoreError.badId(text)
        }
        let nibbles = Array(lower.utf8).map { Hex.nibble($0)! }
        var lowKey = [UInt8]()
        var i = 0
        while i + 1 < nibbles.count { lowKey.append(nibbles[i] << 4 | nibbles[i + 1]); i += 2 }
        let oddNibble: UInt8? = nibbles.count % 2 == 1 ? nibbles.last : nil
        var start = lowKey
        if let n = oddNibble { start.append(n << 4) }
        var matches = [(ObjectKind, ObjectID)]()
        try env.read { txn in
            for kind in [ObjectKind.blob, .tree, .chunk] {
                try txn.scan(table(kind), from: start) { k, _ in
                    guard k.starts(with: lowKey) else { return false }
                    if let n = oddNibble, k[lowKey.count] >> 4 != n { return false }
                    matches.append((kind, ObjectID(k)!))
                    return matches.count < 2
                }
                if matches.count > 1 { break }
            }
        }
        if matches.isEmpty { throw StoreError.notFound(id: text) }
        if matches.count > 1 {
            throw StoreError.ambiguous(prefix: text, matches: matches.count)
        }
        return matches[0]
    }

    /// The manifest of a blob, or nil.
    public func blob(_ id: ObjectID) throws -> BlobManifest? {
        try env.read { txn in try txn.withValue(blobs, id) { try BlobManifest(encoded: $0) } }
    }

    /// A tree, or nil.
    public func tree(_ id: ObjectID) throws -> Tree? {
        try env.read { txn in try txn.get(trees, id).map { try Tree(encoded: $0) } }
    }

    /// A copy of a chunk's bytes, or nil.
    public func chunk(_ id: ObjectID) throws -> [UInt8]? {
        try env.read { txn in try txn.get(chunks, id) }
    }

    /// Writes a blob's bytes to `fd`, checking every chunk's hash on the way out.
    /// Reads in short transactions so no snapshot is held across slow output.
    public func writeBlob(_ id: ObjectID, to fd: Int32, progress: ((UInt64) -> Void)? = nil) throws {
        guard let manifest = try blob(id) else { throw StoreError.notFound(id: id.hex) }
        var done: UInt64 = 0
        for c in manifest.chunks {
            let bytes = try env.read { txn -> [UInt8] in
                guard let b = try txn.withValue(chunks, c.id, { b -> [UInt8] in
                    guard ObjectID(SHA256.hash(b)) == c.id, b.count == Int(c.length) else {
                        throw StoreError.corrupt("chunk \(c.id) does not match its id")
                    }
                    return Array(b)
                }) else { throw StoreError.corrupt("chunk \(c.id) of blob \(id) is missing") }
                return b
            }
            try writeAll(fd, bytes, path: "output")
            done += UInt64(c.length)
            if done % (1 << 20) < UInt64(c.length) { env.dropMappedPages() }
            progress?(done)
        }
    }

    /// Checks blob `id` against its bytes: every chunk re-hashed and the blob id recomputed from
    /// the chunks' sizes and hashes (a manifest under the wrong id fails). Returns its size;
    /// `StoreError.notFound` when it is not held. Reads a chunk a transaction.
    public func verifiedBlobSize(_ id: ObjectID) throws -> UInt64 {
        guard let manifest = try blob(id) else { throw StoreError.notFound(id: id.hex) }
        var offset: UInt64 = 0
        for c in manifest.chunks {
            guard c.offset == offset else { throw StoreError.corrupt("blob \(id) lists chunk \(c.id) at offset \(c.offset), not \(offset)") }
            let ok = try env.read { txn in
                try txn.withValue(chunks, c.id) { b in ObjectID(SHA256.hash(b)) == c.id && b.count == Int(c.length) }
            }
            guard ok == true else { throw StoreError.corrupt("chunk \(c.id) of blob \(id) is missing or damaged") }
            offset += UInt64(c.length)
        }
        let rebuilt = BlobManifest(chunks: manifest.chunks)
        guard rebuilt.id == id, rebuilt.size == manifest.size else { throw StoreError.corrupt("blob \(id)'s chunks make blob \(rebuilt.id)") }
        return rebuilt.size
    }

    /// A blob's bytes as text: nil when it is absent, larger than `limit` or not valid UTF-8.
    /// The first chunk's opening bytes are checked in place before anything is copied, so
    /// binary content (which fails within a few bytes) costs two lookups, not a full read.
    public func blobText(_ id: ObjectID, limit: UInt64, in txn: Transaction) throws -> String? {
        guard let first = try txn.withValue(blobs, id, { try BlobManifest(encoded: $0) })?.chunks.first else { return nil }
        guard try txn.withValue(chunks, first.id, { Self.mayBeText($0) }) == true, let bytes = try blobBytes(id, limit: limit, in: txn) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    /// A blob's bytes in memory, or nil if it is absent or larger than `limit`.
    public func blobBytes(_ id: ObjectID, limit: UInt64) throws -> [UInt8]? {
        try env.read { txn in try blobBytes(id, limit: limit, in: txn) }
    }

    /// The same read in `txn` (so a caller inside a write transaction reads through it, not
    /// beside it); each chunk is re-hashed.
    public func blobBytes(_ id: ObjectID, limit: UInt64, in txn: Transaction) throws -> [UInt8]? {
        guard let m = try txn.withValue(blobs, id, { try BlobManifest(encoded: $0) }), m.size <= limit else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(Int(m.size))
        for c in m.chunks {
            let ok = try txn.withValue(chunks, c.id) { b -> Bool in
                guard ObjectID(SHA256.hash(b)) == c.id else { return false }
                out.append(contentsOf: b)
                return true
            }
            guard ok == true else { throw StoreError.corrupt("chunk \(c.id) of blob \(id) is missing or damaged") }
        }
        return out
    }

    /// Entries of `roots`: what was added, newest path per id.
    public func addedObjects() throws -> [AddedObject] {
        var out = [AddedObject]()
        try env.read { txn in
            try txn.scan(roots) { k, v in
                if let o = AddedObject(key: k, value: v) { out.append(o) }
                return true
            }
        }
        return out.sorted { $0.time == $1.time ? $0.id < $1.id : $0.time < $1.time }
    }
}

/// Something a user added: a file (blob) or a folder (tree), with the path it came from.
public struct AddedObject: Sendable {
    public var id: ObjectID
    public var kind: ObjectKind
    public var size: UInt64
    /// Seconds since 1970 when it was added.
    public var time: Int64
    public var path: String

    init(id: ObjectID, kind: ObjectKind, size: UInt64, time: Int64, path: String) {
        self.id = id; self.kind = kind; self.size = size; self.time = time; self.path = path
    }

    init?(key: UnsafeRawBufferPointer, value v: UnsafeRawBufferPointer) {
        guard let id = ObjectID(key), v.count >= 17, let kind = ObjectKind(rawValue: v[0]), kind != .chunk else { return nil }
        self.init(id: id, kind: kind, size: BigEndian.read(v, 1, 8), time: Int64(bitPattern: BigEndian.read(v, 9, 8)),
                  path: String(decoding: UnsafeRawBufferPointer(rebasing: v[17...]), as: UTF8.self))
    }

    var encodedValue: [UInt8] {
        var v: [UInt8] = [kind.rawValue]
        BigEndian.append(size, 8, &v)
        BigEndian.append(UInt64(bitPattern: time), 8, &v)
        v.append(contentsOf: path.utf8)
        return v
    }
}

/// Writes all of `bytes` to `fd`, retrying on EINTR and short writes; throws on any error.
public func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
    try bytes.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(path: path, operation: "write", errno: errno)
            }
            off += n
        }
    }
}

import DatanetCrypto
import DatanetObjects

/// Totals for `datanet stat` without an id.
public struct StoreStats: Sendable {
    public var chunks = 0, blobs = 0, trees = 0, added = 0
    /// Bytes of content in everything added (counting repeats).
    public var logicalBytes: UInt64 = 0
    /// Bytes of distinct chunks actually stored.
    public var uniqueBytes: UInt64 = 0
    /// Bytes the store's files occupy on disk.
    public var diskBytes: Int64 = 0
    /// logical / unique (1 when nothing is stored).
    public var dedupRatio: Double { uniqueBytes == 0 ? 1 : Double(logicalBytes) / Double(uniqueBytes) }
}

extension ObjectStore {
    /// Counts objects and bytes in one snapshot.
    public func stats() throws -> StoreStats {
        var s = StoreStats()
        try env.read { txn in
            s.chunks = try txn.count(chunks)
            s.blobs = try txn.count(blobs)
            s.trees = try txn.count(trees)
            s.added = try txn.count(roots)
            var seen = 0
            try txn.scan(chunks) { _, v in
                s.uniqueBytes += UInt64(v.count)
                // Stepping over large values touches their first page (and its neighbours).
                seen += 1
                if seen % 64 == 0 { env.dropMappedPages() }
                return true
            }
            try txn.scan(roots) { k, v in
                if let o = AddedObject(key: k, value: v) { s.logicalBytes += o.size }
                return true
            }
        }
        s.diskBytes = diskUsage(directory)
        return s
    }

    /// Deletes an added object's root entry and every object only it reached (a minimal gc used
    /// by the churn benchmark and tests; the full, lease-aware gc belongs to a later issue).
    /// Chunks still referenced by any other blob are kept.
    public func remove(_ id: ObjectID) throws {
        try env.write { txn in
            guard try txn.delete(roots, id) else { throw StoreError.notFound(id: id.hex) }
            var live = Set<ObjectID>()
            var liveBlobs = Set<ObjectID>()
            try txn.scan(roots) { k, v in
                if let o = AddedObject(key: k, value: v) {
                    if o.kind == .blob { liveBlobs.insert(o.id) } else { try collectBlobs(txn, o.id, into: &liveBlobs) }
                }
                return true
            }
            for b in liveBlobs {
                if let m = try txn.withValue(blobs, b, { try BlobManifest(encoded: $0) }) {
                    for c in m.chunks { live.insert(c.id) }
                }
            }
            var doomed = Set<ObjectID>()
            if try txn.contains(blobs, id) { doomed.insert(id) } else { try collectBlobs(txn, id, into: &doomed) }
            var deleted = 0
            for b in doomed where !liveBlobs.contains(b) {
                if let m = try txn.withValue(blobs, b, { try BlobManifest(encoded: $0) }) {
                    for c in m.chunks where !live.contains(c.id) {
                        try txn.delete(chunks, c.id)
                        // Freeing a large value reads its first page, which faults in its
                        // neighbours too; keep those from piling up (see dropMappedPages).
                        deleted += 1
                        if deleted % 256 == 0 { env.dropMappedPages() }
                    }
                }
                try txn.delete(blobs, b)
            }
        }
    }

    private func collectBlobs(_ txn: Transaction, _ treeID: ObjectID, into out: inout Set<ObjectID>) throws {
        guard let bytes = try txn.get(trees, treeID) else { return }
        for e in try Tree(encoded: bytes).entries {
            if e.kind == .blob { out.insert(e.id) } else { try collectBlobs(txn, e.id, into: &out) }
        }
    }
}

import DatanetCrypto
import DatanetObjects
import Glibc

/// Moving content objects between stores (bundles now, sync later): each object travels as
/// its stored bytes and is checked on arrival against its id, so a sender cannot slip in
/// bytes under another object's name. The primitives that take a transaction are the store's
/// contract with the ledger layer above it (package access); the checks are public.
extension ObjectStore {
    /// Largest object accepted from elsewhere: a chunk is at most 256 KiB (chunking.md); a blob
    /// manifest of 64 MiB describes about 1.5 million chunks (some 95 GiB at the average size).
    public static let maximumObjectSize = 64 << 20

    /// Every object reachable from a blob or tree, parents before children (trees, then
    /// blobs, then chunks), each once; nil when any of them is missing here.
    package func closure(of id: ObjectID, kind: ObjectKind, in txn: Transaction) throws -> [(ObjectKind, ObjectID)]? {
        var seen = Set<ObjectID>()
        var out = [(ObjectKind, ObjectID)]()
        guard try walk(id, kind, in: txn, seen: &seen, visit: { out.append(($0, $1)) }) else { return nil }
        for (k, c) in out where k == .chunk { guard try txn.contains(chunks, c) else { return nil } }
        return out
    }

    /// Walks the trees and blobs reachable from an object, parents first, calling `visit` for
    /// each one present and then for each chunk they name; ids already in `seen` are skipped
    /// and every id visited is added. Returns false when a tree or blob is missing (the walk
    /// goes on past it; chunks are not looked up).
    private func walk(_ id: ObjectID, _ kind: ObjectKind, in txn: Transaction, seen: inout Set<ObjectID>,
                      visit: (ObjectKind, ObjectID) throws -> Void) throws -> Bool {
        var complete = true
        var stack = [(kind, id)]
        var chunkRefs = [ObjectID]()
        while let (k, i) = stack.popLast() {
            guard k != .chunk else { chunkRefs.append(i); continue }
            guard seen.insert(i).inserted else { continue }
            if k == .tree, let bytes = try txn.get(trees, i) {
                try visit(.tree, i)
                for e in try Tree(encoded: bytes).entries { stack.append((e.kind, e.id)) }
            } else if k == .blob, let m = try txn.withValue(blobs, i, { try BlobManifest(encoded: $0) }) {
                try visit(.blob, i)
                chunkRefs += m.chunks.map(\.id)
            } else {
                seen.remove(i)
                complete = false
            }
        }
        for c in chunkRefs where seen.insert(c).inserted { try visit(.chunk, c) }
        return complete
    }

    /// The stored bytes of an object.
    package func objectBytes(_ kind: ObjectKind, _ id: ObjectID, in txn: Transaction) throws -> [UInt8]? {
        try txn.get(table(kind), id)
    }

    /// An object's bytes in place in the map, or nil: valid until the read transaction `txn`
    /// ends (LMDB keeps a read snapshot's pages in place; a server copies them once, straight
    /// into the message that carries them). Only for read transactions: a write would move them.
    package func borrowedObject(_ kind: ObjectKind, _ id: ObjectID, in txn: Transaction) throws -> UnsafeRawBufferPointer? {
        precondition(txn.readOnly, "bytes borrowed past their closure only from a read transaction")
        let bytes = try txn.withValue(table(kind), id) { $0 }
        if let bytes, bytes.count >= 1 << 16 { Self.prefault(bytes) }
        return bytes
    }

    /// Maps the pages of `bytes` (in the map) in one call rather than a page fault each as they
    /// are copied: a large object read once by a process that has not touched it (a server
    /// sending a blob). Only a hint: an older kernel that refuses it changes nothing.
    static func prefault(_ bytes: UnsafeRawBufferPointer) {
        let start = UInt(bitPattern: bytes.baseAddress) & ~UInt(pageSize - 1)
        let end = UInt(bitPattern: bytes.baseAddress) + UInt(bytes.count)
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), 22) // MADV_POPULATE_READ (Linux 5.14)
    }

    /// The system's page size, which `madvise` aligns to.
    private static let pageSize = max(1, sysconf(Int32(_SC_PAGESIZE)))

    /// Whether an object is here.
    package func contains(_ kind: ObjectKind, _ id: ObjectID, in txn: Transaction) throws -> Bool {
        try txn.contains(table(kind), id)
    }

    /// The id of an object received from elsewhere, after checking its bytes: a chunk is
    /// named by its hash; a manifest's chunks must be contiguous and its root and id must
    /// follow from them; a tree must be canonical.
    public static func validate(_ kind: ObjectKind, _ bytes: [UInt8]) throws -> ObjectID {
        try validated(kind, bytes).id
    }

    /// `validate`, also returning what the object names: a blob's chunks, a tree's entries
    /// (so an importer can check a closure without reading back what it just wrote).
    public static func validated(_ kind: ObjectKind, _ bytes: [UInt8]) throws -> (id: ObjectID, children: [(ObjectKind, ObjectID)]) {
        guard bytes.count <= maximumObjectSize else { throw StoreError.corrupt("\(kind) of \(bytes.count) bytes exceeds \(maximumObjectSize)") }
        switch kind {
        case .chunk:
            guard bytes.count <= FastCDC.maxSize else { throw StoreError.corrupt("chunk of \(bytes.count) bytes exceeds \(FastCDC.maxSize)") }
            return (ObjectID(SHA256.hash(bytes)), [])
        case .blob:
            let m = try bytes.withUnsafeBytes { try BlobManifest(encoded: $0) }
            var offset: UInt64 = 0
            for c in m.chunks {
                guard c.offset == offset, c.length > 0, Int(c.length) <= FastCDC.maxSize else {
                    throw StoreError.corrupt("blob manifest chunks are not contiguous chunks of at most \(FastCDC.maxSize) bytes")
                }
                offset += UInt64(c.length)
            }
            guard offset == m.size, Merkle.root(leafHashes: m.chunks.map(\.leafHash)) == m.root else {
                throw StoreError.corrupt("blob manifest size or root does not follow from its chunks")
            }
            return (m.id, m.chunks.map { (.chunk, $0.id) })
        case .tree:
            let t = try Tree(encoded: bytes)
            guard t.encoded == bytes else { throw StoreError.corrupt("tree is not canonically encoded") }
            return (Tree.id(encoded: bytes), t.entries.map { ($0.kind, $0.id) })
        }
    }

    /// Stores an object received from elsewhere (already validated to have `id`) unless it is
    /// here; true when this call stored it.
    @discardableResult
    package func put(_ kind: ObjectKind, _ id: ObjectID, _ bytes: [UInt8], in txn: Transaction) throws -> Bool {
        try txn.putNew(table(kind), id, size: bytes.count) { out in bytes.withUnsafeBytes { out.copyMemory(from: $0) } }
    }

    /// Stores objects received from elsewhere, each already validated to have its id, in one
    /// write transaction (those held already are left as they are): on-demand content, where
    /// every object is part of a contribution this store holds.
    package func keep(_ objects: [(ObjectKind, ObjectID, [UInt8])]) throws {
        guard !objects.isEmpty else { return }
        try env.write { txn in for (kind, id, bytes) in objects { try put(kind, id, bytes, in: txn) } }
    }

    /// False when `bytes` cannot be the start of a UTF-8 text (checked on at most the first
    /// 256 bytes, a sequence cut at the end allowed): what lets an importer skip the
    /// near-duplicate check of binary content without reading it back.
    public static func mayBeText(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { mayBeText($0) }
    }

    /// `mayBeText` on bytes in place (a chunk read through the map).
    public static func mayBeText(_ b: UnsafeRawBufferPointer) -> Bool {
        var end = Swift.min(b.count, 256)
        // Drop a sequence the cut may have split: continuation bytes and their lead.
        if end < b.count {
            while end > 0 && b[end - 1] & 0xc0 == 0x80 { end -= 1 }
            if end > 0 && b[end - 1] >= 0xc0 { end -= 1 }
        }
        return String(validating: UnsafeRawBufferPointer(rebasing: b[0..<end]), as: UTF8.self) != nil
    }

    /// Deletes an object the caller's transaction stored from elsewhere and nothing turned out
    /// to need (an import keeps only what a live record reaches). Only gc deletes otherwise.
    package func discard(_ kind: ObjectKind, _ id: ObjectID, in txn: Transaction) throws {
        try txn.delete(table(kind), id)
    }
}

extension ObjectStore {
    /// Adds to `live` every object reachable from a blob or tree that is present here
    /// (missing objects are skipped: a records-only store holds no content). Returns whether
    /// every object reached was present; objects already in `live` are not walked again.
    @discardableResult
    package func mark(_ id: ObjectID, kind: ObjectKind, in txn: Transaction, into live: inout Set<ObjectID>) throws -> Bool {
        var chunksPresent = true
        let complete = try walk(id, kind, in: txn, seen: &live) { k, c in
            if k == .chunk, chunksPresent, try !txn.contains(chunks, c) { chunksPresent = false }
        }
        return complete && chunksPresent
    }

    /// What `sweep` removed (or would remove).
    public struct Sweep: Codable, Sendable {
        public var chunks = 0, blobs = 0, trees = 0
        public var bytes: UInt64 = 0
        public var roots = 0
        public var deadLeases = 0
    }

    /// Deletes every chunk, blob and tree not in `live`, and the `roots` entries in `dropRoots`,
    /// in the caller's write transaction (or only counts them when `dryRun`).
    package func sweep(keeping live: Set<ObjectID>, dropRoots: Set<ObjectID>, in txn: Transaction, dryRun: Bool) throws -> Sweep {
        var s = Sweep()
        for (kind, table) in [(ObjectKind.chunk, chunks), (.blob, blobs), (.tree, trees)] {
            var doomed = [(ObjectID, Int)]()
            try txn.scan(table) { k, v in
                if let id = ObjectID(k), !live.contains(id) { doomed.append((id, v.count)) }
                return true
            }
            for (id, n) in doomed {
                if !dryRun { try txn.delete(table, id) }
                switch kind { case .chunk: s.chunks += 1; s.bytes += UInt64(n); case .blob: s.blobs += 1; case .tree: s.trees += 1 }
            }
        }
        for id in dropRoots where try txn.contains(roots, id) {
            if !dryRun { try txn.delete(roots, id) }
            s.roots += 1
        }
        return s
    }

    /// Objects named by `roots` (what `add` added), with their kinds.
    package func addedRoots(in txn: Transaction) throws -> [(ObjectKind, ObjectID)] {
        var out = [(ObjectKind, ObjectID)]()
        try txn.scan(roots) { k, v in
            if let o = AddedObject(key: k, value: v) { out.append((o.kind, o.id)) }
            return true
        }
        return out
    }

    /// Clears leases of adds whose process is gone; throws when an add is still running.
    package func clearDeadLeases(in txn: Transaction, dryRun: Bool) throws -> Int {
        var dead = [[UInt8]]()
        try txn.scan(leases) { k, v in
            let pid = v.count >= 8 ? pid_t(truncatingIfNeeded: BigEndian.read(v, 0, 8)) : 0 // lease: pid ‖ start time
            if pid > 0 && kill(pid, 0) == 0 && pid != getpid() {
                throw StoreError.inUse("an add is running (process \(pid)); run gc when it has finished")
            }
            dead.append(Array(k))
            return true
        }
        if !dryRun { for k in dead { try txn.delete(leases, k) } }
        return dead.count
    }
}

import DatanetCrypto
import DatanetObjects
import Glibc

/// The result of a full store check.
public struct FsckReport: Sendable {
    /// Damage found, each naming the object by id. Empty means the store is sound.
    public var problems: [String] = []
    /// Objects nothing added references: left by an interrupted add, not damage.
    public var unreferenced: [(ObjectKind, ObjectID)] = []
    /// Leases whose process is gone (an add that died).
    public var staleLeases = 0
    /// Leases of adds still running.
    public var liveLeases = 0
    /// Objects checked per kind.
    public var chunks = 0, blobs = 0, trees = 0, roots = 0
    /// Bytes re-hashed.
    public var bytesChecked: UInt64 = 0
}

extension ObjectStore {
    /// Re-hashes every chunk, checks every manifest (chunks present, offsets contiguous, lengths,
    /// root, id) and every tree (canonical bytes, sorted names, entries present with the right
    /// kind and size, id), and every added object. Reads in one snapshot; writes nothing.
    public func fsck(progress: ((UInt64) -> Void)? = nil) throws -> FsckReport {
        var r = FsckReport()
        try env.read { txn in
            var chunkSizes = [ObjectID: Int]()
            var hasher = SHA256.Hasher()
            try txn.scan(chunks) { k, v in
                r.chunks += 1
                guard let id = ObjectID(k) else { r.problems.append("chunk key \(Hex.encode(k)) is not 32 bytes"); return true }
                hasher.update(v)
                let actual = ObjectID(hasher.finalize())
                if actual != id { r.problems.append("chunk \(id): content hashes to \(actual)") }
                chunkSizes[id] = v.count
                r.bytesChecked += UInt64(v.count)
                progress?(r.bytesChecked)
                // Hashing reads every chunk through the map; without this, resident memory
                // would grow to the size of the store (see Environment.dropMappedPages).
                if r.chunks % 8 == 0 { env.dropMappedPages() }
                return true
            }
            var referenced = Set<ObjectID>()
            var blobSizes = [ObjectID: UInt64]()
            try txn.scan(blobs) { k, v in
                r.blobs += 1
                guard let id = ObjectID(k) else { r.problems.append("blob key \(Hex.encode(k)) is not 32 bytes"); return true }
                guard let m = try? BlobManifest(encoded: v) else { r.problems.append("blob \(id): manifest has an invalid length"); return true }
                blobSizes[id] = m.size
                var offset: UInt64 = 0
                for (i, c) in m.chunks.enumerated() {
                    referenced.insert(c.id)
                    if c.offset != offset { r.problems.append("blob \(id): chunk \(i) at offset \(c.offset), expected \(offset)") }
                    if let n = chunkSizes[c.id] {
                        if n != Int(c.length) { r.problems.append("blob \(id): chunk \(i) (\(c.id)) is \(n) bytes, manifest says \(c.length)") }
                    } else {
                        r.problems.append("blob \(id): chunk \(i) (\(c.id)) is missing")
                    }
                    offset = c.offset &+ UInt64(c.length)
                }
                if offset != m.size { r.problems.append("blob \(id): chunks cover \(offset) bytes, size is \(m.size)") }
                let root = Merkle.root(leafHashes: m.chunks.map(\.leafHash))
                if root != m.root { r.problems.append("blob \(id): Merkle root is \(root), manifest says \(m.root)") }
                if BlobManifest.id(size: m.size, root: m.root) != id { r.problems.append("blob \(id): id does not match its manifest") }
                return true
            }
            var treeSizes = [ObjectID: UInt64]()
            var treeEntries = [(ObjectID, [TreeEntry])]()
            try txn.scan(trees) { k, v in
                r.trees += 1
                guard let id = ObjectID(k) else { r.problems.append("tree key \(Hex.encode(k)) is not 32 bytes"); return true }
                let bytes = Array(v)
                if Tree.id(encoded: bytes) != id { r.problems.append("tree \(id): content hashes to another id") }
                do {
                    let t = try Tree(encoded: bytes)
                    treeSizes[id] = t.size
                    treeEntries.append((id, t.entries))
                } catch {
                    r.problems.append("tree \(id): \(error)")
                }
                return true
            }
            var referencedObjects = Set<ObjectID>()
            for (id, entries) in treeEntries {
                for e in entries {
                    referencedObjects.insert(e.id)
                    let name = String(decoding: e.name, as: UTF8.self)
                    let actual = e.kind == .blob ? blobSizes[e.id] : treeSizes[e.id]
                    guard let actual else {
                        r.problems.append("tree \(id): entry '\(name)' names missing \(e.kind) \(e.id)")
                        continue
                    }
                    if actual != e.size { r.problems.append("tree \(id): entry '\(name)' says \(e.size) bytes, \(e.kind) has \(actual)") }
                }
            }
            try txn.scan(roots) { k, v in
                r.roots += 1
                guard let o = AddedObject(key: k, value: v) else { r.problems.append("added-object entry \(Hex.encode(k)) is malformed"); return true }
                referencedObjects.insert(o.id)
                let exists = o.kind == .blob ? blobSizes[o.id] != nil : treeSizes[o.id] != nil
                if !exists { r.problems.append("added \(o.kind) \(o.id) (\(o.path)) is missing") }
                return true
            }
            for id in chunkSizes.keys.sorted() where !referenced.contains(id) { r.unreferenced.append((.chunk, id)) }
            for id in blobSizes.keys.sorted() where !referencedObjects.contains(id) { r.unreferenced.append((.blob, id)) }
            for id in treeSizes.keys.sorted() where !referencedObjects.contains(id) { r.unreferenced.append((.tree, id)) }
            try txn.scan(leases) { _, v in
                let pid = v.count >= 8 ? pid_t(truncatingIfNeeded: BigEndian.read(v, 0, 8)) : 0
                if pid > 0 && (kill(pid, 0) == 0 || errno == EPERM) { r.liveLeases += 1 } else { r.staleLeases += 1 }
                return true
            }
        }
        return r
    }
}

import DatanetCrypto
import DatanetObjects
import Foundation
import Glibc

/// What one `add` produced.
public struct AddResult: Sendable {
    /// Blob id for a file, tree id for a folder.
    public var id: ObjectID
    public var kind: ObjectKind
    /// Bytes of file content.
    public var size: UInt64
    /// Bytes of chunks this add stored that the store did not have.
    public var newBytes: UInt64
    /// The path as given.
    public var path: String
}

/// Adds files and folders to a store: FastCDC chunks, blob manifests, trees, and a `roots`
/// entry per path, in bounded write transactions under a lease.
///
/// All paths are checked before the first write. If the add fails part-way, everything it
/// newly stored is deleted again, so the store is as it was; if the process dies instead, the
/// committed chunks stay, unreferenced and held by a stale lease, until gc (fsck reports them).
public final class Ingest {
    let store: ObjectStore
    let batch: WriteBatch
    /// Called with the bytes of file content processed so far.
    public var progress: ((UInt64) -> Void)?
    /// Runs in the add's last transaction, after every path is stored and before the commit:
    /// what it writes commits with the content or not at all (a throw rolls the add back).
    public var beforeCommit: ((Transaction, [AddResult]) throws -> Void)?
    private var done: UInt64 = 0
    private var created: [(Table, ObjectID)] = []
    private let leaseKey: [UInt8]
    private var leaseWritten = false
    private var newBytes: UInt64 = 0
    private var lastDrop: UInt64 = 0
    /// Lookups since the map's page-table entries were last dropped.
    private var lookupsSinceDrop = 0
    /// One read buffer for every file of this add: allocating 4 MiB per file costs an mmap and
    /// munmap each, which dominated adds of many small files.
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ChunkReader.bufferSize, alignment: 64)

    deinit { readBuffer.deallocate() }

    /// Prepares an add into `store`; `dirtyLimit` bounds each transaction's written bytes.
    public init(store: ObjectStore, dirtyLimit: Int = 32 << 20) {
        self.store = store
        batch = WriteBatch(env: store.env, dirtyLimit: dirtyLimit)
        var key = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { key[i] = UInt8.random(in: 0...255) }
        leaseKey = key
    }

    /// Adds every path (planned first), commits, and returns one result per path.
    public func add(paths: [String]) throws -> [AddResult] {
        try add(plans: try Ingest.plan(paths))
    }

    /// Checks every path before anything is written (see `SourceNode.plan`).
    public static func plan(_ paths: [String]) throws -> [(path: String, node: SourceNode)] {
        try paths.map { ($0, try SourceNode.plan($0)) }
    }

    /// Checks every path, given as bytes (they need not be valid UTF-8), before anything is
    /// written; each result's path is its printable form (`display`).
    public static func plan(bytes paths: [[UInt8]]) throws -> [(path: String, node: SourceNode)] {
        try paths.map { (display($0), try SourceNode.plan(bytes: $0)) }
    }

    /// Adds planned paths, commits, and returns one result per path.
    public func add(plans: [(path: String, node: SourceNode)]) throws -> [AddResult] {
        // Each call is its own add, with its own lease and its own rollback list.
        created = []
        leaseWritten = false
        do {
            var results = [AddResult]()
            let now = Int64(Date().timeIntervalSince1970)
            for (path, plan) in plans {
                let before = newBytes
                let (kind, id, size) = try ingest(plan)
                let obj = AddedObject(id: id, kind: kind, size: size, time: now, path: path)
                try batch.current().put(store.roots, id, obj.encodedValue)
                results.append(AddResult(id: id, kind: kind, size: size, newBytes: newBytes - before, path: path))
            }
            if let beforeCommit { try beforeCommit(try batch.current(), results) }
            if leaseWritten { try batch.current().delete(store.leases, leaseKey) }
            try batch.commit()
            return results
        } catch {
            batch.abort()
            rollback()
            throw Self.describe(error, directory: store.directory)
        }
    }

    private func ingest(_ node: SourceNode) throws -> (ObjectKind, ObjectID, UInt64) {
        switch node {
        case .file(let path, let size):
            let m = try ingestFile(path, size: size)
            return (.blob, m.id, m.size)
        case .folder(_, let children):
            var entries = [TreeEntry]()
            for (name, child) in children {
                let (kind, id, size) = try ingest(child)
                entries.append(TreeEntry(name: name, kind: kind, id: id, size: size))
            }
            let tree = try Tree(entries: entries)
            let bytes = tree.encoded
            let id = Tree.id(encoded: bytes)
            let txn = try startBatch()
            if try txn.putNew(store.trees, id, size: bytes.count, fill: { $0.copyBytes(from: bytes) }) {
                created.append((store.trees, id))
            }
            try batch.commitIfDue()
            return (.tree, id, tree.size)
        }
    }

    private func startBatch(extraRoom: Int = 0) throws -> Transaction {
        let txn = try batch.current(extraRoom: extraRoom)
        if !leaseWritten {
            // The lease names this process, so a later gc can tell a live add from a dead one.
            var v = [UInt8]()
            BigEndian.append(UInt64(getpid()), 8, &v)
            BigEndian.append(UInt64(Date().timeIntervalSince1970), 8, &v)
            try txn.put(store.leases, leaseKey, v)
            leaseWritten = true
        }
        return txn
    }

    /// Files at least this large are read, cut and hashed on a second thread (`ChunkPipeline`)
    /// while this one stores; smaller ones are not worth a thread.
    public var pipelineThreshold: UInt64 = 8 << 20

    private func ingestFile(_ path: [UInt8], size: UInt64) throws -> BlobManifest {
        var refs = [ChunkRef]()
        var leaves = [Digest]()
        var fileSize: UInt64 = 0
        func put(_ bytes: UnsafeRawBufferPointer, id: ObjectID, offset: UInt64) throws {
            let txn = try startBatch()
            if try txn.putNew(store.chunks, id, size: bytes.count, fill: { $0.copyMemory(from: bytes) }) {
                created.append((store.chunks, id))
                newBytes += UInt64(bytes.count)
            }
            let ref = ChunkRef(id: id, offset: offset, length: UInt32(bytes.count))
            refs.append(ref)
            leaves.append(ref.leafHash)
            done += UInt64(bytes.count)
            fileSize = offset + UInt64(bytes.count)
            progress?(done)
            try afterLookup()
            try batch.commitIfDue()
        }
        if size >= pipelineThreshold {
            let pipeline = try ChunkPipeline(path: path)
            defer { pipeline.close() }
            while true {
                let slot = pipeline.nextSlot()
                if let error = slot.error { throw error }
                for c in slot.chunks {
                    try put(UnsafeRawBufferPointer(rebasing: slot.buffer[c.start..<c.start + c.length]), id: c.id, offset: c.offset)
                }
                pipeline.release()
                if slot.end { break }
            }
        } else {
            let reader = try ChunkReader(path: path, buffer: readBuffer)
            var hasher = SHA256.Hasher()
            while let (offset, bytes) = try reader.next() {
                hasher.update(bytes)
                try put(bytes, id: ObjectID(hasher.finalize()), offset: offset)
            }
        }
        let manifest = BlobManifest(size: fileSize, root: Merkle.root(leafHashes: leaves), chunks: refs)
        let encoded = manifest.encoded
        let txn = try startBatch(extraRoom: encoded.count)
        if try txn.putNew(store.blobs, manifest.id, size: encoded.count, fill: { $0.copyBytes(from: encoded) }) {
            created.append((store.blobs, manifest.id))
        }
        try afterLookup()
        try batch.commitIfDue()
        return manifest
    }

    /// Drops the map's page-table entries every MiB of content or 64 lookups, whichever comes
    /// first (see `Environment.dropMappedPages`): each B-tree lookup faults in 64 KiB of
    /// neighbouring chunk pages, which would otherwise pile up as resident memory.
    private func afterLookup() throws {
        lookupsSinceDrop += 1
        if done - lastDrop >= 1 << 20 || lookupsSinceDrop >= 1024 {
            lastDrop = done
            lookupsSinceDrop = 0
            store.env.dropMappedPages()
        }
    }

    /// Deletes what this add created in batches already committed, and its lease.
    ///
    /// Only when no other writer committed since our last batch: otherwise another add may
    /// already reference a chunk we created, and deleting it would damage that add's file.
    private func rollback() {
        guard batch.commits > 0 else { return }
        do {
            try store.env.write { txn in
                guard txn.id == batch.lastCommittedID + 1 else { return }
                for (table, id) in created.reversed() { try txn.delete(table, id) }
                try txn.delete(store.leases, leaseKey)
            }
        } catch {
            // Left as unreferenced objects under a stale lease: fsck reports them, gc frees them.
        }
    }

    /// Gives database errors the context a user needs. LMDB reports a short write as EIO, so
    /// an I/O error is checked against the two usual causes: a full disk and a file-size limit.
    static func describe(_ error: Error, directory: String) -> Error {
        guard var e = error as? LMDBError else { return error }
        if e == .io || e == LMDBError(rawValue: EFBIG) || e == .noSpace {
            var limit = rlimit()
            var fs = statvfs()
            let size = fileSize(directory + "/data.mdb")
            if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
               size >= 0, UInt64(size) + UInt64(FastCDC.maxSize) * 4 >= UInt64(limit.rlim_cur) {
                e = LMDBError(rawValue: EFBIG)
            } else if statvfs(directory, &fs) == 0, UInt64(fs.f_bavail) * UInt64(fs.f_frsize) < 64 << 20 {
                e = .noSpace
            }
        }
        return StoreError.database(e, context: "cannot write to the store")
    }
}

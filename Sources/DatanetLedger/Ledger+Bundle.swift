import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What a bundle held (on export) or brought (on import).
public struct BundleSummary: Codable, Sendable, Equatable {
    public var datanet: String
    public var from: UInt64
    public var to: UInt64
    public var leaves = 0
    /// Import: leaves this store did not hold before.
    public var newLeaves = 0
    public var checkpoints = 0
    public var records = 0
    /// Signatures added to records that were already pending here.
    public var signatures = 0
    /// Intake promises carried (export) or kept for this store's own contributions (import).
    public var promises = 0
    /// Objects and sidecars newly kept (import) or written (export).
    public var objects = 0
    public var sidecars = 0
    /// Import: objects and sidecars the bundle carried that no live record here reaches (junk,
    /// or what a tombstone erased), left out.
    public var skipped = 0
    public var bytes: UInt64 = 0
    /// Import: the ranges of leaves that came in bundles without content (records-only ones),
    /// the last bundle's whole range included, whose content this store may lack. Not written out.
    public var withoutContent = [Range<UInt64>]()

    private enum CodingKeys: String, CodingKey {
        case datanet, from, to, leaves, newLeaves, checkpoints, records, signatures, promises, objects, sidecars, skipped, bytes
    }
}

extension Ledger {
    /// Writes a bundle of a Datanet (schema/bundle.md): its leaves from `since` to the newest
    /// checkpoint with the checkpoints between, the records pending here (those `selection`
    /// includes, when given: sync's), the sidecars held and, unless `recordsOnly`, every
    /// chunk, blob and tree their contributions name. One read
    /// snapshot, so the bundle is consistent even while this store keeps working. The artifacts
    /// of its models (registered or pending) travel as content does, when held.
    /// With `end`, a batch (schema/protocol.md): leaves [since, end) only, with the checkpoints
    /// among them and their intakes' promises and content, but no pending records.
    /// With `signer`, pending records only (no leaves, checkpoints or evidence: `since` and
    /// `end` are 0) and only those `signer` signed: what a contributor who may not read a
    /// private Datanet sends it.
    public func exportBundle(_ d: DatanetID, since: UInt64 = 0, end: UInt64? = nil, recordsOnly: Bool = false,
                             selection: PendingSelection? = nil, signer: PublicKey? = nil, to fd: Int32) throws -> BundleSummary {
        let (since, end) = signer == nil ? (since, end) : (0, 0)
        let table = try leafTable(d)
        return try env.read { txn in
            guard let note = try latestCheckpointNote(txn, d) else { throw LedgerStateError.noCheckpoint(datanet: d.hex, size: nil) }
            let newest = try Checkpoint.unverified(note: note).size
            let to = end ?? newest
            guard since <= to, to <= newest else { throw LedgerStateError.beyondLog(size: max(since, to), held: newest) }
            var summary = BundleSummary(datanet: d.hex, from: since, to: to)
            let w = try BundleWriter(fd: fd)
            try w.frame(.header, CBOR.map([.init(.unsigned(1), .bytes(d.bytes)), .init(.unsigned(2), .unsigned(since)),
                                           .init(.unsigned(3), .unsigned(to)), .init(.unsigned(4), .bool(recordsOnly))]).encoded)
            try txn.scanNumbered(checkpoints, d, from: since) { size, v in
                guard size <= to else { return false }
                if size > since || size == to { try w.frame(.checkpoint, Array(v)); summary.checkpoints += 1 }
                return true
            }
            var contents = [Contribution]()
            var intakes = [RecordID]()
            var artifacts = [ObjectID]()
            try table.scan(txn, from: since) { k, v in
                guard k < to else { return false }
                let bytes = Array(v)
                try w.frame(.leaf, BigEndian.bytes(k) + bytes)
                summary.leaves += 1
                let leaf = try? Leaf(encoded: bytes)
                if let e = leaf?.intake?.contribution, case .contribution(let c)? = try? Record(e) {
                    intakes.append(e.id)
                    if try tombstone(txn, e.id) == nil { contents.append(c) } // content under a tombstone is not passed on
                } else if let m = leaf?.model?.record, case .model(let r)? = try? Record(m) {
                    artifacts.append(r.artifact)
                }
                return true
            }
            // The sequencer's answers to the contributors, for their stores to keep.
            for id in intakes {
                guard let p = try txn.get(promises, id) else { continue }
                try w.frame(.promise, p)
                summary.promises += 1
            }
            try txn.scanNumbered(pending, d) { n, v in
                guard end == nil || signer != nil else { return false }
                guard let bytes = try pendingRecord(txn, v, key: BigEndian.key(d, n)).1 else { return true }
                let e = try? Envelope(encoded: bytes)
                if let selection, !(e.map(selection.includes) ?? false) { return true }
                if let signer, !(e?.signatures.contains { $0.key == signer } ?? false) { return true }
                try w.frame(.record, bytes)
                summary.records += 1
                switch e.flatMap({ try? Record($0) }) {
                case .contribution(let c)?: contents.append(c)
                case .model(let m)?: artifacts.append(m.artifact)
                default: break
                }
                return true
            }
            // Apart: a chunk whose bytes are a sidecar's encoding has that sidecar's hash as its id.
            var sentSidecars = Set<Digest>(), sentObjects = Set<ObjectID>()
            func send(_ closure: [(ObjectKind, ObjectID)]) throws {
                for (kind, id) in closure where sentObjects.insert(id).inserted {
                    let frame: BundleFrame = switch kind { case .chunk: .chunk; case .blob: .blob; case .tree: .tree }
                    try w.frame(frame, try store.objectBytes(kind, id, in: txn)!)
                    summary.objects += 1
                }
            }
            for c in contents {
                if let s = try txn.get(sidecars, c.sidecar), sentSidecars.insert(c.sidecar).inserted { try w.frame(.sidecar, s); summary.sidecars += 1 }
                // Content a tombstone erased here (an exact copy of withdrawn content included) is
                // gone after gc and never passed on; an import does not ask for it either.
                guard !recordsOnly, try !isErased(txn, d, content: c.content) else { continue }
                guard let closure = try store.closure(of: c.content, kind: c.contentKind == .blob ? .blob : .tree, in: txn) else {
                    throw LedgerStateError.contentMissing(content: c.content.hex)
                }
                try send(closure)
            }
            // A model's artifact when held here (its builder's store holds it; others may not).
            for a in artifacts where try !recordsOnly && !isErased(txn, d, content: a) {
                if let closure = try store.closure(of: a, kind: .blob, in: txn) { try send(closure) }
            }
            try txn.scan(forks, from: d.bytes) { k, v in
                guard end == nil, signer == nil, k.starts(with: d.bytes) else { return false }
                try w.frame(.forkEvidence, Array(v))
                return true
            }
            try w.finish()
            summary.bytes = w.bytes
            return summary
        }
    }

    /// The newest checkpoint this store holds of `d`; one that does not parse, or whose size is
    /// not its key's, is damage naming the table and key.
    func latestCheckpointNote(_ txn: Transaction, _ d: DatanetID) throws -> String? {
        guard let key = try txn.lastKey(checkpoints, prefix: d.bytes), let v = try txn.get(checkpoints, key) else { return nil }
        let note = String(decoding: v, as: UTF8.self)
        let cp = try LogIndex.decode(checkpoints.name, key, v) { _ in try Checkpoint.unverified(note: note) }
        guard key.count == 40, cp.size == BigEndian.u64(key, at: 32) else {
            throw LedgerError.corruptEntry(table: checkpoints.name, key: Hex.encode(key), why: "the checkpoint is of size \(cp.size)")
        }
        return note
    }
}

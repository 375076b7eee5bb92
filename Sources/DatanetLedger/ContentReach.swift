import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What content a store may serve a peer, and what it lacks, for on-demand content
/// (schema/protocol.md `fetch`): objects are served only as part of one contribution's
/// content, in a Datanet the peer may read, so a request never reaches content of another
/// Datanet or content a tombstone erased.
extension LedgerReader {
    /// The objects of contribution `id`'s content held here, when it is a contribution of `d`
    /// (taken in, or queued here) not under a tombstone, or of a model's artifact when `id` is a
    /// model of `d` (registered, or queued here); nil otherwise, with the same answer for a
    /// record of another Datanet as for one never seen.
    public func servableContent(_ d: DatanetID, contribution id: RecordID) throws -> Set<ObjectID>? {
        try ledger.env.read { txn -> Set<ObjectID>? in
            if let artifact = try ledger.modelArtifact(txn, id, in: d) {
                // An artifact whose bytes a tombstone erased here (a copy of withdrawn content) is not served.
                guard try !ledger.isErased(txn, d, content: artifact) else { return nil }
                var live = Set<ObjectID>()
                try ledger.store.mark(artifact, kind: .blob, in: txn, into: &live)
                return live
            }
            guard let c = try ledger.contribution(txn, id, in: d), try !ledger.isErased(txn, d, contribution: id),
                  try !ledger.isErased(txn, d, content: c.content) else { return nil }
            var live = Set<ObjectID>()
            try ledger.store.mark(c.content, kind: c.contentKind.object, in: txn, into: &live)
            return live
        }
    }

    /// The contribution `id` of `d` (taken in or queued here), if it is one.
    public func contribution(_ id: RecordID, in d: DatanetID) throws -> Contribution? {
        try ledger.env.read { txn in try ledger.contribution(txn, id, in: d) }
    }

    /// Whether contribution `id`'s content is erased for good in `d`: it is under a tombstone,
    /// or it copies content whose earliest contribution there is (nothing may fetch it).
    public func isErased(_ d: DatanetID, contribution id: RecordID, content: ObjectID) throws -> Bool {
        try ledger.env.read { txn in try ledger.isErased(txn, d, contribution: id) || ledger.isErased(txn, d, content: content) }
    }

    /// Whether every object of this content is held here (a records-only sync holds none).
    public func holdsContent(_ c: Contribution) throws -> Bool {
        try holdsObject(c.content, kind: c.contentKind.object)
    }

    /// Whether blob or tree `id` is held here whole, every object it names included.
    public func holdsObject(_ id: ObjectID, kind: ObjectKind) throws -> Bool {
        try ledger.env.read { txn in
            var live = Set<ObjectID>()
            return try ledger.store.mark(id, kind: kind, in: txn, into: &live)
        }
    }
}

extension Ledger {
    /// The artifact of model `id` when its record is here and names `d`, and it is registered in
    /// `d`'s log or queued here.
    func modelArtifact(_ txn: Transaction, _ id: RecordID, in d: DatanetID) throws -> ObjectID? {
        guard let bytes = try txn.get(records, id), case .model(let m)? = try? Record(Envelope(encoded: bytes)), m.datanet == d else { return nil }
        if try isPending(txn, id) { return m.artifact }
        return try index.placement(txn, id)?.datanet == d ? m.artifact : nil
    }

    /// Contribution `id` when its record is here and names `d`, and it is taken into `d`'s log
    /// or queued here.
    func contribution(_ txn: Transaction, _ id: RecordID, in d: DatanetID) throws -> Contribution? {
        guard let bytes = try txn.get(records, id), case .contribution(let c)? = try? Record(Envelope(encoded: bytes)), c.datanet == d else { return nil }
        if try isPending(txn, id) { return c }
        return try index.placement(txn, id)?.datanet == d ? c : nil
    }
}

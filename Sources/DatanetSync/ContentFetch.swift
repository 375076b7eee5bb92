import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore

/// On-demand content (schema/protocol.md `fetch`, `objects`): a peer asks for the objects of
/// one contribution's content, a window of requests in flight; the server answers only with
/// objects of that content, in a Datanet the peer may read; the receiver hashes every object,
/// takes only objects it asked for, stores chunks as they come and each blob or tree once
/// what it names is here, so a cut fetch resumes from what was stored.
struct ContentReach {
    /// The objects of the contributions asked about in this session (a few kept).
    private var known = [RecordID: Set<ObjectID>]()

    /// The objects of `contribution`'s content this node serves in `d`, or nil.
    mutating func objects(_ ledger: Ledger, _ d: DatanetID, _ contribution: RecordID) throws -> Set<ObjectID>? {
        if let hit = known[contribution] { return hit }
        guard let objects = try ledger.reader.servableContent(d, contribution: contribution) else { return nil }
        if known.count >= 16 { known.removeAll() }
        known[contribution] = objects
        return objects
    }

    /// The answer to a fetch of `wanted` among `objects`: what is held, within the answer's
    /// byte bound (at least one object); refused, what is not held or not among them.
    static func answer(_ ledger: Ledger, _ wanted: [SyncMessage.ObjectRef], within objects: Set<ObjectID>,
                       limit: Int = SyncMessage.maximumObjectsBytes) throws -> SyncMessage.Body {
        var sent = [SyncMessage.SentObject](), refused = [SyncMessage.ObjectRef](), bytes = 0
        try ledger.store.env.read { txn in
            for w in wanted {
                guard objects.contains(w.id), let b = try ledger.store.objectBytes(w.kind, w.id, in: txn), b.count <= SyncMessage.maximumObject else {
                    refused.append(w)
                    continue
                }
                // Past the answer's bound: neither sent nor refused, so asked for again.
                if !sent.isEmpty && bytes + b.count > limit { continue }
                sent.append(SyncMessage.SentObject(w.kind, b))
                bytes += b.count
            }
        }
        return .objects(sent: sent, refused: refused)
    }
}

/// What one fetch brought.
public struct FetchSummary: Sendable, Equatable {
    public var objects = 0
    public var bytes: UInt64 = 0
}

extension SyncClient {
    /// Fetches what this store lacks of contribution `contribution`'s content (`kind` and
    /// `root`) in `d` from the peer, `window` requests in flight. Throws when the peer refuses
    /// an object this store needs or sends one it did not ask for; what arrived before stays.
    public func fetch(_ d: DatanetID, contribution: RecordID, kind: ObjectKind, root: ObjectID, into ledger: Ledger,
                      window: Int = 4, progress: ((FetchSummary) -> Void)? = nil) throws -> FetchSummary {
        var summary = FetchSummary()
        var queue = try Self.missing([SyncMessage.ObjectRef(kind, root)], in: ledger)
        var inFlight = [(id: UInt64, wanted: Set<SyncMessage.ObjectRef>)]()
        // Blobs and trees received, stored once what they name is here (children first).
        var parents = [(SyncMessage.ObjectRef, [UInt8])]()
        while !queue.isEmpty || !inFlight.isEmpty {
            while inFlight.count < max(1, window), !queue.isEmpty {
                let batch = Array(queue.prefix(SyncMessage.maximumFetch))
                queue.removeFirst(batch.count)
                inFlight.append((try request(.fetch(d, contribution: contribution, wanted: batch)), Set(batch)))
            }
            let (id, wanted) = inFlight.removeFirst()
            guard case .objects(let sent, let refused) = try answer(id).body else {
                throw SyncError.unexpected("a fetch was not answered with objects")
            }
            if let r = refused.first(where: { wanted.contains($0) }) {
                throw SyncError.refused(code: "missing", message: "the peer does not serve \(r.kind) \(r.id.hex) of contribution \(contribution.hex)")
            }
            var got = Set<SyncMessage.ObjectRef>(), chunks = [(ObjectID, [UInt8])](), children = [SyncMessage.ObjectRef]()
            for o in sent {
                let (oid, named) = try ObjectStore.validated(o.kind, o.bytes)
                let ref = SyncMessage.ObjectRef(o.kind, oid)
                guard wanted.contains(ref), got.insert(ref).inserted else {
                    throw SyncError.unexpected("the peer sent \(o.kind) \(oid.hex), which was not asked for")
                }
                if o.kind == .chunk { chunks.append((oid, o.bytes)) } else {
                    parents.append((ref, o.bytes))
                    children += named.map { SyncMessage.ObjectRef($0.0, $0.1) }
                }
                summary.objects += 1
                summary.bytes += UInt64(o.bytes.count)
            }
            if !chunks.isEmpty { try ledger.store.keep(chunks.map { (.chunk, $0.0, $0.1) }) }
            queue += wanted.subtracting(got).subtracting(refused)       // deferred by the answer's bound
            queue += try Self.missing(children, in: ledger).filter { c in !queue.contains(c) && !inFlight.contains { $0.wanted.contains(c) } }
            progress?(summary)
        }
        try ledger.store.keep(parents.reversed().map { ($0.0.kind, $0.0.id, $0.1) })
        return summary
    }

    /// Of `refs`, the objects this store lacks, and below blobs and trees it holds, what they
    /// name that it lacks (a fetch cut short resumes there).
    static func missing(_ refs: [SyncMessage.ObjectRef], in ledger: Ledger) throws -> [SyncMessage.ObjectRef] {
        var out = [SyncMessage.ObjectRef](), seen = Set<ObjectID>()
        var stack = refs
        while let r = stack.popLast() {
            guard seen.insert(r.id).inserted else { continue }
            switch r.kind {
            case .chunk:
                if try ledger.store.chunk(r.id) == nil { out.append(r) }
            case .blob:
                if let m = try ledger.store.blob(r.id) { stack += m.chunks.map { SyncMessage.ObjectRef(.chunk, $0.id) } } else { out.append(r) }
            case .tree:
                if let t = try ledger.store.tree(r.id) { stack += t.entries.map { SyncMessage.ObjectRef($0.kind, $0.id) } } else { out.append(r) }
            }
        }
        return out
    }
}

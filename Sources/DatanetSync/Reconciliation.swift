import DatanetCrypto
import DatanetLedger
import DatanetRecords
import DatanetStore

/// Reconciling a Datanet's pending records with a peer (schema/negentropy.md "In sync"): the
/// client drives Negentropy V1 rounds in `reconcile` messages, the server answers each from a
/// snapshot of its set; the client ends knowing the ids only it holds (to push) and those only
/// the peer holds (to pull). Traffic grows with the difference, not the set.
public enum Reconciliation {
    /// The frame-size limit each side's messages keep to (the protocol's 60 KiB default).
    public static let frameSizeLimit = 60 << 10
    /// Rounds a client runs before it gives up on a server that never converges (10,000,000
    /// items a side 1,000 apart take about 20).
    public static let maximumRounds = 1_000

    /// Which of a Datanet's pending records a side reconciles with a peer.
    public enum Scope: Equatable, Sendable {
        /// All of them (the peer may read the Datanet).
        case all
        /// Only those `key` signed (the peer may contribute to the Datanet but not read it, so
        /// no id of another's record reaches it).
        case signedBy(PublicKey)
    }

    /// What a reconciliation found and cost.
    public struct Outcome: Sendable {
        /// Records only this side holds, and those only the peer holds.
        public var have = [RecordID](), need = [RecordID]()
        public var rounds = 0
        /// Bytes of Negentropy messages sent and received.
        public var bytesSent = 0, bytesReceived = 0
        public init() {}
    }

    /// The scope in which `peer` reconciles `d` here, or nil when it may not (the Datanet is
    /// then answered as one this node does not hold).
    static func scope(_ ledger: Ledger, _ d: DatanetID, for peer: PublicKey) throws -> Scope? {
        guard let st = try? ledger.reader.state(of: d) else { return nil }
        if st.policy.mayRead(peer) { return .all }
        return st.policy.mayContribute(peer) ? .signedBy(peer) : nil
    }

    /// The server's answer to one message: read from the stored item tree in one transaction,
    /// or, for a scope of one signer's records, from those records alone — gathered by a scan
    /// of the queue once a session (`scoped` keeps them for the session's later rounds).
    static func answer(_ ledger: Ledger, _ d: DatanetID, _ message: [UInt8], scope: Scope,
                       scoped: inout [DatanetID: NegentropyItems]) throws -> [UInt8] {
        var have = [Digest](), need = [Digest]()
        switch scope {
        case .all:
            if let tree = ledger.pendingItemsTree(d) {
                return try ledger.store.env.read { txn in
                    var n = try Negentropy(StoredNegentropyItems(tree, in: txn), frameSizeLimit: frameSizeLimit)
                    return try n.reconcile(message, have: &have, need: &need) ?? []
                }
            }
            var n = try Negentropy(NegentropyItems(try ledger.pendingItems(d, signedBy: nil)), frameSizeLimit: frameSizeLimit)
            return try n.reconcile(message, have: &have, need: &need) ?? []
        case .signedBy(let key):
            if scoped[d] == nil { scoped[d] = NegentropyItems(try ledger.pendingItems(d, signedBy: key)) }
            var n = try Negentropy(scoped[d]!, frameSizeLimit: frameSizeLimit)
            return try n.reconcile(message, have: &have, need: &need) ?? []
        }
    }
}

extension SyncClient {
    /// Reconciles `d`'s pending records (those `author` signed, when given: a Datanet this
    /// identity may contribute to but not read) with the peer, in as many rounds as the
    /// difference needs. Ids in this store's refused set are never reported as needed.
    public func reconcile(_ d: DatanetID, in ledger: Ledger, signedBy author: PublicKey? = nil,
                          frameSizeLimit: Int = Reconciliation.frameSizeLimit) throws -> Reconciliation.Outcome {
        var outcome = Reconciliation.Outcome()
        var have = [Digest](), need = [Digest]()
        func exchange(_ message: [UInt8]) throws -> [UInt8] {
            guard outcome.rounds < Reconciliation.maximumRounds else {
                throw SyncError.unexpected("reconciling \(d.hex) did not end within \(Reconciliation.maximumRounds) rounds")
            }
            let id = try request(.reconcile(d, message))
            guard case .reconcile(let echoed, let reply) = try answer(id).body, echoed == d else {
                throw SyncError.unexpected("reconcile was not answered with reconcile of the same Datanet")
            }
            outcome.rounds += 1
            outcome.bytesSent += message.count
            outcome.bytesReceived += reply.count
            return reply
        }
        if author == nil, let tree = ledger.pendingItemsTree(d) {
            // One read transaction a round, none held across the network.
            var n: Negentropy<StoredNegentropyItems>?
            var message: [UInt8]? = try ledger.store.env.read { txn in
                n = try Negentropy(StoredNegentropyItems(tree, in: txn), frameSizeLimit: frameSizeLimit)
                return try n!.initiate()
            }
            while let m = message {
                let reply = try exchange(m)
                message = try ledger.store.env.read { txn in
                    n!.items = StoredNegentropyItems(tree, in: txn)
                    return try n!.reconcile(reply, have: &have, need: &need)
                }
            }
        } else {
            var n = try Negentropy(NegentropyItems(try ledger.pendingItems(d, signedBy: author)), frameSizeLimit: frameSizeLimit)
            var message: [UInt8]? = try n.initiate()
            while let m = message { message = try n.reconcile(try exchange(m), have: &have, need: &need) }
        }
        // Each id once, in the order found (a lying server could repeat them).
        var seen = Set<Digest>()
        outcome.have = have.filter { seen.insert($0).inserted }.map(RecordID.init)
        let needed = need.filter { seen.insert($0).inserted }.map(RecordID.init)
        let refused = try ledger.reader.refusedRecords(among: needed)
        outcome.need = needed.filter { !refused.contains($0) }
        return outcome
    }
}

/// What one Datanet's exchange with a peer moved (`SyncClient.exchange`).
public struct DatanetExchange: Sendable {
    public var reconciled = Reconciliation.Outcome()
    /// The pull's import summary and bytes received (nil: no pull).
    public var pulled: (summary: BundleSummary, bytes: UInt64)?
    /// What the peer took of the push (nil: nothing needed pushing, or no push).
    public var pushed: (leaves: UInt64, records: UInt64, bytes: UInt64)?
    /// The content fetched after the pull, which its records-only batches left out (nil: none).
    public var fetched: FetchSummary?
    /// Why some of that content could not be fetched (the rest stays; `datanet fetch` tries again).
    public var fetchError: String?
}

extension SyncClient {
    /// Syncs `d`, which the peer listed at `peerSize`, as `datanet sync` does: reconciles the
    /// pending records (unless this store holds none: then it asks for all), pulls the leaves
    /// past this log and the records it lacks, then pushes what the peer lacks — leaves, the
    /// records only this side holds, and those gathering signatures the peer holds otherwise —
    /// only when there is any.
    /// A pull that asked for content but got batches without it (version 4: the server leaves
    /// large content to windows) fetches that content before the push.
    public func exchange(_ d: DatanetID, peerSize: UInt64, in ledger: Ledger, pull: Bool = true, push: Bool = true, recordsOnly: Bool = false,
                         pullProgress: (@Sendable (_ done: UInt64, _ total: UInt64) -> Void)? = nil,
                         fetchProgress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil,
                         pushProgress: ((_ done: UInt64, _ total: UInt64) -> Void)? = nil) throws -> DatanetExchange {
        var out = DatanetExchange()
        let holds = (try? ledger.reader.state(of: d)) != nil
        let pendingHere = holds ? try ledger.reader.pendingCount(d) : 0
        if pendingHere > 0 { out.reconciled = try reconcile(d, in: ledger) }
        var peerHolds: Set<PendingMark>?
        if pull {
            let size = (try? ledger.reader.state(of: d))?.size ?? 0
            let (summary, bytes, theirs) = try self.pull(d, since: min(size, peerSize), recordsOnly: recordsOnly, wanted: out.reconciled.need,
                                                         allPending: pendingHere == 0, into: ledger, progress: pullProgress)
            out.pulled = (summary, bytes)
            peerHolds = Set(theirs)
            if !recordsOnly, !summary.withoutContent.isEmpty {
                // Content the peer would not give is reported, and the push goes on (what did
                // arrive stays); an error that leaves the session out of step ends it, as any does.
                let got = try fetchLeftOut(d, ranges: summary.withoutContent, into: ledger, progress: fetchProgress)
                out.fetched = got.summary
                if let (c, e) = got.failed.first {
                    out.fetchError = "the content of \(got.failed.count) contribution(s) could not be fetched (\(c.hex.prefix(16)): \(e))"
                }
            }
        }
        guard push, let held = try? ledger.reader.state(of: d) else { return out }
        let unlike = try ledger.reader.gatheringMarks(d).contains { !(peerHolds?.contains($0) ?? false) }
        if held.size > peerSize || !out.reconciled.have.isEmpty || unlike {
            out.pushed = try self.push(d, since: min(held.size, peerSize), recordsOnly: recordsOnly, have: out.reconciled.have, from: ledger,
                                       progress: pushProgress)
        }
        return out
    }
}

import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// Node-local expiry of pending records (schema/negentropy.md "Expiry"): a contribution whose
/// signed created-at is older than the node's maximum age is dropped, and so are reviews,
/// policy proposals and tombstones made moot; their ids are kept in the `refused` table, so
/// reconciliation never asks for them again and an import passes them over.
extension Ledger {
    /// How old a pending contribution may grow before it is dropped, unless a command says
    /// otherwise (`--proposal-max-age`): 30 days, in milliseconds (created-at is Unix ms).
    public static let defaultProposalMaxAge: UInt64 = 30 * 86_400_000
    /// Clock skew allowed between the contributor who signed a created-at and this node: 10
    /// minutes, in milliseconds.
    public static let clockSkew: UInt64 = 600_000

    /// What an expiry pass took out of pending.
    public struct ExpiryReport: Sendable, Equatable {
        /// Contributions past the maximum age (now in the refused set).
        public var contributions = 0
        /// Reviews every contribution of which is decided or refused here.
        public var reviews = 0
        /// Policy changes and handoffs naming a policy the log has since moved past.
        public var policies = 0
        /// Tombstones whose contribution is already withdrawn, or refused here.
        public var tombstones = 0
        public var total: Int { contributions + reviews + policies + tombstones }
        public init() {}
    }

    /// Whether a contribution created at `createdAt` is past `maxAge` at `now` (with the
    /// allowed clock skew; no sum overflows). A created-at more than `maxAge` ahead of `now`
    /// counts as expired too: it could otherwise never expire.
    public static func isExpired(createdAt: UInt64, maxAge: UInt64, now: UInt64) -> Bool {
        guard now > createdAt else { return createdAt - now > maxAge && createdAt - now - maxAge > clockSkew }
        let age = now - createdAt
        return age > maxAge && age - maxAge > clockSkew
    }

    /// Takes out of `d`'s pending what is expired or moot at `now` (Unix milliseconds, as
    /// created-at is): judged
    /// in a read transaction, then taken out in one write transaction only when there is any.
    @discardableResult
    public func expirePending(_ d: DatanetID, maxAge: UInt64 = defaultProposalMaxAge, now: UInt64) throws -> ExpiryReport {
        var report = ExpiryReport()
        let (expired, moot) = try env.read { txn -> ([(key: [UInt8], id: RecordID)], [(key: [UInt8], id: RecordID)]) in
            let st = try state(txn, d)
            var expired = [(key: [UInt8], id: RecordID)](), others = [(key: [UInt8], id: RecordID, record: Record)]()
            try txn.scanNumbered(pending, d) { n, v in
                let key = BigEndian.key(d, n)
                let (id, bytes) = try pendingRecord(txn, v, key: key)
                guard let bytes, let record = try? Record(Envelope(encoded: bytes)) else { return true }
                if case .contribution(let c) = record {
                    if Self.isExpired(createdAt: c.createdAt, maxAge: maxAge, now: now) { expired.append((key, id)) }
                } else {
                    others.append((key, id, record))
                }
                return true
            }
            // Judged as if the contributions above were already refused.
            let leaving = Set(expired.map(\.id))
            let refusedHere = { (id: RecordID) throws -> Bool in try leaving.contains(id) || self.refused.map { try txn.contains($0, id) } ?? false }
            var moot = [(key: [UInt8], id: RecordID)]()
            for (key, id, record) in others {
                switch record {
                case .review(let r) where try r.contributions.allSatisfy({ try decision(txn, $0) != nil || refusedHere($0) }):
                    report.reviews += 1
                case .policy(let p) where try superseded(txn, p.previous, st):
                    report.policies += 1
                case .setSequencer(let h) where try superseded(txn, h.previous, st):
                    report.policies += 1
                case .tombstone(let t) where try tombstone(txn, t.contribution) != nil || refusedHere(t.contribution):
                    report.tombstones += 1
                default:
                    continue
                }
                moot.append((key, id))
            }
            report.contributions = expired.count
            return (expired, moot)
        }
        guard report.total > 0 else { return report }
        // Judged in the read above; taken out (and refused, so no peer hands them back) only if
        // still pending now. Counts are of what was judged.
        try env.write { txn in
            var leaving = [TimestampedID]()
            for (key, id) in expired + moot {
                guard let item = try takePending(txn, key) else { continue }
                leaving.append(item)
                if let refused { try txn.put(refused, id, BigEndian.bytes(now)) }
            }
            try dropPendingItems(txn, d, leaving)
        }
        return report
    }

    /// A policy record naming `previous` can no longer be sequenced: that policy is in this
    /// log but no longer in force (one naming a policy this store has not seen yet may be ahead
    /// of it, and stays).
    private func superseded(_ txn: Transaction, _ previous: RecordID, _ st: DatanetState) throws -> Bool {
        guard previous != st.policyRecord else { return false }
        return try previous == st.id.genesis || txn.contains(placed, previous)
    }
}

extension LedgerReader {
    /// Which of `ids` this store refused for good (expired contributions).
    public func refusedRecords(among ids: [RecordID]) throws -> Set<RecordID> {
        guard let table = ledger.refused, !ids.isEmpty else { return [] }
        return try ledger.env.read { txn in try Set(ids.filter { try txn.contains(table, $0) }) }
    }
}

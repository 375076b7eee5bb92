import DatanetCBOR
import DatanetCrypto
import DatanetStore

/// How reviews decide a contribution (schema/curation.md, where each rule is a table row):
/// - only reviews by curators in force when the decision is sequenced count;
/// - a curator's latest review (in the order this sequencer first saw them) replaces its
///   earlier ones;
/// - accepted when distinct accepting curators reach the quorum;
/// - rejected when so many reject that the quorum can no longer be reached
///   (rejects > curators − quorum): with quorum = all curators, one reject decides;
/// - otherwise still undecided.
public enum Curation {
    /// The outcome for one contribution given the counted verdicts (curator → accept?).
    public static func outcome(verdicts: [PublicKey: Bool], curators: Int, quorum: UInt64) -> Bool? {
        let accepts = verdicts.values.filter { $0 }.count
        return outcome(accepts: accepts, rejects: verdicts.count - accepts, curators: curators, quorum: quorum)
    }

    /// The outcome given the numbers of distinct counted curators accepting and rejecting.
    public static func outcome(accepts: Int, rejects: Int, curators: Int, quorum: UInt64) -> Bool? {
        if UInt64(accepts) >= quorum { return true }
        if rejects > curators - Int(quorum) { return false }
        return nil
    }
}

/// One decision a sequencing run will append.
struct PlannedDecision {
    /// `author` is the author's key bytes, kept as a Digest for cheap hashing.
    let contribution: Digest, intakeIndex: UInt64, size: UInt64, author: Digest, accepted: Bool
    /// The counted reviews on the winning side (indexes into the run's reviews), in id order.
    let reviews: [Int]
}

extension SequenceRun {
    /// The decisions the pending reviews settle under the policy now in force, in intake order.
    func decisionPlan(_ txn: Transaction) throws -> [PlannedDecision] {
        guard let policy = st?.policy else { return [] }
        let curators = Set(policy.curators)
        // (contribution, review) pairs for counted curators, sorted by contribution id so the
        // `placed` lookups below walk that table in key order, then by the order first seen.
        var pairs = [(contribution: Digest, review: Int)]()
        pairs.reserveCapacity(reviews.count)
        for (i, r) in reviews.enumerated() where curators.contains(r.reviewer) {
            for c in r.contributions { pairs.append((c, i)) }
        }
        pairs.sort { $0.contribution != $1.contribution ? $0.contribution < $1.contribution : $0.review < $1.review }
        var candidates = [(contribution: Digest, intake: UInt64, reviews: ArraySlice<(contribution: Digest, review: Int)>)]()
        var start = 0
        while start < pairs.count {
            let c = pairs[start].contribution
            var end = start + 1
            while end < pairs.count && pairs[end].contribution == c { end += 1 }
            if let (datanet, intake) = try ledger.placement(txn, c), datanet == d { candidates.append((c, intake, pairs[start..<end])) }
            start = end
        }
        candidates.sort { $0.intake < $1.intake }
        var plan = [PlannedDecision]()
        plan.reserveCapacity(candidates.count)
        for (c, intake, list) in candidates {
            guard let (size, author) = try txn.withValue(ledger.undecided, Ledger.key(d, intake), { v in
                (Ledger.u64(v, at: 32), Digest(UnsafeRawBufferPointer(rebasing: v[40..<72]))!)
            }) else { continue } // decided before
            // Each curator's latest review replaces its earlier ones.
            var latest = [(reviewer: PublicKey, accept: Bool, review: Int)]()
            for (_, i) in list {
                let r = reviews[i]
                if let at = latest.firstIndex(where: { $0.reviewer == r.reviewer }) { latest[at] = (r.reviewer, r.accept, i) }
                else { latest.append((r.reviewer, r.accept, i)) }
            }
            let accepts = latest.count { $0.accept }
            guard let accepted = Curation.outcome(accepts: accepts, rejects: latest.count - accepts,
                                                  curators: policy.curators.count, quorum: policy.quorum) else { continue }
            let counted = latest.filter { $0.accept == accepted }.map(\.review).sorted { reviewIDs[$0] < reviewIDs[$1] }
            plan.append(PlannedDecision(contribution: c, intakeIndex: intake, size: size, author: author,
                                        accepted: accepted, reviews: counted))
        }
        decidedNow.reserveCapacity(plan.count)
        return plan
    }

    /// Appends the decision leaves of a slice of the plan (each with its counted reviews as
    /// signed), built and hashed on every core, and updates the indexes and the quotas.
    func decide(_ txn: Transaction, _ plan: ArraySlice<PlannedDecision>) throws {
        guard let state = st else { return }
        let cite = (state.policyIndex, state.policyLeafHash)
        let leaves = try Parallel.map(Array(plan)) { p -> (encoded: [UInt8], hash: Digest) in
            let bytes = Leaf.decisionEncoding(datanet: d, policy: cite, contribution: p.contribution, intake: p.intakeIndex,
                                              accepted: p.accepted, reason: Self.reason(p), reviews: p.reviews.map { reviewBytes[$0] })
            return (bytes, Merkle.leafHash(bytes))
        }
        let first = state.size
        try ledger.appendLeaves(txn, leaves, at: first, table: self.leaves, log: log)
        st!.size += UInt64(leaves.count)
        appended += leaves.count
        var quotas = [Digest: (count: UInt64, bytes: UInt64)]()
        for (i, p) in plan.enumerated() {
            let index = first + UInt64(i)
            try txn.delete(ledger.undecided, Ledger.key(d, p.intakeIndex))
            try txn.put(ledger.decided, Ledger.key(d, p.intakeIndex), Ledger.u64Bytes(index))
            var q = try quotas[p.author] ?? txn.withValue(ledger.meta, d.bytes + p.author.bytes) { (Ledger.u64($0), Ledger.u64($0, at: 8)) } ?? (0, 0)
            q.count -= min(1, q.count)
            q.bytes -= min(p.size, q.bytes)
            quotas[p.author] = q
            decidedNow.insert(p.contribution)
            report.decisions.append((p.contribution, index, p.accepted, Self.reason(p)))
        }
        for (author, q) in quotas { try txn.put(ledger.meta, d.bytes + author.bytes, Ledger.u64Bytes(q.count) + Ledger.u64Bytes(q.bytes)) }
    }

    static func reason(_ p: PlannedDecision) -> String {
        p.accepted ? "accepted by \(p.reviews.count) curator(s)" : "rejected by \(p.reviews.count) curator(s)"
    }

    /// The pending keys of reviews whose contributions are now all decided: they leave pending.
    func settledReviews(_ txn: Transaction) throws -> [[UInt8]] {
        var keys = [[UInt8]]()
        for (i, r) in reviews.enumerated() where try r.contributions.allSatisfy({ try decidedNow.contains($0) || ledger.decision(txn, $0) != nil }) {
            keys.append(reviewKeys[i])
        }
        return keys
    }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

// How reviews decide a contribution (schema/curation.md): only reviews by curators in force
// when the decision is sequenced count; of one curator's reviews the latest (`Review.isLater`:
// created-at, then record id) replaces the others; the counts decide by `PolicyState.outcome`.

/// One decision a sequencing run will append.
struct PlannedDecision {
    let contribution: RecordID, intakeIndex: UInt64, accepted: Bool
    /// The counted reviews on the winning side, in id order: `plannedReviews[reviewStart..<reviewEnd]`
    /// of the run (indexes into its reviews).
    let reviewStart: Int, reviewEnd: Int

    var reviewCount: Int { reviewEnd - reviewStart }
}

extension SequenceRun {
    /// The decisions the pending reviews settle under the policy now in force, in intake order.
    func decisionPlan(_ txn: Transaction) throws -> [PlannedDecision] {
        guard let policy = st?.policy else { return [] }
        let curators = Set(policy.curators.map(KeyID.init))
        // (contribution, review) pairs for counted curators, sorted by contribution id so the
        // `placed` lookups below walk that table in key order, then from earliest to latest review.
        var pairs = [(contribution: RecordID, review: Int)]()
        pairs.reserveCapacity(reviews.contributions.count)
        for i in 0..<reviews.count where curators.contains(reviews.reviewers[i]) {
            for c in reviews.named(i) { pairs.append((c, i)) }
        }
        func made(_ r: Int) -> (createdAt: UInt64, id: RecordID) { (reviews.createdAt[r], queue.ids[reviews.entries[r]]) }
        pairs.sort { $0.contribution != $1.contribution ? $0.contribution < $1.contribution : Review.isLater(made($1.review), than: made($0.review)) }
        var candidates = [(intake: UInt64, start: Int, end: Int)]()
        try txn.withCursor(ledger.placed) { placed in
            var start = 0
            while start < pairs.count {
                let c = pairs[start].contribution
                var end = start + 1
                while end < pairs.count && pairs[end].contribution == c { end += 1 }
                let intake = try placed.withValue(c) { v -> UInt64? in
                    v.count == 40 && DatanetID(UnsafeRawBufferPointer(rebasing: v[0..<32])) == d ? BigEndian.u64(v, at: 32) : nil
                }
                if let intake = intake ?? nil { candidates.append((intake, start, end)) }
                start = end
            }
        }
        candidates.sort { $0.intake < $1.intake }
        var plan = [PlannedDecision]()
        plan.reserveCapacity(candidates.count)
        plannedReviews.reserveCapacity(candidates.count)
        settledNamings = [Int32](repeating: 0, count: reviews.count)
        try txn.withCursor(ledger.undecided) { undecided in
            for (intake, start, end) in candidates {
                // Present until decided; the value's shape is checked as the index reads it.
                guard try undecided.withValue(DigestNumberKey(d, intake), { v in
                    _ = try ledger.index.undecided(v, d, intake)
                }) != nil else { continue } // decided before
                // Each curator's latest review replaces its earlier ones: walk from the latest
                // and count a reviewer the first time it is met.
                let first = plannedReviews.count
                var accepts = 0, rejects = 0
                var met = Set<KeyID>() // only for long lists; short ones are searched in place
                for j in stride(from: end - 1, through: start, by: -1) {
                    let r = pairs[j].review
                    if end - start > 16 {
                        if !met.insert(reviews.reviewers[r]).inserted { continue }
                    } else if pairs[(j + 1)..<end].contains(where: { reviews.reviewers[$0.review] == reviews.reviewers[r] }) {
                        continue
                    }
                    if reviews.accepts[r] { accepts += 1 } else { rejects += 1 }
                    plannedReviews.append(r)
                }
                guard let accepted = policy.outcome(accepts: accepts, rejects: rejects) else {
                    plannedReviews.removeSubrange(first...)
                    continue
                }
                // Keep the winning side, in review id order.
                var kept = first
                for k in first..<plannedReviews.count where reviews.accepts[plannedReviews[k]] == accepted {
                    plannedReviews[kept] = plannedReviews[k]
                    kept += 1
                }
                plannedReviews.removeLast(plannedReviews.count - kept)
                if kept - first > 1 { plannedReviews[first...].sort { queue.ids[reviews.entries[$0]] < queue.ids[reviews.entries[$1]] } }
                for j in start..<end { settledNamings[pairs[j].review] += 1 }
                plan.append(PlannedDecision(contribution: pairs[start].contribution, intakeIndex: intake,
                                            accepted: accepted, reviewStart: first, reviewEnd: plannedReviews.count))
            }
        }
        report.decisions.reserveCapacity(report.decisions.count + plan.count)
        // Reviews sequenced by an earlier run are cited where they are.
        reviewLeaf = [UInt64](repeating: .max, count: reviews.count)
        var looked = [Bool](repeating: false, count: reviews.count)
        for r in plannedReviews where !looked[r] {
            looked[r] = true
            let id = queue.ids[reviews.entries[r]]
            guard let p = try ledger.index.placement(txn, id) else { continue }
            guard p.datanet == d, p.index < st!.size else {
                throw LedgerError.corruptEntry(table: "placed", key: id.hex, why: "the review is placed at \(p.datanet.hex) leaf \(p.index), outside this log")
            }
            reviewLeaf[r] = p.index
        }
        return plan
    }

    /// Splits the plan into transactions of at most `limit` leaves (at least one decision each)
    /// and gives each counted review that no earlier run sequenced its leaf: in the transaction
    /// of the first decision citing it, before that transaction's decisions. Returns, per
    /// slice, its decisions and the reviews whose leaves it appends.
    func reviewLeafPlan(_ plan: [PlannedDecision]) -> [(decisions: ArraySlice<PlannedDecision>, newReviews: [Int])] {
        var next = st?.size ?? 0
        var out = [(decisions: ArraySlice<PlannedDecision>, newReviews: [Int])]()
        var start = 0
        while start < plan.count {
            var end = start
            var fresh = [Int]()
            while end < plan.count {
                let p = plan[end]
                var needed = [Int]()
                for r in plannedReviews[p.reviewStart..<p.reviewEnd] where reviewLeaf[r] == .max && !needed.contains(r) { needed.append(r) }
                guard end == start || fresh.count + needed.count + (end - start) + 1 <= limit else { break }
                for r in needed {
                    reviewLeaf[r] = next + UInt64(fresh.count)
                    fresh.append(r)
                }
                end += 1
            }
            next += UInt64(fresh.count + end - start)
            out.append((plan[start..<end], fresh))
            start = end
        }
        return out
    }

    /// What building decision leaves reads, copied out of the run so that building can go on
    /// on other threads while the run writes.
    struct LeafInputs: @unchecked Sendable {
        let datanet: DatanetID, cite: (index: UInt64, hash: Digest)
        let queue: PendingQueue, reviews: PendingReviews, plannedReviews: [Int], reviewLeaf: [UInt64]

        /// The leaves of one slice of the plan, encoded and hashed on every core: first a review
        /// leaf for each of `newReviews` (its envelope as stored), then the decisions, each
        /// citing the leaves of its counted reviews.
        func leaves(_ plan: ArraySlice<PlannedDecision>, newReviews: [Int]) throws -> [(encoded: [UInt8], hash: Digest)] {
            let reviewLeaves = try queue.bytes.withUnsafeBytes { all in
                try Parallel.map(newReviews) { r -> (encoded: [UInt8], hash: Digest) in
                    let bytes = Leaf.reviewEncoding(datanet: datanet, policy: cite,
                                                    review: UnsafeRawBufferPointer(rebasing: all[queue.range(reviews.entries[r])]))
                    return (bytes, Merkle.leafHash(bytes))
                }
            }
            return reviewLeaves + (try Parallel.map(Array(plan)) { p -> (encoded: [UInt8], hash: Digest) in
                var cited = plannedReviews[p.reviewStart..<p.reviewEnd].map { reviewLeaf[$0] }
                cited.sort()
                let bytes = Leaf.decisionEncoding(datanet: datanet, policy: cite, contribution: p.contribution, intake: p.intakeIndex,
                                                  accepted: p.accepted, reason: SequenceRun.reason(p), reviews: cited)
                return (bytes, Merkle.leafHash(bytes))
            })
        }
    }

    /// The inputs of decision leaves under the policy now in force (after `reviewLeafPlan`).
    var leafInputs: LeafInputs? {
        st.map { LeafInputs(datanet: d, cite: ($0.policyIndex, $0.policyLeafHash), queue: queue, reviews: reviews,
                            plannedReviews: plannedReviews, reviewLeaf: reviewLeaf) }
    }

    /// Appends a slice's leaves (built by `leaves`: its new review leaves, then its decisions)
    /// and updates the indexes and the quotas.
    func decide(_ txn: Transaction, _ plan: ArraySlice<PlannedDecision>, newReviews: [Int], leaves: [(encoded: [UInt8], hash: Digest)]) throws {
        guard let state = st else { return }
        let first = state.size
        try ledger.appendLeaves(txn, leaves, at: first, table: self.leaves, log: log)
        st!.size += UInt64(leaves.count)
        appended += leaves.count
        let reviewEffects = newReviews.map { LeafEffect.review(queue.ids[reviews.entries[$0]], nil) }
        // Plan slices ascend by intake index: the index's walks stay on their current page.
        try ledger.index.apply(txn, d, first: first, recordsHeld: true, reviewEffects + plan.map { .decision(intake: $0.intakeIndex, accepted: $0.accepted, reviews: []) })
        let firstDecision = first + UInt64(newReviews.count)
        for (i, p) in plan.enumerated() { report.decisions.append((p.contribution, firstDecision + UInt64(i), p.accepted, reasons.text(p))) }
    }

    static func reason(_ p: PlannedDecision) -> String {
        p.accepted ? "accepted by \(p.reviewCount) curator(s)" : "rejected by \(p.reviewCount) curator(s)"
    }

    /// The queue entries of reviews whose contributions are now all decided: they leave
    /// pending. Run after the decisions are committed; a review whose every contribution the
    /// plan decided is known settled without a lookup.
    func settledReviews(_ txn: Transaction) throws -> [Int] {
        var entries = [Int]()
        for i in 0..<reviews.count {
            let named = reviews.named(i)
            if try Int(settledNamings[i]) == named.count || named.allSatisfy({ try ledger.decision(txn, $0) != nil }) {
                entries.append(reviews.entries[i])
            }
        }
        return entries
    }
}

/// Decision reasons made once per (verdict, count) and shared by the report's entries.
struct DecisionReasons {
    private var made = [Int: String]()

    mutating func text(_ p: PlannedDecision) -> String {
        let key = p.accepted ? p.reviewCount : -1 - p.reviewCount
        if let s = made[key] { return s }
        let s = SequenceRun.reason(p)
        made[key] = s
        return s
    }
}

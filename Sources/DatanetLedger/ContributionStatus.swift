import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What became of one contribution, as this store knows it (`datanet status`).
public struct ContributionStatus: Sendable {
    public enum State: String, Sendable {
        case queued, awaitingReview = "awaiting-review", accepted, rejected, withdrawn, takenDown = "taken-down"
    }

    /// A curator's review as it counts: the counted ones of a decision, or each curator's
    /// latest pending one while undecided.
    public struct Verdict: Sendable, Equatable {
        public let reviewer: PublicKey, accept: Bool, reason: String
    }

    public let id: RecordID
    public let contribution: Contribution
    public internal(set) var state: State
    /// The intake leaf, once taken in.
    public internal(set) var intake: UInt64?
    public internal(set) var decision: UInt64?
    public internal(set) var tombstone: UInt64?
    /// The decision's reason ("accepted by 2 curator(s)", "duplicate of …"), or a tombstone's.
    public internal(set) var reason: String?
    public internal(set) var reviews: [Verdict] = []
    /// While awaiting review: accepts still needed for the quorum in force.
    public internal(set) var acceptsNeeded: Int?
    /// Its sidecar (label, file name), when held here.
    public internal(set) var sidecar: Sidecar?
}

extension LedgerReader {
    /// Every contribution of `d` this store knows, in intake order, then the ones queued here:
    /// its state, leaves, the reviews that decided it or count so far, and the reason.
    public func statuses(_ d: DatanetID) throws -> [ContributionStatus] {
        let st = try state(of: d)
        let fromRows = try statusesFromRows(d, below: st.size)
        var rows = try fromRows ?? statusesFromLeaves(d, size: st.size)
        // Rows read their sidecars in their workers: only the others are looked up below.
        let looked = fromRows?.count ?? 0
        // Pending here: contributions queued, and reviews not yet counted (each curator's latest).
        let pending = try pendingRecords(d)
        var known = Set<RecordID>()
        if pending.contains(where: { $0.kind == .contribution }) { known = Set(rows.map(\.id)) }
        for e in pending where !known.contains(e.id) {
            if case .contribution(let c)? = try? Record(e) {
                known.insert(e.id)
                rows.append(ContributionStatus(id: e.id, contribution: c, state: .queued))
            }
        }
        let latest = Self.latestReviews(pending, policy: st.policy)
        for k in rows.indices where rows[k].state == .awaitingReview || rows[k].state == .queued {
            rows[k].countSoFar(latest[rows[k].id] ?? [], policy: st.policy)
        }
        try withSidecars(&rows, from: looked)
        return rows
    }

    /// Reads the sidecars of `rows` from position `from` on (statuses read from the leaves or
    /// the queue).
    private func withSidecars(_ rows: inout [ContributionStatus], from: Int = 0) throws {
        let missing = rows.indices.dropFirst(from).filter { rows[$0].sidecar == nil }
        guard !missing.isEmpty else { return }
        for (k, side) in zip(missing, try sidecars(of: missing.map { rows[$0].contribution })) { rows[k].sidecar = side }
    }

    /// The statuses of the contributions taken in, from their rows (nil in a store without
    /// them): a block at a time on the other cores, each reading its decision and tombstone
    /// leaves; the reviews decisions cite are read once here.
    func statusesFromRows(_ d: DatanetID, below end: UInt64) throws -> [ContributionStatus]? {
        let table = try ledger.leafTable(d), sidecars = ledger.sidecars
        typealias Taken = (status: ContributionStatus, decision: Leaf.Decision?, tombstone: (UInt64, Leaf.Tombstone)?)
        var out = [ContributionStatus]()
        out.reserveCapacity(Int(min(end / 2 + 16, 1 << 22)))
        var reviews = [UInt64: Review?]()
        var last: (cited: [UInt64], verdicts: [ContributionStatus.Verdict])?
        func review(_ i: UInt64) throws -> Review? {
            if let r = reviews[i] { return r }
            let r = try ledger.env.read { txn in try table.leaf(txn, i)?.review.flatMap(ContributionStatus.review) }
            reviews[i] = r
            return r
        }
        let held = try forEachRowBlock(d, below: end, { txn, rows -> [Taken] in
            try rows.map { r in
                var s = ContributionStatus(id: r.id, contribution: r.contribution, state: .awaitingReview, intake: r.intake)
                s.decision = r.decision
                s.sidecar = try Ledger.sidecar(txn, sidecars, r.contribution.sidecar)
                var dec: Leaf.Decision?
                if let i = r.decision {
                    dec = try table.withSummary(txn, i)?.decision
                    guard dec?.intake == r.intake else {
                        throw LedgerError.corruptEntry(table: "contribution-rows", key: Hex.encode(BigEndian.key(d, r.intake)),
                                                       why: "its decision leaf \(i) is not a decision of that intake")
                    }
                }
                let t = try r.tombstone.flatMap { i in try table.leaf(txn, i)?.tombstone.map { (i, $0) } }
                return (s, dec, t)
            }
        }, consume: { block in
            for var x in block {
                if let dec = x.decision {
                    // Decisions made together cite the same reviews: their verdicts are made once.
                    if case .cited(let cited) = dec.reviews, let last, last.cited == cited {
                        x.status.decided(dec, at: x.status.decision!, verdicts: last.verdicts)
                    } else {
                        let verdicts = try ContributionStatus.verdicts(dec, reviewAt: review)
                        if case .cited(let cited) = dec.reviews { last = (cited, verdicts) }
                        x.status.decided(dec, at: x.status.decision!, verdicts: verdicts)
                    }
                }
                if let (i, t) = x.tombstone, case .tombstone(let rec)? = try? Record(t.record) {
                    (x.status.state, x.status.tombstone, x.status.reason) = (rec.takedown ? .takenDown : .withdrawn, i, rec.reason)
                }
                out.append(x.status)
            }
        })
        return held ? out : nil
    }

    /// The statuses of the contributions taken in, from the leaves alone (a store without rows).
    func statusesFromLeaves(_ d: DatanetID, size: UInt64) throws -> [ContributionStatus] {
        var rows = [ContributionStatus]()
        rows.reserveCapacity(Int(min(size / 2 + 16, 1 << 22)))
        // Rows are appended in intake order, so a decision or tombstone finds its row by the
        // intake index it names (checked against the contribution id): no table of ids.
        func row(_ intake: UInt64, _ id: RecordID) -> Int? {
            rows.position(of: intake) { $0.intake ?? 0 }.flatMap { rows[$0].id == id ? $0 : nil }
        }
        var reviewLeaves = [UInt64: Review]()
        try forEachLeafSummary(d, to: size) { index, summary in
            let leaf: Leaf
            switch summary {
            case .intake(_, let record, let c):
                rows.append(ContributionStatus(id: record, contribution: c, state: .awaitingReview, intake: index))
                return true
            case .decision(let dec):
                if let k = row(dec.intake, dec.contribution) { rows[k].decided(dec, at: index) { reviewLeaves[$0] } }
                return true
            case .other(let l):
                leaf = l
            }
            switch leaf.payload {
            case .review(let e):
                reviewLeaves[index] = ContributionStatus.review(e)
            case .decision(let dec):
                if let k = row(dec.intake, dec.contribution) { rows[k].decided(dec, at: index) { reviewLeaves[$0] } }
            case .tombstone(let t):
                guard let k = row(t.intake, t.contribution), case .tombstone(let rec)? = try? Record(t.record) else { return true }
                (rows[k].state, rows[k].tombstone, rows[k].reason) = (rec.takedown ? .takenDown : .withdrawn, index, rec.reason)
            case .intake, .policy, .setSequencer, .continuation:
                break
            }
            return true
        }
        return rows
    }

    /// The contributions of `d` still open — taken in and undecided (intake order), then queued
    /// here — with the reviews counted so far, read from the undecided index and the queue
    /// instead of the whole log: what `status --to-review` lists, at any log length.
    public func openStatuses(_ d: DatanetID) throws -> [ContributionStatus] {
        let st = try state(of: d)
        var rows = [ContributionStatus]()
        for u in try undecidedContributions(d) {
            guard let e = try record(u.id), case .contribution(let c)? = try? Record(e) else { continue }
            rows.append(ContributionStatus(id: u.id, contribution: c, state: .awaitingReview, intake: u.intake))
        }
        var known = Set(rows.map(\.id))
        let pending = try pendingRecords(d)
        for e in pending where !known.contains(e.id) {
            if case .contribution(let c)? = try? Record(e) {
                rows.append(ContributionStatus(id: e.id, contribution: c, state: .queued))
                known.insert(e.id)
            }
        }
        let latest = Self.latestReviews(pending, policy: st.policy)
        for k in rows.indices { rows[k].countSoFar(latest[rows[k].id] ?? [], policy: st.policy) }
        try withSidecars(&rows)
        return rows
    }

    /// One contribution's status (nil when this store knows no such contribution), without
    /// reading the whole log.
    public func status(of id: RecordID) throws -> ContributionStatus? {
        guard let e = try record(id), case .contribution(let c) = try Record(e) else { return nil }
        guard let (d, intake) = try placement(id) else {
            let st = try state(of: c.datanet)
            var row = ContributionStatus(id: id, contribution: c, state: .queued)
            row.countSoFar(Self.latestReviews(try pendingRecords(c.datanet), policy: st.policy)[id] ?? [], policy: st.policy)
            row.sidecar = try sidecar(of: c)
            return row
        }
        let table = try ledger.leafTable(d)
        var row = ContributionStatus(id: id, contribution: c, state: .awaitingReview, intake: intake)
        try ledger.env.read { txn in
            if let i = try ledger.decision(txn, id), let dec = try table.leaf(txn, i)?.decision {
                try row.decided(dec, at: i) { k in try table.leaf(txn, k)?.review.flatMap(ContributionStatus.review) }
            }
            if let i = try ledger.tombstone(txn, id), let t = try table.leaf(txn, i)?.tombstone, case .tombstone(let rec)? = try? Record(t.record) {
                (row.state, row.tombstone, row.reason) = (rec.takedown ? .takenDown : .withdrawn, i, rec.reason)
            }
        }
        if row.state == .awaitingReview {
            let st = try state(of: d)
            row.countSoFar(Self.latestReviews(try pendingRecords(d), policy: st.policy)[id] ?? [], policy: st.policy)
        }
        row.sidecar = try sidecar(of: c)
        return row
    }

    /// For each contribution, the latest pending review of each curator in force, as the
    /// sequencer counts them (`Review.isLater`).
    static func latestReviews(_ pending: [Envelope], policy: PolicyState) -> [RecordID: [Review]] {
        var latest = [RecordID: [PublicKey: (Review, RecordID)]]()
        for e in pending {
            guard case .review(let r)? = try? Record(e), policy.mayReview(r.reviewer) else { continue }
            for c in r.contributions {
                if let (held, id) = latest[c]?[r.reviewer], !Review.isLater((r.createdAt ?? 0, e.id), than: (held.createdAt ?? 0, id)) { continue }
                latest[c, default: [:]][r.reviewer] = (r, e.id)
            }
        }
        return latest.mapValues { $0.values.map(\.0).sorted { $0.reviewer < $1.reviewer } }
    }
}

extension ContributionStatus {
    /// Records the decision leaf at `index` and the reviews it counted (carried in it, or in the
    /// review leaves `reviewAt` reads).
    mutating func decided(_ dec: Leaf.Decision, at index: UInt64, reviewAt: (UInt64) throws -> Review?) rethrows {
        decided(dec, at: index, verdicts: try Self.verdicts(dec, reviewAt: reviewAt))
    }

    /// Records the decision leaf at `index` with the verdicts `verdicts(_:reviewAt:)` made of it.
    mutating func decided(_ dec: Leaf.Decision, at index: UInt64, verdicts: [Verdict]) {
        state = dec.accepted ? .accepted : .rejected
        (decision, reason, reviews) = (index, dec.reason, verdicts)
    }

    /// The reviews a decision counted: carried in it, or in the review leaves `reviewAt` reads.
    static func verdicts(_ dec: Leaf.Decision, reviewAt: (UInt64) throws -> Review?) rethrows -> [Verdict] {
        switch dec.reviews {
        case .embedded(let es): es.compactMap(Self.review).map(Verdict.init)
        case .cited(let leaves): try leaves.compactMap(reviewAt).map(Verdict.init)
        }
    }

    /// Records the reviews counted so far and the accepts still needed.
    mutating func countSoFar(_ reviews: [Review], policy: PolicyState) {
        self.reviews = reviews.map(Verdict.init)
        acceptsNeeded = max(0, policy.reviewsNeeded(toAccept: true) - reviews.filter(\.accept).count)
    }

    /// The review a record carries, if it is one.
    static func review(_ e: Envelope) -> Review? { if case .review(let r)? = try? Record(e) { r } else { nil } }
}

extension ContributionStatus.Verdict {
    init(_ r: Review) { (reviewer, accept, reason) = (r.reviewer, r.accept, r.reason) }
}

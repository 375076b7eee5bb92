import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Synchronization

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
        var rows = [ContributionStatus]()
        try forEachStatusBlock(d, { $0 }, consume: { rows += $0 })
        return rows + (try queuedStatuses(d))
    }

    /// The statuses of `d`'s contributions taken in, a block at a time in intake order: `make`
    /// gets a block's statuses complete (decision, verdicts, tombstone, sidecar, the reviews
    /// counted so far) and `consume` takes what it made, in order. From the rows, `make` runs on
    /// the other cores inside the block's read transaction (it must not read this store);
    /// in a store without rows, from the leaves, all on this thread.
    public func forEachStatusBlock<R>(_ d: DatanetID, _ make: @escaping ([ContributionStatus]) throws -> R,
                                      consume: (R) throws -> Void) throws {
        let st = try state(of: d), policy = st.policy
        let latest = Self.latestReviews(try pendingRecords(d), policy: policy)
        func counted(_ rows: [ContributionStatus]) -> [ContributionStatus] {
            var rows = rows
            for k in rows.indices where rows[k].state == .awaitingReview { rows[k].countSoFar(latest[rows[k].id] ?? [], policy: policy) }
            return rows
        }
        if try statusBlocksFromRows(d, below: st.size, { try make(counted($0)) }, consume: consume) { return }
        var rows = try statusesFromLeaves(d, size: st.size)
        try withSidecars(&rows)
        rows = counted(rows)
        for start in stride(from: 0, to: rows.count, by: Int(Self.rowBlock)) {
            try consume(try make(Array(rows[start..<min(rows.count, start + Int(Self.rowBlock))])))
        }
    }

    /// The contributions of `d` queued here and not yet taken in, in queue order, with the
    /// reviews counted so far.
    public func queuedStatuses(_ d: DatanetID) throws -> [ContributionStatus] {
        let pending = try pendingRecords(d)
        var rows = [ContributionStatus](), seen = Set<RecordID>()
        for e in pending where e.kind == .contribution && seen.insert(e.id).inserted {
            guard try placement(e.id) == nil, case .contribution(let c)? = try? Record(e) else { continue }
            rows.append(ContributionStatus(id: e.id, contribution: c, state: .queued))
        }
        guard !rows.isEmpty else { return [] }
        let policy = try state(of: d).policy
        let latest = Self.latestReviews(pending, policy: policy)
        for k in rows.indices { rows[k].countSoFar(latest[rows[k].id] ?? [], policy: policy) }
        try withSidecars(&rows)
        return rows
    }

    /// Reads the sidecars of `rows` (statuses read from the leaves or the queue).
    private func withSidecars(_ rows: inout [ContributionStatus]) throws {
        let missing = rows.indices.filter { rows[$0].sidecar == nil }
        guard !missing.isEmpty else { return }
        for (k, side) in zip(missing, try sidecars(of: missing.map { rows[$0].contribution })) { rows[k].sidecar = side }
    }

    /// The statuses of the contributions taken in, from their rows, with their sidecars (nil in
    /// a store without rows).
    func statusesFromRows(_ d: DatanetID, below end: UInt64) throws -> [ContributionStatus]? {
        var out = [ContributionStatus]()
        return try statusBlocksFromRows(d, below: end, { $0 }, consume: { out += $0 }) ? out : nil
    }

    /// `forEachStatusBlock` from the rows, before the reviews counted so far: each worker reads
    /// its block's sidecars, decision and tombstone leaves, and makes the verdicts (once per run
    /// of decisions citing the same reviews; each review leaf decoded once for all workers).
    /// False when this store has no rows.
    private func statusBlocksFromRows<R>(_ d: DatanetID, below end: UInt64, _ make: @escaping ([ContributionStatus]) throws -> R,
                                         consume: (R) throws -> Void) throws -> Bool {
        let table = try ledger.leafTable(d), sidecars = ledger.sidecars
        let reviews = ReviewLeaves(table)
        return try forEachRowBlock(d, below: end, { txn, rows in try txn.withCursor(table.table) { decisions in
            var out = [ContributionStatus]()
            out.reserveCapacity(rows.count)
            var last: (cited: [UInt64], verdicts: [ContributionStatus.Verdict])?
            for r in rows {
                var s = ContributionStatus(id: r.id, contribution: r.contribution, state: .awaitingReview, intake: r.intake)
                s.sidecar = try Ledger.sidecar(txn, sidecars, r.contribution.sidecar)
                if let i = r.decision {
                    // Decisions of a block's rows mostly ascend: a cursor reads them a page search each.
                    guard let dec = try table.withSummary(decisions, i)?.decision, dec.intake == r.intake else {
                        throw LedgerError.corruptEntry(table: "contribution-rows", key: Hex.encode(BigEndian.key(d, r.intake)),
                                                       why: "its decision leaf \(i) is not a decision of that intake")
                    }
                    if case .cited(let cited) = dec.reviews, let last, last.cited == cited {
                        s.decided(dec, at: i, verdicts: last.verdicts)
                    } else {
                        let verdicts = try ContributionStatus.verdicts(dec, verdictAt: { try reviews.verdict(txn, $0) })
                        if case .cited(let cited) = dec.reviews { last = (cited, verdicts) }
                        s.decided(dec, at: i, verdicts: verdicts)
                    }
                }
                if let i = r.tombstone, let t = try table.leaf(txn, i)?.tombstone, case .tombstone(let rec)? = try? Record(t.record) {
                    (s.state, s.tombstone, s.reason) = (rec.takedown ? .takenDown : .withdrawn, i, rec.reason)
                }
                out.append(s)
            }
            return try make(out)
        } }, consume: consume)
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
            case .intake, .policy, .setSequencer, .continuation, .model:
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
        let latest = Self.latestReviews(try pendingRecords(d), policy: st.policy)
        for k in rows.indices { rows[k].countSoFar(latest[rows[k].id] ?? [], policy: st.policy) }
        try withSidecars(&rows)
        return rows + (try queuedStatuses(d))
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
        try verdicts(dec, verdictAt: { try reviewAt($0).map(Verdict.init) })
    }

    /// The verdicts of the reviews a decision counted: carried in it, or read by `verdictAt`
    /// from the review leaves it cites.
    static func verdicts(_ dec: Leaf.Decision, verdictAt: (UInt64) throws -> Verdict?) rethrows -> [Verdict] {
        switch dec.reviews {
        case .embedded(let es): es.compactMap(Self.review).map(Verdict.init)
        case .cited(let leaves): try leaves.compactMap(verdictAt)
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
    init(_ v: (reviewer: PublicKey, accept: Bool, reason: String)) { (reviewer, accept, reason) = v }
}

/// The reviews in a Datanet's review leaves, by leaf index, for the workers of one listing:
/// decisions across every block cite the same few reviews (one may list 100,000 ids), so each
/// is decoded once, by the first worker to need it.
final class ReviewLeaves: Sendable {
    private let table: LeafTable
    private let held = Mutex([UInt64: ContributionStatus.Verdict?]())

    init(_ table: LeafTable) { self.table = table }

    /// The verdict of the review at leaf `index` (nil when that leaf holds none), read in `txn`
    /// once, without its list of contribution ids where the leaf is laid out as this build
    /// writes it.
    func verdict(_ txn: Transaction, _ index: UInt64) throws -> ContributionStatus.Verdict? {
        try held.withLock { held throws -> ContributionStatus.Verdict? in
            if let v = held[index] { return v }
            let fast = try table.withBytes(txn, index) { LeafSummary.reviewVerdict($0) }
            let v = try fast.map { $0.map(ContributionStatus.Verdict.init) }
                ?? table.leaf(txn, index)?.review.flatMap(ContributionStatus.review).map(ContributionStatus.Verdict.init)
            held[index] = v
            return v
        }
    }
}

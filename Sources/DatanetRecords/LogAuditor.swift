import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import Foundation

/// A rule the log breaks, at a leaf (or a checkpoint), with what shows it.
public struct AuditViolation: Codable, Sendable, Equatable {
    /// The leaf index, or nil for a checkpoint-level violation.
    public var index: UInt64?
    public var rule: String
    public var detail: String
    /// Portable evidence: the leaf bytes (base64) with an inclusion proof to a signed
    /// checkpoint, or the signed checkpoint notes that disagree with the log.
    public var evidence: AuditEvidence?
    package init(index: UInt64?, rule: String, detail: String, evidence: AuditEvidence? = nil) {
        (self.index, self.rule, self.detail, self.evidence) = (index, rule, detail, evidence)
    }
}

/// What lets anyone else check a violation without this node.
public struct AuditEvidence: Codable, Sendable, Equatable {
    public var leaf: String?
    public var proof: [String]?
    public var checkpoint: String
    package init(leaf: String?, proof: [String]?, checkpoint: String) {
        (self.leaf, self.proof, self.checkpoint) = (leaf, proof, checkpoint)
    }
}

/// One leaf decoded, hashed and with every signature it carries checked; made on any core.
package struct CheckedLeaf {
    package let index: UInt64
    package let bytes: [UInt8]
    package let leaf: Leaf?
    package let hash: Digest
    /// The records the leaf carries (field 4 of an intake, 1 of a policy kind, 5 of a decision),
    /// each with its valid signers (distinct: an envelope holds one signature per key), or the reason it is unusable.
    package let records: [Result<(Envelope, Record, [PublicKey]), RecordError>]
    package let error: String?
    package let signatures: Int

    /// A leaf decoded and, unless `verify` is false, its signatures checked. Unverified, each
    /// record counts every key that signed its envelope: only for leaves this store checked
    /// when it stored them (an import replays the log it holds to learn the state in force,
    /// and checks only the leaves it receives; `audit` checks every one).
    package init(index: UInt64, bytes: [UInt8], verify: Bool = true) {
        self.index = index
        self.bytes = bytes
        hash = Merkle.leafHash(bytes)
        var records = [Result<(Envelope, Record, [PublicKey]), RecordError>]()
        var signatures = 0
        do {
            let leaf = try Leaf(encoded: bytes)
            for e in leaf.records {
                signatures += e.signatures.count
                records.append(Result { () throws(RecordError) in
                    guard verify else {
                        var seen = Set<PublicKey>()
                        return (e, try Record(e), e.signatures.map(\.key).filter { seen.insert($0).inserted })
                    }
                    let (record, signers) = try Record.verifiedWithSigners(e) // each signature checked once
                    return (e, record, signers)
                })
            }
            self.leaf = leaf
            error = nil
        } catch {
            self.leaf = nil
            self.error = "\(error)"
        }
        (self.records, self.signatures) = (records, signatures)
    }
}

/// Replays a Datanet's log from its genesis as an independent verifier would, leaf by leaf in
/// order, against the rules in force at each leaf (schema/log.md, curation.md). It reads only
/// leaf bytes and signed checkpoints, never this node's indexes.
package struct LogAuditor {
    package let datanet: DatanetID
    package private(set) var size: UInt64 = 0
    package private(set) var violations = [AuditViolation]()
    package private(set) var signatures = 0
    /// Perfect subtrees of the log so far (RFC 9162 compact range): (height, hash), left to right.
    private var peaks = [(height: Int, hash: Digest)]()
    private var policy: PolicyState?
    private var policyLeaf: (index: UInt64, hash: Digest)?
    private var policyRecord = RecordID(.zero)
    /// The sequencer key from each size on: (first checkpoint size it signs, key).
    package private(set) var keys = [(from: UInt64, key: PublicKey)]()
    private var intakes = [RecordID: (index: UInt64, author: PublicKey, size: UInt64, content: ObjectID, decided: Bool)]()
    /// Contributions under a tombstone: leaf index of the tombstone.
    private var tombstoned = [RecordID: UInt64]()
    private var firstWithContent = [ObjectID: RecordID]()
    private var undecided = [PublicKey: (count: UInt64, bytes: UInt64)]()
    /// Review leaves some of whose contributions no decision has cited them for yet, by index
    /// (a review is checked once, at its leaf; a decision then looks it up).
    private var reviewLeaves = [UInt64: (review: Review, id: RecordID, remaining: Int)]()
    /// Every review sequenced so far: a review leaf is appended once per review.
    private var sequencedReviews = Set<RecordID>()
    /// For each contribution not yet decided, each curator's latest review leaf about it so far
    /// (`Review.isLater`): a decision must count no curator's superseded review.
    private var latestReview = [RecordID: [PublicKey: (createdAt: UInt64, id: RecordID)]]()
    /// Every model registered so far: a model leaf is appended once per model record.
    private var models = Set<RecordID>()

    package init(datanet: DatanetID) { self.datanet = datanet }

    /// The Datanet's state after the leaves replayed so far (nil before the genesis).
    package var state: DatanetState? {
        guard let policy, let policyLeaf else { return nil }
        return DatanetState(id: datanet, size: size, policyIndex: policyLeaf.index, policyLeafHash: policyLeaf.hash,
                            policyRecord: policyRecord, policy: policy)
    }

    /// The log root at the current size.
    package var root: Digest {
        guard var acc = peaks.last?.hash else { return Merkle.emptyRoot }
        for p in peaks.dropLast().reversed() { acc = Merkle.nodeHash(p.hash, acc) }
        return acc
    }

    /// The sequencer key in force for a checkpoint of `size`.
    package func key(forSize size: UInt64) -> PublicKey? { keys.last { $0.from <= size }?.key }

    private mutating func flag(_ index: UInt64, _ rule: String, _ detail: String) {
        violations.append(AuditViolation(index: index, rule: rule, detail: detail, evidence: nil))
    }

    /// Adds one checked leaf at the next index.
    package mutating func add(_ c: CheckedLeaf) {
        let i = size
        defer {
            size += 1
            var node = (height: 0, hash: c.hash)
            while let last = peaks.last, last.height == node.height {
                peaks.removeLast()
                node = (node.height + 1, Merkle.nodeHash(last.hash, node.hash))
            }
            peaks.append(node)
        }
        signatures += c.signatures
        guard let leaf = c.leaf else { return flag(i, "leaf decodes", c.error ?? "undecodable") }
        if leaf.datanet != datanet { flag(i, "leaf belongs to this Datanet", "names \(leaf.datanet.hex)") }
        if i == 0 {
            guard leaf.kind == .policy, leaf.policy == nil, case .success(let r)? = c.records.first, case .genesis(let g) = r.1,
                  r.0.id == datanet.genesis else {
                return flag(0, "leaf 0 is the genesis", "leaf 0 is not this Datanet's signed genesis")
            }
            let e = r.0
            do throws(RecordError) { try r.1.checkKeysUsable() } catch { flag(0, "records name only usable keys", "\(error)") }
            policy = g.policy; policyLeaf = (0, c.hash); policyRecord = e.id
            keys = [(1, g.policy.sequencer)]
            return
        }
        guard var st = policy, let cited = policyLeaf else { return }
        if leaf.policy?.index != cited.index || leaf.policy?.hash != cited.hash {
            flag(i, "a leaf cites the latest policy leaf before it", "cites \(leaf.policy.map { String($0.index) } ?? "nothing"), the latest is \(cited.index)")
        }
        var records = [(Envelope, Record, [PublicKey])]()
        for r in c.records {
            switch r {
            case .success(let ok): records.append(ok)
            case .failure(let e): flag(i, "every record is validly signed", "\(e)")
            }
        }
        guard records.count == c.records.count else { return }
        for (_, record, _) in records {
            do throws(RecordError) { try record.checkKeysUsable() } catch { flag(i, "records name only usable keys", "\(error)") }
        }
        switch leaf.kind {
        case .policy, .setSequencer:
            let (e, record, signers) = records[0]
            let (previous, recordDatanet): (RecordID, DatanetID)
            switch (leaf.kind, record) {
            case (.policy, .policy(let p)): (previous, recordDatanet) = (p.previous, p.datanet)
            case (.setSequencer, .setSequencer(let h)): (previous, recordDatanet) = (h.previous, h.datanet)
            default: return flag(i, "a \(leaf.kind) leaf carries a \(leaf.kind) record", "carries \(e.kind.rawValue)")
            }
            if recordDatanet != datanet { flag(i, "records belong to this Datanet", "policy names \(recordDatanet.hex)") }
            if previous != policyRecord { flag(i, "a policy names the policy in force", "names \(previous.hex), in force \(policyRecord.hex)") }
            let curators = st.curatorCount(signers)
            if !st.authorizesGovernance(signers) {
                flag(i, "a policy change has the owner's signature or a curator quorum", "\(curators) curator signature(s), quorum \(st.quorum)")
            }
            if case .policy(let p) = record {
                if !st.keepsSequencer(p.state) {
                    flag(i, "a policy record keeps the sequencer", "it names \(p.state.sequencer); only set-sequencer and continuation hand over \(st.sequencer)")
                }
                st = p.state
            }
            if case .setSequencer(let h) = record {
                // Like a continuation, it names exactly the log before it.
                if let (at, named) = h.takesOver {
                    if at != i {
                        flag(i, "a set-sequencer names the log before it", "it names size \(at); the log before it has \(i) leaves")
                    } else if named != root {
                        flag(i, "a set-sequencer names the log before it", "its root at size \(at) is not the log's")
                    }
                }
                st.sequencer = h.sequencer; keys.append((LeafKind.setSequencer.newKeySigns(from: i)!, h.sequencer))
            }
            policy = st; policyLeaf = (i, c.hash); policyRecord = e.id
        case .continuation:
            guard case .continuation(let k) = records[0].1 else { return flag(i, "a continuation leaf carries a continuation", "it does not") }
            if !st.authorizesContinuation(records[0].2) { flag(i, "a continuation is signed by the owner", "it is not") }
            if k.size != i || k.root != root { flag(i, "a continuation names the log before it", "names size \(k.size) and another root") }
            st.sequencer = k.sequencer
            keys.append((LeafKind.continuation.newKeySigns(from: i)!, k.sequencer))
            policy = st; policyLeaf = (i, c.hash); policyRecord = records[0].0.id
        case .intake:
            intake(i, leaf, records[0], st)
        case .decision:
            decision(i, leaf, records, st)
        case .tombstone:
            tombstone(i, leaf, records[0], st)
        case .review:
            review(i, records[0], st)
        case .model:
            model(i, leaf, records[0], st)
        }
    }

    private mutating func model(_ i: UInt64, _ leaf: Leaf, _ r: (Envelope, Record, [PublicKey]), _ st: PolicyState) {
        guard case .model(let m) = r.1, let proof = leaf.model?.proof else { return flag(i, "a model leaf carries a model", "carries \(r.0.kind.rawValue)") }
        if m.datanet != datanet { flag(i, "records belong to this Datanet", "model names \(m.datanet.hex)") }
        guard models.insert(r.0.id).inserted else { return flag(i, "a model is registered once", "\(r.0.id.hex) has a model leaf before") }
        if !st.mayBuild(m.builder) {
            flag(i, "a model's builder is the owner, a curator or a builder in force", "\(m.builder) is none under policy leaf \(policyLeaf!.index)")
        }
        do {
            try Merkle.verifyConsistency(size1: m.checkpointSize, size2: i, root1: m.checkpointRoot, root2: root, proof: proof)
        } catch {
            flag(i, "a model names a checkpoint of the log before it", "size \(m.checkpointSize) with root \(m.checkpointRoot.hex) is not: \(error)")
        }
        if m.training.tombstonesBefore > i {
            flag(i, "a model's tombstone horizon is no later than its leaf", "\(m.training.tombstonesBefore) > \(i)")
        }
    }

    private mutating func review(_ i: UInt64, _ r: (Envelope, Record, [PublicKey]), _ st: PolicyState) {
        guard case .review(let review) = r.1 else { return flag(i, "a review leaf carries a review", "carries \(r.0.kind.rawValue)") }
        if review.datanet != datanet { flag(i, "records belong to this Datanet", "review names \(review.datanet.hex)") }
        guard sequencedReviews.insert(r.0.id).inserted else { return flag(i, "a review is sequenced once", "\(r.0.id.hex) has a review leaf before") }
        if !st.mayReview(review.reviewer) {
            flag(i, "a review leaf's reviewer is a curator in force", "\(review.reviewer) is not a curator under policy leaf \(policyLeaf!.index)")
        }
        reviewLeaves[i] = (review, r.0.id, review.contributions.count)
        let made = (createdAt: review.createdAt ?? 0, id: r.0.id)
        for c in review.contributions where intakes[c]?.decided != true {
            if let held = latestReview[c]?[review.reviewer], !Review.isLater(made, than: held) { continue }
            latestReview[c, default: [:]][review.reviewer] = made
        }
    }

    private mutating func intake(_ i: UInt64, _ leaf: Leaf, _ r: (Envelope, Record, [PublicKey]), _ st: PolicyState) {
        guard case .contribution(let c) = r.1 else { return flag(i, "an intake leaf carries a contribution", "carries \(r.0.kind.rawValue)") }
        let id = r.0.id
        guard let fields = leaf.intake else { return }
        if fields.record != id || fields.author != c.author || fields.content != c.content {
            flag(i, "intake fields match the contribution", "record id, author or content differs")
        }
        if c.datanet != datanet { flag(i, "records belong to this Datanet", "contribution names \(c.datanet.hex)") }
        guard intakes[id] == nil else { return flag(i, "a record is taken in once", "\(id.hex) was taken in at \(intakes[id]!.index)") }
        if !st.mayContribute(c.author) {
            flag(i, "the author may contribute under the policy in force", "\(c.author) is not a contributor")
        }
        let q = undecided[c.author] ?? (0, 0)
        if !st.withinQuota(count: q.count, bytes: q.bytes, adding: c.size) {
            flag(i, "the author is within quota", "\(q.count) undecided proposals, \(q.bytes) bytes before this one")
        }
        intakes[id] = (i, c.author, c.size, c.content, false)
        if firstWithContent[c.content] == nil {
            firstWithContent[c.content] = id
            undecided[c.author] = (q.count + 1, q.bytes.addingSaturating(c.size))
        }
    }

    private mutating func decision(_ i: UInt64, _ leaf: Leaf, _ reviews: [(Envelope, Record, [PublicKey])], _ st: PolicyState) {
        guard let d = leaf.decision, let intake = intakes[d.contribution] else {
            return flag(i, "a decision decides a contribution taken in earlier", "names no earlier intake")
        }
        let id = d.contribution
        guard !intake.decided else { return flag(i, "a contribution is decided once", "\(id.hex) was decided before") }
        if let t = tombstoned[id] { return flag(i, "a contribution under a tombstone is not decided", "tombstone at leaf \(t)") }
        intakes[id]!.decided = true
        let latest = latestReview.removeValue(forKey: id) ?? [:]
        let accepted = d.accepted
        if d.intake != intake.index { flag(i, "a decision names its intake index", "names another index than \(intake.index)") }
        let earliest = firstWithContent[intake.content]
        let duplicate = earliest != id
        if duplicate {
            if accepted { flag(i, "an exact duplicate is rejected", "accepts a copy of \(earliest!.hex)") }
            else if d.reviews.isEmpty, d.reason != "duplicate of \(earliest!.hex)" {
                flag(i, "a duplicate rejection names the earliest contribution", "reason is not \"duplicate of \(earliest!.hex)\"")
            }
            return
        }
        var q = undecided[intake.author] ?? (0, 0)
        q = (q.count - min(1, q.count), q.bytes - min(intake.size, q.bytes))
        undecided[intake.author] = q
        // The counted reviews: carried in the leaf (logs written before review leaves) or cited.
        var counted = [(id: RecordID, review: Review)]()
        switch d.reviews {
        case .embedded:
            for (e, record, _) in reviews {
                guard case .review(let r) = record else { return flag(i, "a decision carries reviews", "carries \(e.kind.rawValue)") }
                counted.append((e.id, r))
            }
        case .cited(let indexes):
            for k in indexes {
                guard k < i, let held = reviewLeaves[k] else {
                    return flag(i, "a decision cites review leaves before it", "leaf \(k) is not an earlier review leaf with a contribution left to decide")
                }
                counted.append((held.id, held.review))
                if held.review.contributions.binarySearch(id) {
                    if held.remaining <= 1 { reviewLeaves[k] = nil } else { reviewLeaves[k]!.remaining -= 1 }
                }
            }
        }
        if counted.isEmpty { return flag(i, "a decision carries the reviews that decided it", "no reviews and not a duplicate") }
        var reviewers = Set<PublicKey>()
        for (reviewID, r) in counted {
            if let newer = latest[r.reviewer], Review.isLater(newer, than: (r.createdAt ?? 0, reviewID)) {
                flag(i, "a curator's latest review counts (created-at, then record id)", "review \(reviewID.hex) is superseded by \(newer.id.hex), sequenced before this decision")
            }
            if r.datanet != datanet || !r.contributions.binarySearch(id) { flag(i, "a counted review is about this contribution", "review \(reviewID.hex) is not") }
            if !st.mayReview(r.reviewer) {
                flag(i, "only curators in force are counted", "\(r.reviewer) is not a curator under policy leaf \(policyLeaf!.index)")
            }
            if r.accept != accepted { flag(i, "counted reviews agree with the verdict", "review \(reviewID.hex) disagrees") }
            if !reviewers.insert(r.reviewer).inserted { flag(i, "a curator is counted once", "\(r.reviewer) counted twice") }
        }
        let curators = st.curatorCount(reviewers)
        let needed = st.reviewsNeeded(toAccept: accepted)
        if curators < needed { flag(i, "the counted reviews reach the quorum rule", "\(curators) counted, \(needed) needed to \(accepted ? "accept" : "reject")") }
    }

    private mutating func tombstone(_ i: UInt64, _ leaf: Leaf, _ r: (Envelope, Record, [PublicKey]), _ st: PolicyState) {
        guard case .tombstone(let t) = r.1 else { return flag(i, "a tombstone leaf carries a tombstone", "carries \(r.0.kind.rawValue)") }
        guard t.datanet == datanet, let intake = intakes[t.contribution], let fields = leaf.tombstone,
              fields.contribution == t.contribution, fields.intake == intake.index else {
            return flag(i, "a tombstone names a contribution taken in earlier", "\(t.contribution.hex) with the wrong intake index or none")
        }
        guard tombstoned[t.contribution] == nil else { return flag(i, "a contribution is tombstoned once", "already at leaf \(tombstoned[t.contribution]!)") }
        if !t.isAuthorized(signers: r.2, author: intake.author, policy: st) {
            flag(i, t.takedown ? "a takedown has the owner's signature or a curator quorum" : "a withdrawal is signed by the author", "it is not")
        }
        tombstoned[t.contribution] = i
        if !intake.decided && firstWithContent[intake.content] == t.contribution {
            let q = undecided[intake.author] ?? (0, 0)
            undecided[intake.author] = (q.count - min(1, q.count), q.bytes - min(intake.size, q.bytes))
        }
    }

    /// Decodes a batch of leaves and checks their signatures, on every core. Pure.
    package static func check(_ batch: [(index: UInt64, bytes: [UInt8])], verify: Bool = true) throws -> [CheckedLeaf] {
        try Parallel.map(batch, grain: 256) { CheckedLeaf(index: $0.index, bytes: $0.bytes, verify: verify) }
    }

    /// Adds checked consecutive leaves in order (passing each to `each`) and checks every note
    /// due at a size reached (`notes` keyed by checkpoint size). Returns how many notes were
    /// checked; throws when a leaf index is missing.
    @discardableResult
    package mutating func add(checked leaves: [CheckedLeaf], notes: [UInt64: [String]], each: (CheckedLeaf) throws -> Void = { _ in }) throws -> Int {
        var checked = 0
        let origin = Checkpoint.origin(of: datanet)
        for leaf in leaves {
            guard leaf.index == size else { throw LedgerError.corruptLog("leaf \(size) is missing from the log") }
            add(leaf)
            try each(leaf)
            for note in notes[size] ?? [] { checkpoint(note, origin: origin, root: root); checked += 1 }
        }
        return checked
    }

    /// Checks a signed checkpoint against the replayed log: signed by the key in force at its
    /// size, with `root` the log's root at that size (the replay's own when called as `size`
    /// reaches it; a Merkle log's after the replay, for notes that came late).
    package mutating func checkpoint(_ note: String, origin: String, root: Digest) {
        guard let cp = try? Checkpoint.unverified(note: note) else {
            return violations.append(AuditViolation(index: nil, rule: "checkpoints parse", detail: "malformed note", evidence: nil))
        }
        guard let key = key(forSize: cp.size) else { return }
        do {
            _ = try Checkpoint.verify(note: note, key: key)
        } catch {
            return violations.append(AuditViolation(index: nil, rule: "a checkpoint is signed by the sequencer key in force",
                                                    detail: "size \(cp.size): \(error)", evidence: nil))
        }
        if cp.origin != origin || cp.root != root {
            violations.append(AuditViolation(index: nil, rule: "a signed checkpoint matches the log",
                                             detail: "size \(cp.size): its root \(cp.root.hex) is not the log's \(root.hex): history was rewritten or forked",
                                             evidence: AuditEvidence(leaf: nil, proof: nil, checkpoint: note)))
        }
    }
}

/// Feeds a log to an auditor behind its checks: batches are decoded and signature-checked on
/// the other threads while the calling thread applies the rules to earlier ones, or does
/// other work (an import reads and stores objects meanwhile). At most `depth` batches are in
/// flight; the oldest is added to the auditor when one more would exceed it.
package struct AuditPipeline {
    private var running = [Parallel.Running<[CheckedLeaf]>]()
    package let notes: [UInt64: [String]]
    package let depth: Int
    /// Notes checked so far.
    package private(set) var checkpointsChecked = 0

    package init(notes: [UInt64: [String]], depth: Int = 1) { (self.notes, self.depth) = (notes, max(1, depth)) }

    /// Starts checking `batch`; adds the oldest batches beyond `depth` in flight.
    /// With `verify` false the batch's signatures are not checked (`CheckedLeaf(verify:)`).
    package mutating func push(_ batch: [(index: UInt64, bytes: [UInt8])], into auditor: inout LogAuditor, verify: Bool = true,
                       each: (CheckedLeaf) throws -> Void = { _ in }) throws {
        if !batch.isEmpty { running.append(Parallel.start { try LogAuditor.check(batch, verify: verify) }) }
        while running.count > (batch.isEmpty ? 0 : depth) {
            let oldest = running.removeFirst()
            checkpointsChecked += try auditor.add(checked: try oldest.wait(), notes: notes, each: each)
        }
    }

    /// Adds, in order, the batches whose checks have finished, without waiting for any.
    package mutating func poll(into auditor: inout LogAuditor, each: (CheckedLeaf) throws -> Void = { _ in }) throws {
        while let oldest = running.first, oldest.isFinished {
            running.removeFirst()
            checkpointsChecked += try auditor.add(checked: try oldest.wait(), notes: notes, each: each)
        }
    }

    /// Adds every batch still in flight.
    package mutating func finish(into auditor: inout LogAuditor, each: (CheckedLeaf) throws -> Void = { _ in }) throws {
        try push([], into: &auditor, each: each)
    }
}

extension Array where Element == RecordID {
    /// Whether a sorted array holds `id`, in O(log n).
    package func binarySearch(_ id: RecordID) -> Bool {
        var (lo, hi) = (0, count)
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && self[lo] == id
    }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc

extension Ledger {
    /// Leaves appended per durable transaction while sequencing. Each transaction ends with a
    /// signed checkpoint of its size, so a crash keeps a prefix of the run and its checkpoint;
    /// the bound keeps LMDB's dirty-page list, and so memory and commit time, flat however long
    /// the queue is.
    public static let leavesPerTransaction = 25_000

    /// Sequences a Datanet's pending records and signs checkpoints (schema/log.md "Sequencing"):
    /// 1. policy records naming the policy in force and signed by the owner or a curator quorum
    ///    become policy leaves, in the order they were first seen;
    /// 2. contributions become intake leaves (with a signed intake promise); an exact duplicate
    ///    of an earlier contribution's content is rejected at once by a decision leaf;
    /// 3. every undecided contribution whose reviews settle it gets a decision leaf, in intake
    ///    order (schema/curation.md);
    /// 4. the new root is signed by the sequencer key in force.
    /// The run commits every `leavesPerTransaction` leaves, each commit with the checkpoint of its
    /// size. Records that break a rule leave pending without a leaf and are listed in `refused`.
    public func sequence(_ d: DatanetID, key: SigningKey, leavesPerTransaction: Int = Ledger.leavesPerTransaction) throws -> SequenceReport {
        // One sequencer process per Datanet: an exclusive lock held for the whole run.
        let lockPath = Self.sequencerLockPath(store: store.directory, datanet: d)
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw LedgerStateError.sequencerBusy(path: lockPath, why: String(cString: strerror(errno))) }
        // Unlocked before closing: a child another thread forked in the meantime shares the open
        // file description until it execs, and would otherwise keep the lock held after us.
        defer { flock(lock, LOCK_UN); close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw LedgerStateError.sequencerBusy(path: lockPath, why: "another process is sequencing this Datanet")
        }
        let run = SequenceRun(ledger: self, d: d, key: key, log: try merkleLog(d),
                              leaves: try leafTable(d), limit: max(1, leavesPerTransaction))
        // One scan of the queue, then every record sorted and decoded on every core before any write.
        let queue = try env.read { txn in try PendingQueue(self, txn, d) }
        let sorted = try SortedQueue(queue, datanet: d)
        run.queue = queue
        run.reviews = sorted.reviews
        var next = 0
        repeat {
            let (mark, first) = (run.mark(), next)
            try env.write { txn in
                // A retry (LMDB grew its map) starts again from the same point.
                run.rewind(to: mark)
                next = first
                try run.begin(txn)
                while next < sorted.others.count && !run.full && !run.handedOver {
                    let (entry, decoded) = sorted.others[next]
                    next += 1
                    let key = queue.key(d, entry)
                    // Signatures may have been added since the queue was read (a quorum
                    // collecting): the record as stored now is the one taken.
                    guard let value = try txn.withValue(pending, key, { try pendingRecord(txn, $0, key: key).1 }), let stored = value else { continue }
                    let current = stored.elementsEqual(queue.bytes[queue.range(entry)]) ? decoded : SortedQueue.decode(stored)
                    switch current {
                    case .success(let (envelope, record)):
                        try run.take(txn, key, queue.ids[entry], envelope, record)
                    case .failure(let error):
                        try removePending(txn, key)
                        run.report.refused.append(.init(record: queue.ids[entry], refusal: .record(error)))
                    }
                }
                try run.commit(txn)
            }
        } while next < sorted.others.count && !run.handedOver
        // The handoff leaf is the old key's last: everything after waits for the new sequencer.
        guard !run.handedOver else { return run.report }
        let plan = try env.read { txn in try run.decisionPlan(txn) }
        let slices = run.reviewLeafPlan(plan)
        // Each slice's leaves are built on other threads while the slice before is written.
        let inputs = run.leafInputs
        var building = slices.first.map { s in Parallel.start { try inputs!.leaves(s.decisions, newReviews: s.newReviews) } }
        for (k, slice) in slices.enumerated() {
            let leaves = try building!.wait()
            building = k + 1 < slices.count ? Parallel.start { [s = slices[k + 1]] in try inputs!.leaves(s.decisions, newReviews: s.newReviews) } : nil
            let mark = run.mark()
            try env.write { txn in
                run.rewind(to: mark)
                try run.begin(txn)
                try run.decide(txn, slice.decisions, newReviews: slice.newReviews, leaves: leaves)
                try run.commit(txn)
            }
        }
        // Reviews leave pending once all they name is decided (no leaves: no checkpoint).
        let settled = try env.read { txn in try run.settledReviews(txn) }
        for batch in stride(from: 0, to: settled.count, by: 4 * run.limit) {
            try env.write { txn in
                var gone = [TimestampedID]()
                try txn.withCursor(pending) { cursor in
                    for e in settled[batch..<min(settled.count, batch + 4 * run.limit)] where try cursor.delete(DigestNumberKey(d, queue.numbers[e])) {
                        gone.append(TimestampedID(timestamp: 0, id: queue.ids[e].digest)) // reviews reconcile at timestamp 0
                    }
                }
                try dropPendingItems(txn, d, gone)
            }
        }
        return run.report
    }

    /// The lock file that keeps a second sequencer of a Datanet out.
    package static func sequencerLockPath(store: String, datanet: DatanetID) -> String {
        store + "/sequencer-" + datanet.hex + ".lock"
    }

    /// Why a set-sequencer may not be appended at leaf `size` of a log, or nil: it must bind
    /// the log it takes over, exactly the log before it (its size and root), so nothing the old
    /// key sequenced is left for the new one to rewrite. With `exact` false (a proposal checked
    /// where the log may since have grown) a size from 1 to `size` with this log's root there is taken.
    /// Why a model record cannot be registered at leaf `size` of this log, or nil: the
    /// checkpoint it names must be this log's (root) and one this store holds signed, its
    /// tombstone horizon no later than its leaf, and its artifact not content a tombstone erased
    /// here. With `exact` false (a proposal, where the log may be behind the builder's) only
    /// what this store holds is checked.
    func modelProblem(_ txn: Transaction, _ m: ModelRecord, log: MerkleLog, size: UInt64, exact: Bool = true) throws -> String? {
        if try isErased(txn, m.datanet, content: m.artifact) { return "its artifact is content a tombstone erased in this Datanet" }
        guard m.checkpointSize <= size else { return exact ? "it names size \(m.checkpointSize); the log has \(size) leaves" : nil }
        guard try log.root(txn, size: m.checkpointSize) == m.checkpointRoot else { return "its root at size \(m.checkpointSize) is not the log's" }
        guard exact else { return nil }
        guard try txn.contains(checkpoints, BigEndian.key(m.datanet, m.checkpointSize)) else {
            return "no signed checkpoint of size \(m.checkpointSize) is held: a model names a checkpoint"
        }
        guard m.training.tombstonesBefore <= size else {
            return "its tombstone horizon \(m.training.tombstonesBefore) is past its leaf \(size)"
        }
        return nil
    }

    func handoffProblem(_ txn: Transaction, _ h: SetSequencer, log: MerkleLog, size: UInt64, exact: Bool = true) throws -> String? {
        guard let (at, root) = h.takesOver else { return "it names no log to take over (size and root); propose it again with this build" }
        guard at >= 1, at <= size else { return "it takes over at size \(at), but the log has \(size) leaves" }
        guard try log.root(txn, size: at) == root else { return "its root at size \(at) is not this log's: it takes over another history" }
        guard !exact || at == size else {
            return "it binds the log at size \(at), but \(size - at) leaf/leaves were sequenced since it was signed; propose it again (`datanet policy D set-sequencer KEY`) to bind the log as it is"
        }
        return nil
    }

    /// A policy record must name the policy in force and carry the owner's signature or a
    /// quorum of the curators in force.
    func checkPolicy(_ envelope: Envelope, previous: RecordID, st: DatanetState) throws {
        guard previous == st.policyRecord else {
            throw LedgerRefusal.stalePolicy(names: previous.hex, inForce: st.policyRecord.hex)
        }
        if case .policy(let p)? = try? Record(envelope), !st.policy.keepsSequencer(p.state) { throw LedgerRefusal.policyChangesSequencer }
        let signers = try envelope.verifiedSigners()
        guard st.policy.authorizesGovernance(signers) else {
            throw LedgerRefusal.quorumNotMet(curators: st.policy.curatorCount(signers), quorum: st.policy.quorum)
        }
    }
}

/// One `sequence` run: the state carried from one bounded transaction to the next.
final class SequenceRun {
    let ledger: Ledger, d: DatanetID, key: SigningKey, log: MerkleLog, leaves: LeafTable, limit: Int
    var st: DatanetState?
    var report = SequenceReport()
    var handedOver = false
    /// Leaves appended in the open transaction.
    var appended = 0
    var committed = false
    /// The pending queue as read at the start (reviews' ids, keys and envelope bytes live there).
    var queue = PendingQueue()
    /// Pending reviews, in the order first seen.
    var reviews = PendingReviews()
    /// The counted reviews of each planned decision, back to back (indexes into `reviews`).
    var plannedReviews = [Int]()
    /// The leaf index of each review's review leaf (`.max`: none yet).
    var reviewLeaf = [UInt64]()
    var reasons = DecisionReasons()
    /// For each review, how many of the contributions it names the plan decided.
    var settledNamings = [Int32]()
    var full: Bool { appended >= limit }
    /// Items of the records taken out of pending in the open transaction, taken out of the
    /// Datanet's item tree at once when it commits.
    var leaving = [TimestampedID]()

    init(ledger: Ledger, d: DatanetID, key: SigningKey, log: MerkleLog, leaves: LeafTable, limit: Int) {
        (self.ledger, self.d, self.key, self.log, self.leaves, self.limit) = (ledger, d, key, log, leaves, limit)
    }

    /// What a transaction's body changes in the run, taken before it.
    struct Mark {
        let st: DatanetState?, handedOver: Bool, committed: Bool, checkpoint: String, size: UInt64
        let counts: (intakes: Int, decisions: Int, policies: Int, tombstones: Int, models: Int, refused: Int)
    }

    func mark() -> Mark {
        Mark(st: st, handedOver: handedOver, committed: committed, checkpoint: report.checkpoint, size: report.size,
             counts: (report.intakes.count, report.decisions.count, report.policies.count, report.tombstones.count, report.models.count, report.refused.count))
    }

    /// Undoes what an aborted transaction's body did to the run (reports are cut back, not
    /// copied: a copy per transaction of a million-entry report would cost more than the run).
    func rewind(to m: Mark) {
        (st, handedOver, committed, report.checkpoint, report.size) = (m.st, m.handedOver, m.committed, m.checkpoint, m.size)
        report.intakes.removeLast(report.intakes.count - m.counts.intakes)
        report.decisions.removeLast(report.decisions.count - m.counts.decisions)
        report.policies.removeLast(report.policies.count - m.counts.policies)
        report.tombstones.removeLast(report.tombstones.count - m.counts.tombstones)
        report.models.removeLast(report.models.count - m.counts.models)
        report.refused.removeLast(report.refused.count - m.counts.refused)
    }

    /// Reads the state at the start of a transaction; refuses when this key is not the
    /// sequencer, when the store is behind, or when the log moved since the last commit.
    func begin(_ txn: Transaction) throws {
        let now = try ledger.state(txn, d)
        if let st {
            guard now.size == st.size, now.policyLeafHash == st.policyLeafHash else {
                throw LedgerStateError.logMoved(expected: st.size, found: now.size)
            }
        } else {
            guard now.policy.sequencer == key.publicKey else {
                throw LedgerRefusal.notSequencer(key: key.publicKey.description, sequencer: now.policy.sequencer.description)
            }
            try ledger.checkNotBehind(txn, now, key: key)
        }
        st = now
        appended = 0
        leaving.removeAll(keepingCapacity: true)
    }

    /// Signs the checkpoint of the transaction's size; a run that appends nothing still signs once.
    func commit(_ txn: Transaction) throws {
        try ledger.dropPendingItems(txn, d, leaving)
        leaving.removeAll(keepingCapacity: true)
        guard appended > 0 || !committed, var state = st else { return }
        report.checkpoint = try ledger.sign(txn, &state, log: log, key: key)
        report.size = state.size
        st = state
        committed = true
    }

    @discardableResult
    func append(_ txn: Transaction, _ payload: Leaf.Payload) throws -> (UInt64, Digest) {
        guard var state = st else { throw LedgerError.corruptLog("a leaf was appended outside a sequencing transaction") }
        let leaf = Leaf(datanet: d, policy: (state.policyIndex, state.policyLeafHash), payload: payload)
        let index = state.size
        let hash = try ledger.appendLeaf(txn, leaf, at: index, table: leaves, log: log)
        state.size += 1
        st = state
        appended += 1
        return (index, hash)
    }

    /// Takes one pending record other than a review: a policy, handoff, contribution or
    /// tombstone leaf, or a refusal.
    func take(_ txn: Transaction, _ pendingKey: [UInt8], _ id: RecordID, _ envelope: Envelope, _ record: Record) throws {
        // Over its author's quota but within it on its own: it waits in pending (deferred)
        // until earlier contributions are decided, instead of being refused.
        if case .contribution(let c) = record, st!.policy.mayContribute(c.author), st!.policy.withinQuota(count: 0, bytes: 0, adding: c.size) {
            let q = try ledger.index.quota(txn, d, author: KeyID(c.author))
            if !st!.policy.withinQuota(count: q.count, bytes: q.bytes, adding: c.size) {
                return report.deferred.append((id, q.count, q.bytes))
            }
        }
        if let item = try ledger.takePending(txn, pendingKey) { leaving.append(item) }
        switch record {
        case .policy(let p):
            try placePolicy(txn, envelope, id, previous: p.previous, leaf: .policy(envelope)) { $0 = p.state }
        case .setSequencer(let h):
            if let why = try ledger.handoffProblem(txn, h, log: log, size: st!.size) {
                return report.refused.append(.init(record: id, refusal: .handoffNamesAnotherLog(why)))
            }
            try placePolicy(txn, envelope, id, previous: h.previous, leaf: .setSequencer(envelope)) { $0.sequencer = h.sequencer }
            if report.policies.last?.record == id { handedOver = true }
        case .contribution(let c):
            try intake(txn, envelope, id, c)
        case .tombstone(let t):
            try placeTombstone(txn, envelope, id, t)
        case .model(let m):
            try placeModel(txn, envelope, id, m)
        default:
            report.refused.append(.init(record: id, refusal: .notSequenced(kind: envelope.kind.rawValue)))
        }
    }

    private func placePolicy(_ txn: Transaction, _ envelope: Envelope, _ id: RecordID, previous: RecordID, leaf: Leaf.Payload,
                             change: (inout PolicyState) -> Void) throws {
        do {
            try ledger.checkPolicy(envelope, previous: previous, st: st!)
            let (index, hash) = try append(txn, leaf)
            try ledger.index.apply(txn, d, first: index, recordsHeld: true, [.governing(envelope)])
            st!.policyIndex = index; st!.policyLeafHash = hash; st!.policyRecord = id
            change(&st!.policy)
            report.policies.append((id, index))
        } catch let refusal as LedgerRefusal {
            report.refused.append(.init(record: id, refusal: refusal))
        }
    }

    private func placeTombstone(_ txn: Transaction, _ envelope: Envelope, _ id: RecordID, _ t: Tombstone) throws {
        guard let (intake, c) = try ledger.tombstoneTarget(txn, d, t) else {
            return report.refused.append(.init(record: id, refusal: .notInLog(record: t.contribution.hex)))
        }
        guard try !txn.contains(ledger.tombstones, BigEndian.key(d, intake)) else {
            return report.refused.append(.init(record: id, refusal: .alreadyTombstoned(contribution: t.contribution.hex)))
        }
        guard t.isAuthorized(signers: Set(try envelope.verifiedSigners()), author: c.author, policy: st!.policy) else {
            return report.refused.append(.init(record: id, refusal: t.takedown
                ? .unauthorized(kind: "takedown", needs: "the owner's signature or a curator quorum")
                : .unauthorized(kind: "withdrawal", needs: "to be signed by the contribution's author")))
        }
        let (index, _) = try append(txn, .tombstone(.init(record: envelope, contribution: t.contribution, intake: intake)))
        try ledger.index.apply(txn, d, first: index, recordsHeld: true, [.tombstone(envelope, contribution: t.contribution, intake: intake)])
        report.tombstones.append((t.contribution, index))
    }

    /// A model leaf, with the consistency proof from the checkpoint it names to the log before
    /// it; refused when its builder holds no role for it or the checkpoint is not of this log.
    private func placeModel(_ txn: Transaction, _ envelope: Envelope, _ id: RecordID, _ m: ModelRecord) throws {
        let policy = st!.policy, size = st!.size
        guard policy.mayBuild(m.builder) else {
            return report.refused.append(.init(record: id, refusal: .notABuilder(key: m.builder.description, datanet: policy.name)))
        }
        if let why = try ledger.modelProblem(txn, m, log: log, size: size) {
            return report.refused.append(.init(record: id, refusal: .modelNamesAnotherLog(why)))
        }
        let proof = try log.consistencyProof(txn, size1: m.checkpointSize, size2: size)
        let (index, _) = try append(txn, .model(.init(record: envelope, proof: proof)))
        try ledger.index.apply(txn, d, first: index, recordsHeld: true, [.model(envelope)])
        report.models.append((id, index))
    }

    private func intake(_ txn: Transaction, _ envelope: Envelope, _ id: RecordID, _ c: Contribution) throws {
        let policy = st!.policy
        if !policy.mayContribute(c.author) {
            report.refused.append(.init(record: id, refusal: .notAContributor(author: c.author.description, datanet: policy.name)))
            return
        }
        let q = try ledger.index.quota(txn, d, author: KeyID(c.author))
        let (count, bytesUsed) = (q.count, q.bytes)
        if !policy.withinQuota(count: count, bytes: bytesUsed, adding: c.size) {
            report.refused.append(.init(record: id, refusal: .overQuota(author: c.author.description, count: count, bytes: bytesUsed)))
            return
        }
        let (index, hash) = try append(txn, .intake(.init(author: c.author, record: id, content: c.content, contribution: envelope)))
        let earlier = try ledger.index.apply(txn, d, first: index, recordsHeld: true, [.intake(envelope, c)])[0]
        let promise = try IntakePromise(datanet: d, index: index, leafHash: hash, record: id, key: key)
        try txn.put(ledger.promises, id, promise.encoded)
        report.intakes.append((id, index, promise))
        if let earlier {
            let reason = "duplicate of \(earlier.hex)"
            let (di, _) = try append(txn, .decision(.init(contribution: id, intake: index, accepted: false, reason: reason, reviews: .cited([]))))
            try ledger.index.apply(txn, d, first: di, recordsHeld: true, [.decision(intake: index, accepted: false, reviews: [])])
            report.decisions.append((id, di, false, reason))
        }
    }
}

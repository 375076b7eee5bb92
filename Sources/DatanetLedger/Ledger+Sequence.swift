import DatanetCBOR
import DatanetCrypto
import DatanetStore
import Foundation
import Glibc

extension Ledger {
    /// Sequences a Datanet's pending records and signs a checkpoint, all in one durable
    /// transaction (schema/log.md "Sequencing"):
    /// 1. policy records naming the policy in force and signed by the owner or a curator quorum
    ///    become policy leaves, in the order they were first seen;
    /// 2. contributions become intake leaves (with a signed intake promise); an exact duplicate
    ///    of an earlier contribution's content is rejected at once by a decision leaf;
    /// 3. every undecided contribution whose reviews settle it gets a decision leaf
    ///    (schema/curation.md);
    /// 4. the new root is signed by the sequencer key in force.
    /// Records that break a rule leave pending without a leaf and are listed in `refused`.
    public func sequence(_ d: Digest, key: SigningKey) throws -> SequenceReport {
        // One sequencer process per Datanet: an exclusive lock held for the whole run.
        let lockPath = Self.sequencerLockPath(store: store.directory, datanet: d)
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw LedgerRefusal.notSequencer("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw LedgerRefusal.notSequencer("another process is sequencing this Datanet (\(lockPath) is locked)")
        }
        let log = try MerkleLog(env: env, id: d, create: false)
        let leavesTable = try leavesTable(d, create: false)
        return try env.write { txn in
            var st = try state(txn, d)
            guard st.policy.sequencer == key.publicKey else {
                throw LedgerRefusal.notSequencer("this key is not the sequencer of \(st.policy.name) (that is \(st.policy.sequencer))")
            }
            try checkNotBehind(txn, st, key: key)
            var report = SequenceReport()
            func append(_ kind: LeafKind, _ payload: [UInt64: CBOR]) throws -> (UInt64, Digest) {
                let leaf = Leaf(datanet: d, kind: kind, policy: (st.policyIndex, st.policyLeafHash), payload: payload)
                let index = st.size
                let hash = try appendLeaf(txn, leaf, at: index, table: leavesTable, log: log)
                st.size += 1
                return (index, hash)
            }
            let queue = try pendingIDs(txn, d)
            var reviews = [(Digest, Review, [UInt8])]()
            var handedOver = false
            for id in queue where !handedOver {
                guard let bytes = try txn.get(records, id) else { continue }
                let envelope = try Envelope(encoded: bytes)
                switch try Record(envelope) {
                case .policy(let p):
                    do {
                        try checkPolicy(envelope, previous: p.previous, st: st)
                        let (index, hash) = try append(.policy, [1: .bytes(envelope.encoded)])
                        st.policyIndex = index; st.policyLeafHash = hash; st.policyRecord = id; st.policy = p.state
                        try txn.put(placed, id, d.bytes + Self.u64Bytes(index))
                        report.policies.append((id, index))
                    } catch let refusal as LedgerRefusal {
                        report.refused.append((id, refusal.description))
                    }
                    try removePending(txn, id)
                case .setSequencer(let h):
                    try removePending(txn, id)
                    do {
                        try checkPolicy(envelope, previous: h.previous, st: st)
                        let (index, hash) = try append(.setSequencer, [1: .bytes(envelope.encoded)])
                        st.policyIndex = index; st.policyLeafHash = hash; st.policyRecord = id; st.policy.sequencer = h.sequencer
                        try txn.put(placed, id, d.bytes + Self.u64Bytes(index))
                        report.policies.append((id, index))
                        // The handoff leaf is the old key's last: its checkpoint is signed by the
                        // old key, and everything after waits for the new sequencer.
                        handedOver = true
                    } catch let refusal as LedgerRefusal {
                        report.refused.append((id, refusal.description))
                    }
                case .contribution(let c):
                    try removePending(txn, id)
                    if let allowed = st.policy.contributors, !allowed.contains(c.author) {
                        report.refused.append((id, "author \(c.author) may not contribute under the policy in force"))
                        continue
                    }
                    let quotaKey = d.bytes + c.author.bytes
                    let (count, bytesUsed) = try txn.withValue(meta, quotaKey) { (Self.u64($0), Self.u64($0, at: 8)) } ?? (0, 0)
                    if count + 1 > st.policy.maxPendingProposals || bytesUsed + c.size > st.policy.maxPendingBytes {
                        report.refused.append((id, "author \(c.author) is over quota (\(count) undecided, \(bytesUsed) bytes)"))
                        continue
                    }
                    let (index, hash) = try append(.intake, [1: .bytes(c.author.bytes), 2: .bytes(id.bytes), 3: .bytes(c.content.bytes),
                                                             4: .bytes(envelope.encoded)])
                    try txn.put(placed, id, d.bytes + Self.u64Bytes(index))
                    let promise = try IntakePromise(datanet: d, index: index, leafHash: hash, record: id, key: key)
                    try txn.put(promises, id, promise.encoded)
                    report.intakes.append((id, index, promise))
                    let contentKey = d.bytes + c.content.bytes
                    if let earlier = try txn.get(contents, contentKey).flatMap(Digest.init(bytes:)) {
                        let reason = "duplicate of \(earlier.hex)"
                        let (di, _) = try append(.decision, [1: .bytes(id.bytes), 2: .unsigned(index), 3: .unsigned(0),
                                                             4: .string(reason), 5: .array([]), 6: .bytes(envelope.encoded)])
                        try txn.put(decided, id, Self.u64Bytes(di))
                        report.decisions.append((id, di, false, reason))
                    } else {
                        try txn.put(contents, contentKey, id)
                        // Intake index, size and author: what deciding needs, without decoding.
                        try txn.put(undecided, Self.key(d, 0) + id.bytes, Self.u64Bytes(index) + Self.u64Bytes(c.size) + c.author.bytes)
                        try txn.put(meta, quotaKey, Self.u64Bytes(count + 1) + Self.u64Bytes(bytesUsed + c.size))
                    }
                case .review(let r):
                    reviews.append((id, r, bytes))
                default:
                    try removePending(txn, id)
                    report.refused.append((id, "\(envelope.kind.rawValue) records are not sequenced from pending"))
                }
            }
            if !handedOver { try decide(txn, d, policy: st.policy, reviews: reviews, append: append, report: &report) }
            report.size = st.size
            report.checkpoint = try sign(txn, &st, log: log, key: key)
            return report
        }
    }

    /// The lock file that keeps a second sequencer of a Datanet out.
    public static func sequencerLockPath(store: String, datanet: Digest) -> String {
        store + "/sequencer-" + datanet.hex + ".lock"
    }

    func pendingIDs(_ txn: Transaction, _ d: Digest) throws -> [Digest] {
        var ids = [Digest]()
        try txn.scan(pending, from: d.bytes) { k, v in
            guard k.starts(with: d.bytes) else { return false }
            ids.append(Digest(v)!)
            return true
        }
        return ids
    }

    /// A policy record must name the policy in force and carry the owner's signature or a
    /// quorum of the curators in force.
    func checkPolicy(_ envelope: Envelope, previous: Digest, st: DatanetState) throws {
        guard previous == st.policyRecord else {
            throw LedgerRefusal.stalePolicy(names: previous.hex, inForce: st.policyRecord.hex)
        }
        let signers = try envelope.verifiedSigners()
        if signers.contains(st.policy.owner) { return }
        let curators = signers.filter { st.policy.curators.contains($0) }.count
        guard curators >= st.policy.quorum else {
            throw LedgerRefusal.quorumNotMet("policy change lacks a quorum: \(curators) curator signature(s), \(st.policy.quorum) needed, or the owner's")
        }
    }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What one `sequence` run did.
public struct SequenceReport: Sendable {
    public var intakes: [(record: Digest, index: UInt64, promise: IntakePromise)] = []
    public var decisions: [(contribution: Digest, index: UInt64, accepted: Bool, reason: String)] = []
    public var policies: [(record: Digest, index: UInt64)] = []
    /// Contributions withdrawn or taken down, with their tombstone leaf.
    public var tombstones: [(contribution: Digest, index: UInt64)] = []
    /// Records taken out of pending without a leaf, and why.
    public var refused: [Refused] = []

    /// A record the sequencer took out of pending without a leaf.
    public struct Refused: Sendable {
        public let record: Digest
        public let refusal: LedgerRefusal
        /// The refusal in words.
        public var reason: String { refusal.description }
    }
    public var size: UInt64 = 0
    public var checkpoint = ""
}

extension Ledger {
    /// Stores a verified genesis and, when this node holds the sequencer key, starts the log:
    /// leaf 0 is the policy leaf carrying the genesis, followed by a signed checkpoint.
    @discardableResult
    public func create(genesis envelope: Envelope, sequencerKey: SigningKey?) throws -> Digest {
        guard case .genesis(let g) = try Record.verified(envelope) else { throw LedgerRefusal.record(.malformed("not a genesis record")) }
        let d = envelope.id
        if let key = sequencerKey, key.publicKey != g.policy.sequencer {
            throw LedgerRefusal.notSequencer(key: key.publicKey.description, sequencer: g.policy.sequencer.description)
        }
        let log = try merkleLog(d)
        let leaves = try leafTable(d)
        // One transaction: the record, and with the sequencer's key its first leaf and checkpoint.
        try env.write { txn in
            guard try !txn.contains(state, d) else { throw LedgerRefusal.datanetExists(d.hex) }
            try txn.put(records, d, envelope.encoded)
            guard let key = sequencerKey else { return }
            let leaf = Leaf(datanet: d, policy: nil, payload: .policy(envelope))
            let hash = try appendLeaf(txn, leaf, at: 0, table: leaves, log: log)
            try index.apply(txn, d, first: 0, [.governing(envelope)])
            var st = DatanetState(id: d, size: 1, policyIndex: 0, policyLeafHash: hash, policyRecord: d, policy: g.policy)
            try sign(txn, &st, log: log, key: key)
        }
        return d
    }

    /// Stores leaf `index` and appends its hash to the Merkle log; the leaf is encoded once.
    func appendLeaf(_ txn: Transaction, _ leaf: Leaf, at index: UInt64, table: LeafTable, log: MerkleLog) throws -> Digest {
        let bytes = leaf.encoded
        let hash = Merkle.leafHash(bytes)
        try appendLeaves(txn, [(bytes, hash)], at: index, table: table, log: log)
        return hash
    }

    /// Stores encoded leaves from `index` on and appends their hashes to the Merkle log.
    func appendLeaves(_ txn: Transaction, _ leaves: [(encoded: [UInt8], hash: Digest)], at index: UInt64, table: LeafTable, log: MerkleLog) throws {
        try table.put(txn, from: index, leaves)
        try log.append(txn, leafHashes: leaves.map(\.hash), size: index)
    }

    /// Signs and stores the checkpoint for the state's size, in the caller's transaction, so a
    /// crash leaves either the leaves and their checkpoint or neither.
    @discardableResult
    func sign(_ txn: Transaction, _ st: inout DatanetState, log: MerkleLog, key: SigningKey) throws -> String {
        let root = try log.root(txn, size: st.size)
        let note = try Checkpoint(origin: Checkpoint.origin(of: st.id), size: st.size, root: root).signed(by: key)
        try txn.put(checkpoints, BigEndian.key(st.id, st.size), Array(note.utf8))
        try txn.put(state, st.id, st.encoded)
        return note
    }

    /// Takes a signed record into this node's pending set after checking it: canonical, signed
    /// as its kind requires, for a Datanet this store follows, not already pending or placed.
    @discardableResult
    public func propose(_ envelope: Envelope) throws -> Digest {
        try env.write { txn in try propose(txn, envelope, try Record.verified(envelope)) }
    }

    /// Proposes many records in one transaction (all or none), verifying signatures first on
    /// every core.
    public func propose(all envelopes: [Envelope]) throws {
        let records = try Parallel.map(envelopes, grain: 16) { try Record.verified($0) }
        try env.write { txn in
            for (e, r) in zip(envelopes, records) { _ = try propose(txn, e, r) }
        }
    }

    func propose(_ txn: Transaction, _ envelope: Envelope, _ record: Record) throws -> Digest {
        guard let d = record.datanet else { throw LedgerRefusal.notProposable("a genesis is created, not proposed") }
        let id = envelope.id
        let st = try state(txn, d)
        if case .review(let r) = record, !st.policy.mayReview(r.reviewer) {
            throw LedgerRefusal.notACurator(reviewer: r.reviewer.description, datanet: st.policy.name)
        }
        if case .contribution(let c) = record, !st.policy.mayContribute(c.author) {
            throw LedgerRefusal.notAContributor(author: c.author.description, datanet: st.policy.name)
        }
        if try txn.contains(placed, id) { throw LedgerRefusal.alreadyTaken(record: id.hex, pending: false) }
        if try isPending(txn, id) { throw LedgerRefusal.alreadyTaken(record: id.hex, pending: true) }
        // Policy records may gather signatures after they are first proposed: keep the union.
        var stored = envelope
        if let old = try txn.get(records, id) { stored = try Envelope(encoded: old).merging(envelope) }
        let bytes = stored.encoded
        guard bytes.count <= Envelope.maximumSize else {
            throw LedgerRefusal.record(.malformed("envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize)"))
        }
        try txn.put(records, id, bytes)
        if case .contribution(let c) = record { try flagNearDuplicate(txn, id, c) }
        let seq = try nextSequence(txn)
        // The record rides along in the queue, so sequencing reads it in arrival order.
        try txn.put(pending, BigEndian.key(d, seq), id.bytes + bytes)
        try txn.put(pendingIndex, id, BigEndian.key(d, seq))
        return id
    }

    /// Adds signatures to a record already pending (a curator quorum collecting on a policy).
    public func addSignatures(_ envelope: Envelope) throws {
        _ = try envelope.verifiedSigners()
        try env.write { txn in
            guard try mergeSignatures(txn, envelope) != nil else {
                throw LedgerRefusal.notPending(record: envelope.id.hex)
            }
        }
    }

    /// Merges the signatures of `envelope` (already verified) into the pending copy of its
    /// record; returns how many were new, or nil when the record is not pending here.
    func mergeSignatures(_ txn: Transaction, _ envelope: Envelope) throws -> Int? {
        guard let old = try txn.get(records, envelope.id), try isPending(txn, envelope.id) else { return nil }
        let held = try Envelope(encoded: old)
        let merged = try held.merging(envelope)
        let added = merged.signatures.count - held.signatures.count
        guard added > 0 else { return 0 }
        let bytes = merged.encoded
        guard bytes.count <= Envelope.maximumSize else {
            throw LedgerRefusal.record(.malformed("envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize)"))
        }
        try txn.put(records, envelope.id, bytes)
        if let k = try txn.get(pendingIndex, envelope.id) { try txn.put(pending, k, envelope.id.bytes + bytes) }
        return added
    }

    func nextSequence(_ txn: Transaction) throws -> UInt64 {
        let k = Array("pending-seq".utf8)
        let n: UInt64 = try txn.withValue(meta, k) { v -> UInt64 in try LogIndex.check(v, 8, meta.name, k); return BigEndian.u64(v) } ?? 0
        try txn.put(meta, k, BigEndian.bytes(n + 1))
        return n
    }

    /// Takes a record out of pending, given its pending key. Its `pending-index` entry stays
    /// (one per record ever proposed, like `records`): deleting it would be a write at a random
    /// key for every record sequenced.
    func removePending(_ txn: Transaction, _ key: [UInt8]) throws {
        try txn.delete(pending, key)
    }

    /// A pending entry's record bytes: carried in the entry (record id ‖ envelope), or, for an
    /// entry that holds only the id, read from `records`.
    func pendingRecord(_ txn: Transaction, _ value: UnsafeRawBufferPointer, key: some Collection<UInt8>) throws -> (Digest, [UInt8]?) {
        guard let id = Digest(UnsafeRawBufferPointer(rebasing: value.prefix(32))) else {
            throw LedgerError.corruptEntry(table: pending.name, key: Hex.encode(Array(key)), why: "value is \(value.count) bytes, shorter than a record id")
        }
        return (id, value.count > 32 ? Array(value[32...]) : try txn.get(records, id))
    }
}

extension Envelope {
    /// This envelope with the other's signatures added (same kind and body).
    func merging(_ other: Envelope) throws -> Envelope {
        guard other.kind == kind, other.body == body else { throw RecordError.malformed("cannot merge different records") }
        var out = self
        for s in other.signatures where !out.signatures.contains(where: { $0.key == s.key }) { out.add(s) }
        return out
    }
}

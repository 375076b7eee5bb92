import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What one `sequence` run did.
public struct SequenceReport: Sendable {
    public var intakes: [(record: RecordID, index: UInt64, promise: IntakePromise)] = []
    public var decisions: [(contribution: RecordID, index: UInt64, accepted: Bool, reason: String)] = []
    public var policies: [(record: RecordID, index: UInt64)] = []
    /// Contributions withdrawn or taken down, with their tombstone leaf.
    public var tombstones: [(contribution: RecordID, index: UInt64)] = []
    /// Models registered, with their model leaf.
    public var models: [(record: RecordID, index: UInt64)] = []
    /// Records taken out of pending without a leaf, and why.
    public var refused: [Refused] = []
    /// Contributions left pending because their author is over quota: taken in by a later run,
    /// once earlier ones are decided (count and bytes undecided now).
    public var deferred: [(record: RecordID, count: UInt64, bytes: UInt64)] = []

    /// A record the sequencer took out of pending without a leaf.
    public struct Refused: Sendable {
        public let record: RecordID
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
    public func create(genesis envelope: Envelope, sequencerKey: SigningKey?) throws -> DatanetID {
        let record = try Record.verified(envelope)
        guard case .genesis(let g) = record else { throw LedgerRefusal.record(.malformed("not a genesis record")) }
        try record.checkKeysUsable()
        let d = DatanetID(genesis: envelope.id)
        if let key = sequencerKey, key.publicKey != g.policy.sequencer {
            throw LedgerRefusal.notSequencer(key: key.publicKey.description, sequencer: g.policy.sequencer.description)
        }
        let log = try merkleLog(d)
        let leaves = try leafTable(d)
        // One transaction: the record, and with the sequencer's key its first leaf and checkpoint.
        try env.write { txn in
            guard try !txn.contains(state, d) else { throw LedgerStateError.datanetExists(d.hex) }
            try txn.put(records, envelope.id, envelope.encoded)
            guard let key = sequencerKey else { return }
            let leaf = Leaf(datanet: d, policy: nil, payload: .policy(envelope))
            let hash = try appendLeaf(txn, leaf, at: 0, table: leaves, log: log)
            try index.apply(txn, d, first: 0, recordsHeld: true, [.governing(envelope)])
            var st = DatanetState(id: d, size: 1, policyIndex: 0, policyLeafHash: hash, policyRecord: envelope.id, policy: g.policy)
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

    /// A pending entry's record bytes: carried in the entry (record id ‖ envelope), or, for an
    /// entry that holds only the id, read from `records`.
    func pendingRecord(_ txn: Transaction, _ value: UnsafeRawBufferPointer, key: some Collection<UInt8>) throws -> (RecordID, [UInt8]?) {
        guard let id = RecordID(UnsafeRawBufferPointer(rebasing: value.prefix(32))) else {
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

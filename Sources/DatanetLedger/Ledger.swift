import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// The signed records and Datanet logs of one store (schema/log.md).
///
/// Tables: `records` (id → envelope), `state` (Datanet → DatanetState), `pending` (Datanet ‖
/// sequence number → record id ‖ envelope, in the order this node first saw them), `pending-index`
/// (record id → the pending key it was last given; pending only while that key is in
/// `pending`), `placed` (record id → Datanet ‖ leaf index of its intake or policy leaf),
/// `undecided` (Datanet ‖ intake index → contribution id ‖ size ‖ author), `decided` (Datanet ‖
/// intake index → decision leaf index), `contents` (Datanet ‖ content id → earliest
/// contribution id), `checkpoints` (Datanet ‖ size → signed note), `promises` (record id →
/// intake promise), `log-leaves` (Datanet ‖ index → leaf) and `log-nodes` (Datanet ‖ position
/// → Merkle node; MerkleLog.swift).
/// Sequencing writes only keys that grow with the log (intake index, leaf index, pending
/// order), so its transactions touch few pages however large the indexes are.
public final class Ledger: @unchecked Sendable {
    public let store: ObjectStore
    var env: Environment { store.env }
    let records, state, pending, pendingIndex, placed, undecided, decided, contents, checkpoints, promises, meta: Table
    /// MinHash signatures (Datanet ‖ contribution → 128 × u64) and near-duplicate flags.
    let minhashes, nearDuplicates: Table
    /// MinHash band index (Datanet ‖ band ‖ band hash ‖ contribution → empty), NearDuplicates.swift.
    let minhashBands: Table?
    /// Checkpoints received from elsewhere (Datanet ‖ size → note) and fork evidence.
    let observed, forks: Table
    /// Erasable sidecars (hash → bytes).
    let sidecars: Table
    /// Datanets this store's user trusts as anchors for `verify` (Datanet id → empty).
    let pins: Table
    /// Contributions under a tombstone (Datanet ‖ intake index → tombstone leaf index).
    let tombstones: Table
    /// What tombstones erased, for good (Erasures.swift); nil on a read-only open of a store
    /// made before it.
    let erasures: Table?
    /// Every Datanet's leaves and Merkle nodes; nil on a read-only open of a store made before them.
    let sharedLog: (leaves: Table, nodes: Table)?
    /// Datanets whose log is still in tables of their own (only on a read-only open of a store
    /// made before the shared tables: a writable open moves them).
    let legacyLogs: Set<DatanetID>

    /// Whether a writable open would upgrade this store's layout (only a read-only open sees it).
    public var needsUpgrade: Bool { !legacyLogs.isEmpty || sharedLog == nil || minhashBands == nil || erasures == nil }

    /// Opens the ledger tables of a store, creating them and upgrading an older layout unless
    /// `create` is false: then nothing is written, no writer is waited for (read commands open
    /// so), an older layout is read in place, and a store that never held a ledger throws
    /// `LedgerRefusal.noLedger`.
    public init(store: ObjectStore, create: Bool = true) throws {
        self.store = store
        let t: [Table]
        do {
            t = try store.env.openTables(["records", "state", "pending", "pending-index", "placed", "undecided",
                                          "decided", "contents", "checkpoints", "promises", "ledger-meta",
                                          "minhash", "near-duplicates", "observed", "forks", "sidecars", "pins", "tombstones"], create: create)
        } catch LMDBError.notFound where !create {
            throw LedgerRefusal.noLedger
        }
        (records, state, pending, pendingIndex, placed, undecided) = (t[0], t[1], t[2], t[3], t[4], t[5])
        (decided, contents, checkpoints, promises, meta) = (t[6], t[7], t[8], t[9], t[10])
        (minhashes, nearDuplicates, observed, forks, sidecars, pins) = (t[11], t[12], t[13], t[14], t[15], t[16])
        tombstones = t[17]
        // Added after format 1 shipped: created (and filled from the signatures) on a writable
        // open; a read-only open of an older store goes on without it.
        minhashBands = create ? try store.env.openTables(["minhash-bands"], create: true)[0]
                              : try? store.env.openTables(["minhash-bands"], create: false)[0]
        erasures = create ? try store.env.openTables(["erasures"], create: true)[0]
                          : try? store.env.openTables(["erasures"], create: false)[0]
        let shared = create ? try store.env.openTables([LeafTable.tableName, MerkleLog.tableName], create: true)
                            : try? store.env.openTables([LeafTable.tableName, MerkleLog.tableName], create: false)
        sharedLog = shared.map { ($0[0], $0[1]) }
        let legacy = try Self.legacyLogs(store.env)
        legacyLogs = create ? [] : legacy
        if create {
            try migrateLogTables(legacy)
            try indexMinHashBands()
            try fillErasures()
        }
    }

    // MARK: Reading

    /// A record by id.
    public func record(_ id: RecordID) throws -> Envelope? {
        try env.read { txn in try txn.decoded(records, id.bytes, Envelope.init(encoded:)) }
    }

    /// The state of a Datanet this store follows.
    public func state(of d: DatanetID) throws -> DatanetState {
        try env.read { txn in try state(txn, d) }
    }

    func state(_ txn: Transaction, _ d: DatanetID) throws -> DatanetState {
        guard let st = try txn.decoded(state, d.bytes, DatanetState.init(encoded:)) else { throw LedgerRefusal.unknownDatanet(d.hex) }
        return st
    }

    /// Every Datanet this store has a log of.
    public func datanets() throws -> [DatanetState] {
        try env.read { txn in
            var out = [DatanetState]()
            try txn.scan(state) { k, v in out.append(try LogIndex.decode(state.name, Array(k), Array(v), DatanetState.init(encoded:))); return true }
            return out
        }
    }

    /// Resolves a Datanet by unique hex prefix of its id or by exact name.
    public func resolveDatanet(_ text: String) throws -> DatanetState {
        let all = try datanets()
        let lower = text.lowercased()
        let matches = all.filter { $0.id.hex.hasPrefix(lower) || $0.policy.name == text }
        guard !matches.isEmpty else { throw LedgerRefusal.unknownDatanet(text) }
        guard matches.count == 1 else { throw LedgerRefusal.ambiguousDatanet(text, matches: matches.count) }
        return matches[0]
    }

    /// Pending records of a Datanet, in the order this node first saw them.
    public func pendingRecords(_ d: DatanetID) throws -> [Envelope] {
        try env.read { txn in
            var out = [Envelope]()
            try txn.scanNumbered(pending, d) { n, v in
                let key = BigEndian.key(d, n)
                if let e = try pendingRecord(txn, v, key: key).1 { out.append(try LogIndex.decode(pending.name, key, e, Envelope.init(encoded:))) }
                return true
            }
            return out
        }
    }

    /// Contributions taken into the log and not yet decided (what curators have to review),
    /// in intake order.
    public func undecidedContributions(_ d: DatanetID) throws -> [(intake: UInt64, id: RecordID)] {
        try env.read { txn in
            var out = [(intake: UInt64, id: RecordID)]()
            try txn.scanNumbered(undecided, d) { intake, v in
                out.append((intake, try index.undecided(v, d, intake).contribution))
                return true
            }
            return out
        }
    }

    /// Leaves from index `from` on.
    public func leaves(_ d: DatanetID, from: UInt64 = 0) throws -> [(index: UInt64, leaf: Leaf)] {
        let table = try leafTable(d)
        return try env.read { txn in
            var out = [(UInt64, Leaf)]()
            try table.scan(txn, from: from) { i, v in
                out.append((i, try LogIndex.decode(table.table.name, BigEndian.key(d, i), Array(v), Leaf.init(encoded:))))
                return true
            }
            return out
        }
    }

    /// The newest signed checkpoint of a Datanet, if any.
    public func latestCheckpoint(_ d: DatanetID) throws -> String? {
        try env.read { txn in try latestCheckpointNote(txn, d) }
    }

    /// Every checkpoint this node signed for a Datanet, oldest first.
    public func checkpoints(_ d: DatanetID) throws -> [(size: UInt64, note: String)] {
        try env.read { txn in
            var out = [(UInt64, String)]()
            try txn.scanNumbered(checkpoints, d) { size, v in
                out.append((size, String(decoding: v, as: UTF8.self)))
                return true
            }
            return out
        }
    }

    /// The intake promise the sequencer gave for a contribution, if any.
    public func promise(_ record: RecordID) throws -> IntakePromise? {
        try env.read { txn in try txn.decoded(promises, record.bytes, IntakePromise.init(encoded:)) }
    }

    /// Where a record sits in its log: (Datanet, leaf index of its intake or policy leaf).
    public func placement(_ record: RecordID) throws -> (DatanetID, UInt64)? {
        try env.read { txn in try index.placement(txn, record).map { ($0.datanet, $0.index) } }
    }

    /// The decision leaf index of a contribution, if decided.
    public func decision(_ contribution: RecordID) throws -> UInt64? {
        try env.read { txn in try decision(txn, contribution) }
    }

    func decision(_ txn: Transaction, _ contribution: RecordID) throws -> UInt64? {
        guard let p = try index.placement(txn, contribution) else { return nil }
        return try index.number(txn, decided, p.datanet, p.index)
    }


    /// The tombstone leaf index of a contribution, if it was withdrawn or taken down.
    public func tombstone(_ contribution: RecordID) throws -> UInt64? {
        try env.read { txn in try tombstone(txn, contribution) }
    }

    func tombstone(_ txn: Transaction, _ contribution: RecordID) throws -> UInt64? {
        guard let p = try index.placement(txn, contribution) else { return nil }
        return try index.number(txn, tombstones, p.datanet, p.index)
    }

    /// The contribution a tombstone names, if it is in this Datanet's log here: (intake index, contribution).
    func tombstoneTarget(_ txn: Transaction, _ d: DatanetID, _ t: Tombstone) throws -> (UInt64, Contribution)? {
        guard let p = try index.placement(txn, t.contribution), p.datanet == d,
              let bytes = try txn.get(records, t.contribution), case .contribution(let c) = try Record(Envelope(encoded: bytes)) else { return nil }
        return (p.index, c)
    }

    /// Whether a record is pending here: its last pending key is still in `pending`.
    func isPending(_ txn: Transaction, _ id: RecordID) throws -> Bool {
        guard let k = try txn.get(pendingIndex, id) else { return false }
        return try txn.contains(pending, k)
    }
}

extension Ledger {
    /// Ids of stored records starting with a hex prefix (at most two are returned).
    public func recordIDs(prefix text: String) throws -> [RecordID] {
        let lower = text.lowercased()
        guard !lower.isEmpty, lower.utf8.count <= 64, lower.utf8.allSatisfy({ Hex.nibble($0) != nil }) else {
            throw StoreError.badId(text)
        }
        var start = Hex.decode(String(lower.prefix(lower.utf8.count & ~1))) ?? []
        if lower.utf8.count % 2 == 1 { start.append(Hex.nibble(lower.utf8.last!)! << 4) }
        var out = [RecordID]()
        try env.read { txn in
            try txn.scan(records, from: start) { k, _ in
                guard let d = RecordID(k), d.hex.hasPrefix(lower) else { return false }
                out.append(d)
                return out.count < 2
            }
        }
        return out
    }
}

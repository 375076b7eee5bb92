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
    /// One row per contribution taken in (ContributionRows.swift); nil on a read-only open of a
    /// store made before it.
    let contributionRows: Table?
    /// Each Datanet's pending records as reconciled (PendingItems.swift), and the records this
    /// node refused for good (PendingExpiry.swift); nil on a read-only open of a store made before them.
    let pendingItems: Table?, refused: Table?
    /// Every Datanet's leaves and Merkle nodes; nil on a read-only open of a store made before them.
    let sharedLog: (leaves: Table, nodes: Table)?
    /// Datanets whose log is still in tables of their own (only on a read-only open of a store
    /// made before the shared tables: a writable open moves them).
    let legacyLogs: Set<DatanetID>
    /// The store's queue bound (QueuedBytes.swift), read once from its settings when opened:
    /// a bad setting fails the first proposal, not a read.
    let queueBound: Result<UInt64, any Error>
    /// The store's bound on queued records of any kind (QueuedBytes.swift), read once.
    let queueRecordBound: Result<Int, any Error>

    /// Whether a writable open would upgrade this store's layout (only a read-only open sees it).
    public var needsUpgrade: Bool { !legacyLogs.isEmpty || sharedLog == nil || minhashBands == nil || erasures == nil || pendingItems == nil }

    /// Opens the ledger tables of a store, creating them and upgrading an older layout unless
    /// `create` is false: then nothing is written, no writer is waited for (read commands open
    /// so), an older layout is read in place, and a store that never held a ledger throws
    /// `LedgerStateError.noLedger`.
    public init(store: ObjectStore, create: Bool = true) throws {
        self.store = store
        queueBound = Result { try Self.maxQueuedBytes(storeDirectory: store.directory) }
        queueRecordBound = Result { try Self.maxQueuedRecords(storeDirectory: store.directory) }
        let t: [Table]
        do {
            t = try store.env.openTables(["records", "state", "pending", "pending-index", "placed", "undecided",
                                          "decided", "contents", "checkpoints", "promises", "ledger-meta",
                                          "minhash", "near-duplicates", "observed", "forks", "sidecars", "pins", "tombstones"], create: create)
        } catch LMDBError.notFound where !create {
            throw LedgerStateError.noLedger
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
        contributionRows = create ? try store.env.openTables(["contribution-rows"], create: true)[0]
                                  : try? store.env.openTables(["contribution-rows"], create: false)[0]
        var sets = create ? try store.env.openTables([SumTree.tableName, "refused"], create: true)
                          : try? store.env.openTables([SumTree.tableName, "refused"], create: false)
        // A read-only open of a store whose trees were never filled (an upgrade cut short) reads
        // the queue instead of an empty tree.
        if !create, try !store.env.read({ txn in try txn.contains(t[10], Self.pendingItemsFilled) }) { sets = nil }
        (pendingItems, refused) = (sets?[0], sets?[1])
        let shared = create ? try store.env.openTables([LeafTable.tableName, MerkleLog.tableName], create: true)
                            : try? store.env.openTables([LeafTable.tableName, MerkleLog.tableName], create: false)
        sharedLog = shared.map { ($0[0], $0[1]) }
        let legacy = try Self.legacyLogs(store.env)
        legacyLogs = create ? [] : legacy
        if create {
            try migrateLogTables(legacy)
            try indexMinHashBands()
            try fillErasures()
            try fillContributionRows()
            try fillPendingItems()
        }
    }

    /// Whether `store` holds a ledger's tables yet (a writable open of one that does not
    /// creates them).
    public static func exists(in store: ObjectStore) throws -> Bool {
        do { _ = try store.env.openTables(["records"], create: false) } catch LMDBError.notFound { return false }
        return true
    }

    /// Deletes the ledger's tables when nothing but their creation was ever written (every table
    /// empty but the markers in `ledger-meta`): a command that made them on a fresh store and
    /// then failed leaves that store as it found it. False, with nothing changed, otherwise.
    public func dropIfUnused() throws -> Bool {
        var tables = [records, state, pending, pendingIndex, placed, undecided, decided, contents, checkpoints, promises,
                      minhashes, nearDuplicates, observed, forks, sidecars, pins, tombstones]
        tables += [minhashBands, erasures, contributionRows, pendingItems, refused].compactMap { $0 }
        if let (leaves, nodes) = sharedLog { tables += [leaves, nodes] }
        return try env.write { txn in
            for t in tables where try txn.count(t) > 0 { return false }
            for t in tables + [meta] { try txn.drop(t) }
            return true
        }
    }

    // MARK: Reading

    func state(_ txn: Transaction, _ d: DatanetID) throws -> DatanetState {
        guard let st = try txn.decoded(state, d.bytes, DatanetState.init(encoded:)) else { throw LedgerStateError.unknownDatanet(d.hex) }
        return st
    }

    func decision(_ txn: Transaction, _ contribution: RecordID) throws -> UInt64? {
        guard let p = try index.placement(txn, contribution) else { return nil }
        return try index.number(txn, decided, p.datanet, p.index)
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
}

import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Glibc

/// One Datanet's leaves: in the table every Datanet shares (`log-leaves`) under
/// `datanet ‖ big-endian index`, or, in a store not yet migrated, in a table of its own
/// (`leaves:<id>`) under the index alone (read-only; `Ledger.migrateLogTables` moves them).
struct LeafTable {
    let table: Table
    /// nil for a legacy table of the Datanet's own.
    let datanet: DatanetID?

    static let tableName = "log-leaves"
    static func legacyTableName(_ d: DatanetID) -> String { "leaves:" + d.hex }

    private func key(_ index: UInt64) -> [UInt8] { datanet.map { BigEndian.key($0, index) } ?? BigEndian.bytes(index) }

    /// Leaf `index`, if stored.
    func get(_ txn: Transaction, _ index: UInt64) throws -> [UInt8]? {
        try txn.get(table, key(index))
    }

    /// Leaf `index` decoded, if stored; bytes that do not decode are damage naming the table and key.
    func leaf(_ txn: Transaction, _ index: UInt64) throws -> Leaf? {
        guard let bytes = try get(txn, index) else { return nil }
        return try decode(index, bytes)
    }

    /// Stored leaf bytes decoded; a failure is damage naming the table and key.
    func decode(_ index: UInt64, _ bytes: [UInt8]) throws -> Leaf {
        try LogIndex.decode(table.name, key(index), bytes, Leaf.init(encoded:))
    }

    /// Leaf `index` read as listings read it (`summary`), if stored.
    func withSummary(_ txn: Transaction, _ index: UInt64) throws -> LeafSummary? {
        try txn.withValue(table, key(index)) { try summary(index, $0) }
    }

    /// Calls `body` with leaf `index`'s stored bytes, borrowed for the call; nil if not stored.
    func withBytes<R>(_ txn: Transaction, _ index: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        try txn.withValue(table, key(index), body)
    }

    /// Leaf `index` read as listings read it, looked up with `cursor` (open on this table): a
    /// run of ascending indexes, such as a block of rows' decisions, searches a page per leaf.
    func withSummary(_ cursor: borrowing Cursor, _ index: UInt64) throws -> LeafSummary? {
        guard let d = datanet else { return try cursor.withValue(BigEndian.bytes(index)) { try summary(index, $0) } }
        return try cursor.withValue(DigestNumberKey(d, index)) { try summary(index, $0) }
    }

    /// Stored leaf bytes read as listings read them; a failure is damage naming the table and key.
    func summary(_ index: UInt64, _ bytes: UnsafeRawBufferPointer) throws -> LeafSummary {
        do { return try LeafSummary(encoded: bytes) } catch {
            throw LedgerError.corruptEntry(table: table.name, key: Hex.encode(key(index)), why: "\(error)")
        }
    }

    /// Stores leaves from `index` on; a leaf already stored at or past `index` is a damaged
    /// log (leaves are written once), checked once for the run.
    func put(_ txn: Transaction, from index: UInt64, _ leaves: [(encoded: [UInt8], hash: Digest)]) throws {
        guard let d = datanet else { throw LedgerError.corruptLog("the leaves of a store not yet migrated are read-only") }
        if let last = try txn.lastKey(table, prefix: d.bytes), last.count == 40, BigEndian.u64(last, at: 32) >= index {
            throw LedgerError.corruptLog("leaf \(BigEndian.u64(last, at: 32)) of \(d.hex) is stored before leaf \(index) is appended")
        }
        // Keys ascend within this Datanet's range, so one cursor finds each next page at hand.
        try txn.withCursor(table) { c in
            for (i, leaf) in leaves.enumerated() { try c.put(DigestNumberKey(d, index + UInt64(i)), leaf.encoded) }
        }
    }

    /// Visits leaves in index order from `from`; `body` gets each index and borrowed bytes and
    /// returns false to stop. A key of the wrong length is a damaged table.
    func scan(_ txn: Transaction, from: UInt64 = 0, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Bool) throws {
        let width = datanet == nil ? 8 : 40
        let prefix = datanet?.bytes ?? []
        try txn.scan(table, from: key(from)) { k, v in
            if !prefix.isEmpty, k.count < 32 || prefix.withUnsafeBytes({ memcmp($0.baseAddress!, k.baseAddress!, 32) }) != 0 { return false }
            guard k.count == width else { throw LedgerError.corruptLog("a key in \(table.name) is \(k.count) bytes, not \(width)") }
            return try body(BigEndian.u64(k, at: width - 8), v)
        }
    }
}

extension Ledger {
    /// The leaves of Datanet `d`.
    func leafTable(_ d: DatanetID) throws -> LeafTable {
        if legacyLogs.contains(d) {
            return LeafTable(table: try env.openTables([LeafTable.legacyTableName(d)], create: false)[0], datanet: nil)
        }
        guard let shared = sharedLog else { throw LedgerStateError.unknownDatanet(d.hex) }
        return LeafTable(table: shared.leaves, datanet: d)
    }

    /// The Merkle log of Datanet `d`.
    func merkleLog(_ d: DatanetID) throws -> MerkleLog {
        if legacyLogs.contains(d) {
            return MerkleLog(legacy: try env.openTables([MerkleLog.legacyTableName(d)], create: false)[0])
        }
        guard let shared = sharedLog else { throw LedgerStateError.unknownDatanet(d.hex) }
        return MerkleLog(table: shared.nodes, id: d)
    }

    /// Datanets whose log is still in tables of their own (`leaves:<id>`, `log:<id>`).
    static func legacyLogs(_ env: Environment) throws -> Set<DatanetID> {
        try env.read { txn in
            var out = Set<DatanetID>()
            for name in try txn.tableNames(prefix: "leaves:") + txn.tableNames(prefix: "log:") {
                if let colon = name.firstIndex(of: ":"), let d = DatanetID(hex: String(name[name.index(after: colon)...])) { out.insert(d) }
            }
            return out
        }
    }

    /// Moves every log kept in tables of its own into the shared tables (at most 100,000
    /// entries per transaction), then drops the old tables. Stores made before the shared tables
    /// could hold at most about 120 Datanets (LMDB's limit of named tables). A crash part-way
    /// leaves the old table in place, and it stays the one read until the next open copies
    /// it again (the copy overwrites the same keys with the same bytes).
    func migrateLogTables(_ datanets: Set<DatanetID>) throws {
        guard let shared = sharedLog else { return }
        for d in datanets.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            for (name, target) in [(LeafTable.legacyTableName(d), shared.leaves), (MerkleLog.legacyTableName(d), shared.nodes)] {
                guard let old = try? env.openTables([name], create: false)[0] else { continue }
                var from: [UInt8]?
                repeat {
                    let start = from
                    from = try env.write { txn in
                        var copied = 0
                        var next: [UInt8]?
                        try txn.scan(old, from: start) { k, v in
                            guard copied < 100_000 else { next = Array(k); return false }
                            guard k.count == 8 else { throw LedgerError.corruptLog("a key in \(name) is \(k.count) bytes, not 8") }
                            try txn.put(target, d.bytes + Array(k), Array(v))
                            copied += 1
                            return true
                        }
                        return next
                    }
                } while from != nil
                try env.write { txn in try txn.drop(old) }
            }
        }
    }
}

import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Testing

/// One apply path: a log sequenced in one store and the same log imported by bundle into
/// another (at once, or in steps) give byte-identical log-derived tables. The tables that
/// legitimately differ are the ones `LogTable` leaves out: pending, pending-index, promises,
/// minhash, minhash-bands, near-duplicates, observed, forks, pins, sidecars and object roots.
@Suite struct LogTablesTests {
    static func tables(_ l: Ledger, _ d: DatanetID) throws -> [LogTable: [([UInt8], [UInt8])]] {
        try l.env.read { txn in try l.logTables(txn, d) }
    }

    static func expectSame(_ a: [LogTable: [([UInt8], [UInt8])]], _ b: [LogTable: [([UInt8], [UInt8])]], _ what: String) {
        for t in LogTable.allCases {
            let x = a[t] ?? [], y = b[t] ?? []
            #expect(x.count == y.count, "\(what): \(t.rawValue) has \(x.count) entries here, \(y.count) there")
            for (p, q) in zip(x, y) where p.0 != q.0 || p.1 != q.1 {
                Issue.record("\(what): \(t.rawValue) differs at key \(Hex.encode(p.0)) / \(Hex.encode(q.0))")
                break
            }
        }
    }

    @Test func sequencedAndImportedLogsHaveTheSameTables() throws {
        // A peer following along imports what each run added, as it is made.
        let steps = try BundleTests.Peer()
        var imported = 0
        let log = try EveryKindLog { w in
            let from = (try? steps.ledger.reader.state(of: w.datanet).size) ?? 0
            try BundleTests.importBytes(steps.ledger, try BundleTests.export(w.ledger, w.datanet, since: from))
            imported += 1
        }
        let w = log.world
        #expect(imported >= 6)
        let here = try Self.tables(w.ledger, w.datanet)
        // Every kind, with content: nothing in these tables is empty.
        for t in LogTable.allCases { #expect(!(here[t] ?? []).isEmpty, "\(t.rawValue) is empty in the sequencing store") }
        Self.expectSame(here, try Self.tables(steps.ledger, w.datanet), "bundles in steps")
        let whole = try BundleTests.Peer()
        try BundleTests.importBytes(whole.ledger, try BundleTests.export(w.ledger, w.datanet))
        Self.expectSame(here, try Self.tables(whole.ledger, w.datanet), "one bundle")
    }

    /// fsck's ledger pass finds nothing in a sound store, changes nothing, and names the table
    /// of each kind of damage.
    @Test func fsckRebuildsTheIndexAndNamesWhatDiffers() throws {
        let log = try EveryKindLog()
        let w = log.world, l = w.ledger, d = w.datanet
        let size = try l.reader.state(of: d).size
        let before = try Self.tables(l, d)
        let sound = try l.checkLogTables()
        #expect(sound.count == 1 && sound[0].leaves == size && sound[0].problems.isEmpty, "\(sound.first?.problems ?? [])")
        Self.expectSame(before, try Self.tables(l, d), "after the check")
        // One damage at a time, each undone before the next.
        typealias Damage = (name: String, table: String, apply: (Transaction) throws -> Void)
        let undecidedKey = try #require(before[.undecided]?.first?.0), decidedKey = try #require(before[.decided]?.first?.0)
        let placedKey = try #require(before[.placed]?.first?.0), contentsKey = try #require(before[.contents]?.first?.0)
        let row = try #require(before[.contributionRows]?.last)
        let damages: [Damage] = [
            ("undecided entry dropped", "undecided", { try $0.delete(l.undecided, undecidedKey) }),
            ("decided value changed", "decided", { try $0.put(l.decided, decidedKey, BigEndian.bytes(999)) }),
            ("placement of another record", "placed", { try $0.put(l.placed, RecordID(SHA256.hash([9])), d.bytes + BigEndian.bytes(1)) }),
            ("contents entry dropped", "contents", { try $0.delete(l.contents, contentsKey) }),
            ("quota changed", "quotas", { try $0.put(l.meta, d.bytes + w.author.publicKey.bytes, BigEndian.bytes(7) + BigEndian.bytes(7)) }),
            ("tombstone dropped", "tombstones", { txn in
                for (k, _) in before[.tombstones] ?? [] { try txn.delete(l.tombstones, k) } }),
            ("row's outcome flipped", "contribution-rows", { txn in
                var v = row.1
                v[153] = v[153] == 1 ? 2 : 1
                try txn.put(l.contributionRows!, row.0, v) }),
            ("leaf rewritten", "log-leaves", { try $0.put(l.sharedLog!.leaves, BigEndian.key(d, 2), [0xa0]) }),
            ("node rewritten", "log-nodes", { try $0.put(l.sharedLog!.nodes, BigEndian.key(d, 1), SHA256.hash([1]).bytes) }),
        ]
        for damage in damages {
            let saved = try l.env.read { txn in try l.logTables(txn, d) }
            try l.env.write { txn in try damage.apply(txn) }
            let found = try l.checkLogTables()[0].problems
            #expect(found.contains { $0.hasPrefix(damage.table + ":") }, "\(damage.name): \(found)")
            // Undo: put every saved entry back and drop what the damage added.
            try l.env.write { txn in
                for (t, table) in [(LogTable.undecided, l.undecided), (.decided, l.decided), (.placed, l.placed), (.contents, l.contents),
                                   (.tombstones, l.tombstones), (.quotas, l.meta), (.contributionRows, l.contributionRows!), (.leaves, l.sharedLog!.leaves), (.nodes, l.sharedLog!.nodes)] {
                    for (k, v) in saved[t] ?? [] {
                        try txn.put(table, t == .leaves ? BigEndian.key(d, BigEndian.u64(k)) : k, v)
                    }
                }
                try txn.delete(l.placed, RecordID(SHA256.hash([9])))
            }
            #expect(try l.checkLogTables()[0].problems.isEmpty, "after undoing \(damage.name)")
        }
    }
}

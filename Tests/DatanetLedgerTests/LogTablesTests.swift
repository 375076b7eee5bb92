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
    static func tables(_ l: Ledger, _ d: Digest) throws -> [LogTable: [([UInt8], [UInt8])]] {
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
            let from = (try? steps.ledger.state(of: w.datanet).size) ?? 0
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
}

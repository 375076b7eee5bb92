import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Testing

/// The contribution rows (ContributionRows.swift) give listings what the leaves give them, are
/// filled once in stores made before them, and a damaged row is reported, never read past.
@Suite struct ContributionRowsTests {
    /// Every field listings show, as one comparable line.
    static func line(_ s: ContributionStatus) -> String {
        let reviews = s.reviews.map { "\($0.reviewer.description):\($0.accept):\($0.reason)" }.joined(separator: ",")
        return "\(s.id.hex) \(s.state) \(s.intake.map(String.init) ?? "-") \(s.decision.map(String.init) ?? "-") "
            + "\(s.tombstone.map(String.init) ?? "-") \(s.reason ?? "-") [\(reviews)] \(s.acceptsNeeded.map(String.init) ?? "-") \(s.contribution.body)"
    }

    static func lines(_ a: AcceptedContributions) -> [String] {
        a.items.map { "\($0.intake) \($0.id.hex) \($0.contribution.body)" } + a.withdrawn.map { "w \($0.intake) \($0.id.hex) \($0.tombstone) \($0.contribution.body)" }
    }

    static func checkpointSizes(_ l: Ledger, _ d: DatanetID) throws -> [UInt64] {
        try l.env.read { txn in
            var sizes = [UInt64]()
            try txn.scanNumbered(l.checkpoints, d) { n, _ in sizes.append(n); return true }
            return sizes
        }
    }

    @Test func rowsGiveWhatTheLeavesGive() throws {
        let log = try EveryKindLog()
        let w = log.world, l = log.world.ledger, d = log.world.datanet
        // And one accepted that stays accepted, by the quorum of two in force at the end.
        let kept = try w.stored(Array("a song of the noon".utf8))
        try l.propose(kept)
        _ = try l.sequence(d, key: log.key)
        try l.propose(all: [try w.review([kept.id], accept: true, by: w.curatorA), try w.review([kept.id], accept: true, by: w.curatorB)])
        _ = try l.sequence(d, key: log.key)
        let size = try l.reader.state(of: d).size
        // Rejected (by review and as a duplicate), withdrawn and taken down after acceptance, undecided.
        let states = Set(try l.reader.statuses(d).map(\.state))
        #expect(states.isSuperset(of: [.accepted, .awaitingReview, .rejected, .withdrawn, .takenDown]), "\(states)")
        let viaRows = try #require(try l.reader.statusesFromRows(d, below: size))
        #expect(viaRows.map(Self.line) == (try l.reader.statusesFromLeaves(d, size: size).map(Self.line)))
        let sizes = try Self.checkpointSizes(l, d)
        #expect(sizes.count >= 4)
        var items = 0, withdrawn = 0
        for s in sizes {
            let note = try #require(try l.env.read { txn in try txn.get(l.checkpoints, BigEndian.key(d, s)) })
            let viaRows = try l.reader.accepted(d, at: s)
            let viaLeaves = try l.reader.acceptedFromLeaves(d, note: String(decoding: note, as: UTF8.self), end: s)
            #expect(Self.lines(viaRows) == Self.lines(viaLeaves), "at size \(s)")
            (items, withdrawn) = (items + viaRows.items.count, withdrawn + viaRows.withdrawn.count)
        }
        #expect(items > 0 && withdrawn > 0, "items \(items), withdrawn \(withdrawn)")
    }

    /// A store whose rows are missing (made before them): read from the leaves, and filled once
    /// on a writable open with exactly what the apply path writes.
    @Test func storesWithoutRowsReadTheLeavesAndAreFilledOnce() throws {
        let log = try EveryKindLog()
        let l = log.world.ledger, d = log.world.datanet
        let before = try LogTablesTests.tables(l, d)
        let statuses = try l.reader.statuses(d).map(Self.line)
        let rows = try #require(l.contributionRows)
        try l.env.write { txn in
            for (k, _) in before[.contributionRows] ?? [] { try txn.delete(rows, k) }
            try txn.delete(l.meta, Ledger.contributionRowsFilled)
        }
        #expect(try l.reader.contributionRows(d, below: .max) == nil)
        #expect(try l.reader.statuses(d).map(Self.line) == statuses)
        try l.fillContributionRows()
        LogTablesTests.expectSame(before, try LogTablesTests.tables(l, d), "rows filled")
        #expect(try l.reader.contributionRows(d, below: .max)?.count == before[.contributionRows]?.count)
    }

    /// Mutated and truncated rows: the reader throws damage naming the table or reads a row
    /// whose fields are those bytes; it never traps.
    @Test func damagedRowsAreReportedNeverReadPast() throws {
        let log = try EveryKindLog()
        let l = log.world.ledger, d = log.world.datanet
        let stored = try #require(try LogTablesTests.tables(l, d)[.contributionRows])
        var rng = SystemRandomNumberGenerator()
        var refused = 0, read = 0
        for (_, value) in stored {
            for n in 0..<value.count { // every truncation
                if (try? Self.decode(Array(value[0..<n]), d)) != nil { Issue.record("a row cut to \(n) bytes was read") }
            }
            for _ in 0..<2_000 {
                var v = value
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let at = Int.random(in: 0..<v.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: v[at] = UInt8.random(in: 0...255, using: &rng)
                    case 1: v.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                    default: v.remove(at: at)
                    }
                }
                do {
                    let row = try Self.decode(v, d)
                    read += 1
                    // What was read is what those bytes say: re-encoding gives them back.
                    var again = ContributionRow.encode(row.id, row.contribution)
                    if let k = row.decision { again = again.withUnsafeBytes { ContributionRow.decided($0, at: k, accepted: row.accepted) } }
                    if let t = row.tombstone { again = again.withUnsafeBytes { ContributionRow.withdrawn($0, at: t) } }
                    #expect(again == v)
                } catch LedgerError.corruptEntry(let table, _, _) {
                    #expect(table == "contribution-rows")
                    refused += 1
                }
            }
        }
        #expect(refused > 0 && read > 0, "refused \(refused), read \(read)")
    }

    static func decode(_ v: [UInt8], _ d: DatanetID) throws -> ContributionRow {
        try v.withUnsafeBytes { try ContributionRow($0, d, intake: 1) }
    }
}

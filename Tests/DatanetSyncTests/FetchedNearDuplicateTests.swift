import DatanetCrypto
@testable import DatanetLedger
import DatanetRecords
@testable import DatanetSync
import Foundation
import Testing

/// Near-duplicate flags of content that comes after its records (schema/curation.md
/// "Near-duplicates"): fetched in any order, flagged as a clone flags it.
extension SyncSessionTests {
    /// Three near copies A, B, C (B one word from A, C one word from B) taken in in that order.
    /// Records-only pulls then fetch them one at a time in two orders, C first: C arrives before
    /// the ones it resembles, so only their later arrival can set its flag, and in both orders
    /// the flags end as a clone's.
    @Test func fetchedContentIsFlaggedAsACloneFlagsIt() throws {
        let server = try Node(), clone = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let words = (0..<300).map { "word\($0 * 7919 % 1000)" }
        var b = words, c = words
        b[100] = "changed"
        (c[100], c[200]) = ("changed", "again")
        let ids = [try server.contribute(d, words.joined(separator: " "), by: owner, label: "a"),
                   try server.contribute(d, b.joined(separator: " "), by: owner, label: "b"),
                   try server.contribute(d, c.joined(separator: " "), by: owner, label: "c")]
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(server, listener, sessions: 6)

        let k = try Self.connect(clone, listener)
        _ = try k.pull(d, since: 0, recordsOnly: false, into: clone.ledger)
        try k.bye()
        let cloned = try ids.map { try clone.ledger.reader.nearDuplicate(of: $0) }
        #expect(cloned == [nil, ids[0], ids[1]], "the clone flags B as like A, and C as like B (one word apart)")

        /// The flags after each fetch, in `order` (groups of indexes into ids, flagged together),
        /// into a fresh store.
        func fetched(in order: [[Int]], scanningAbove: Int = 1_024) throws -> [[RecordID?]] {
            let late = try Node()
            let l = try Self.connect(late, listener)
            defer { try? l.bye() }
            _ = try l.pull(d, since: 0, recordsOnly: true, into: late.ledger)
            #expect(try ids.allSatisfy { try late.ledger.reader.nearDuplicate(of: $0) == nil })
            return try order.map { group in
                for i in group {
                    let content = try #require(try late.ledger.reader.contribution(ids[i], in: d)).content
                    _ = try l.fetch(d, contribution: ids[i], kind: .blob, root: content, into: late.ledger)
                }
                try late.ledger.flagFetched(d, ids, scanningAbove: scanningAbove)
                return try ids.map { try late.ledger.reader.nearDuplicate(of: $0) }
            }
        }
        // C, B, A: B is offered to C; A to B, and C keeps B, which ranks higher for it.
        #expect(try fetched(in: [[2], [1], [0]]) == [[nil, nil, nil], [nil, nil, ids[1]], cloned])
        // C, A, B: A is offered to C; then B outranks A for C and takes its place.
        #expect(try fetched(in: [[2], [0], [1]]) == [[nil, nil, nil], [nil, nil, ids[0]], cloned])
        // C, then B and A in one call: sketched in intake order, then C flagged again.
        #expect(try fetched(in: [[2], [1, 0]]) == [[nil, nil, nil], cloned])
        // The same, finding the later intakes by a pass over the signatures instead of bands.
        #expect(try fetched(in: [[2], [0], [1]], scanningAbove: 0) == [[nil, nil, nil], [nil, nil, ids[0]], cloned])
        // Nothing new: a second call changes nothing.
        #expect(try fetched(in: [[0, 1, 2], []]) == [cloned, cloned])
        #expect(try served.wait() == Array(repeating: "bye", count: 6))
    }
}

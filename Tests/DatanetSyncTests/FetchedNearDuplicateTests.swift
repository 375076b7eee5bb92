import DatanetCrypto
@testable import DatanetLedger
import DatanetRecords
@testable import DatanetSync
import DatanetStore
import DatanetTestSupport
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
        let served = Self.serveConcurrently(server, listener, sessions: 8)

        let k = try Self.connect(clone, listener)
        _ = try k.pull(d, since: 0, recordsOnly: false, into: clone.ledger)
        try k.bye()
        let cloned = try ids.map { try clone.ledger.reader.nearDuplicate(of: $0) }
        #expect(cloned == [nil, ids[0], ids[1]], "the clone flags B as like A, and C as like B (one word apart)")

        /// The flags after each fetch, in `order` (groups of indexes into ids, flagged together),
        /// into a fresh store.
        func fetched(in order: [[Int]], scanningAbove: Int = 1_024, slice: Int = 8_192) throws -> [[RecordID?]] {
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
                try late.ledger.flagFetched(d, ids, scanningAbove: scanningAbove, slice: slice)
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
        // A first fetch of all three, a transaction each (the band entries found in memory).
        #expect(try fetched(in: [[0, 1, 2]], slice: 1) == [cloned])
        #expect(try fetched(in: [[2, 1, 0]], slice: 2) == [cloned])
        #expect(try served.wait() == Array(repeating: "bye", count: 8))
    }

    /// A clone committed a batch a transaction, whose band entries are carried from one
    /// transaction to the next in memory (`BandMemo`), flags each intake as the rule says among
    /// the earlier ones; so does a records-only clone that then fetches everything and flags it
    /// a few contributions a transaction.
    @Test func cloneInManyTransactionsFlagsByTheRule() throws {
        let server = try Node(), owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        var rng = SplitMix64(seed: 515)
        let vocabulary = (0..<2_000).map { "v\($0)" }
        var texts = [[String]]()
        var ids = [RecordID]()
        for round in 0..<2 {
            for i in 0..<45 { // (at most 100 intakes wait for review)
                if !texts.isEmpty && rng.next() % 3 == 0 {
                    // A copy of an earlier text, exact or with a word or two changed.
                    var t = texts[Int(rng.next() % UInt64(texts.count))]
                    for _ in 0..<Int(rng.next() % 3) { t[Int(rng.next() % UInt64(t.count))] = "edit\(round)x\(i)" }
                    texts.append(t)
                } else {
                    texts.append((0..<150).map { _ in vocabulary[Int(rng.next() % 2_000)] })
                }
                ids.append(try server.contribute(d, texts.last!.joined(separator: " "), by: owner, label: "t\(round)x\(i)"))
            }
            _ = try server.ledger.sequence(d, key: owner)
        }
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(server, listener, sessions: 2)

        /// The rule, in `node`'s intake order: among earlier intakes agreeing in ≥ 116 slots,
        /// an exact copy first, then the most slots, then the smallest id.
        func expected(in node: Node) throws -> [RecordID?] {
            let at = try node.ledger.store.env.read { txn in try ids.map { try #require(try node.ledger.intake(txn, d, $0)) } }
            let sigs = try texts.map { try #require(MinHash.signature($0.joined(separator: " "))) }
            return ids.indices.map { i in
                var best: (rank: Int, id: RecordID)?
                for j in ids.indices where at[j] < at[i] {
                    let m = MinHash.matches(sigs[i], sigs[j])
                    guard m >= MinHash.threshold else { continue }
                    let rank = texts[i] == texts[j] ? MinHash.k + 1 : m
                    if best == nil || rank > best!.rank || (rank == best!.rank && ids[j] < best!.id) { best = (rank, ids[j]) }
                }
                return best?.id
            }
        }

        let clone = try Node()
        let k = try Self.connect(clone, listener)
        _ = try k.pull(d, since: 0, recordsOnly: false, into: clone.ledger, commitEvery: .zero)
        try k.bye()
        #expect(BatchProof.batches(from: 0, to: try clone.ledger.reader.state(of: d).size).count >= 3, "several batches, so several transactions")
        let rule = try expected(in: clone)
        #expect(rule.compactMap { $0 }.count >= 10)
        let cloned = try ids.map { try clone.ledger.reader.nearDuplicate(of: $0) }
        let clonedByRule = cloned == rule
        #expect(clonedByRule)

        let late = try Node()
        let l = try Self.connect(late, listener)
        _ = try l.pull(d, since: 0, recordsOnly: true, into: late.ledger)
        for id in ids {
            let content = try #require(try late.ledger.reader.contribution(id, in: d)).content
            _ = try l.fetch(d, contribution: id, kind: .blob, root: content, into: late.ledger)
        }
        try late.ledger.flagFetched(d, ids, scanningAbove: 1_024, slice: 7)
        let fetched = try ids.map { try late.ledger.reader.nearDuplicate(of: $0) }
        let fetchedByRule = fetched == rule
        #expect(fetchedByRule)

        // All at once, each text sketched as it arrives (its blob is one chunk) and flagged
        // from those sketches.
        let third = try Node()
        _ = try l.pull(d, since: 0, recordsOnly: true, into: third.ledger)
        let items = try ids.map { FetchItem(contribution: $0, kind: .blob, root: try #require(try third.ledger.reader.contribution($0, in: d)).content) }
        let got = try l.fetch(d, items, into: third.ledger)
        try l.bye()
        #expect(got.sketches.count == ids.count && got.failed.isEmpty)
        try third.ledger.flagFetched(d, ids, sketches: got.sketches)
        let sketchedOnArrival = try ids.map { try third.ledger.reader.nearDuplicate(of: $0) } == rule
        #expect(sketchedOnArrival)
        #expect(try served.wait() == ["bye", "bye"])
    }

    /// The memo of a bulk flagging stands for the band table only from a transaction where the
    /// table holds none of its Datanet's entries, and only while no other writer commits.
    @Test func bandMemoGoesOffWhenAnotherWriterCommits() throws {
        let node = try Node()
        let ledger = node.ledger, env = node.ledger.store.env
        let bands = try #require(ledger.minhashBands)
        let d = DatanetID(SHA256.hash([1])), other = DatanetID(SHA256.hash([2]))
        let a = RecordID(SHA256.hash([3])), b = RecordID(SHA256.hash([4]))
        let keysA = Ledger.bandKeys(d, (0..<MinHash.k).map { UInt64($0) })
        let keysB = Ledger.bandKeys(d, (0..<MinHash.k).map { UInt64($0 * 3 + 1) })

        /// What flagging writes: `keys`' entries of `id` in the table and in `memo`.
        func write(_ id: RecordID, _ keys: [BandKey], _ txn: Transaction, to memo: BandMemo) throws {
            memo.add(id, keys)
            for key in keys { try txn.put(bands, key.entry(id), [UInt8]()) }
            try memo.wrote(txn, bands)
        }
        let memo = BandMemo(datanet: d)
        try env.write { txn in
            #expect(try memo.isActive(txn, bands))
            try write(a, keysA, txn, to: memo)
        }
        #expect(memo.candidates(keysA) == [a] && memo.candidates(keysB).isEmpty)
        // Its own next transactions, one of them writing nothing: still active.
        #expect(try env.write { txn in try memo.isActive(txn, bands) })
        try env.write { txn in
            #expect(try memo.isActive(txn, bands))
            try write(b, [keysB[0]], txn, to: memo)
        }
        #expect(memo.candidates(keysB) == [b] && memo.candidates(Array(keysA[3...5])) == [a])
        // Another writer adds an entry in between: off for good, and nothing is found in it.
        try env.write { txn in try txn.put(bands, keysA[0].entry(b), [UInt8]()) }
        #expect(try !env.write { txn in try memo.isActive(txn, bands) })
        #expect(try !env.write { txn in try memo.isActive(txn, bands) })
        #expect(memo.candidates(keysA).isEmpty)
        // A transaction of its own that aborted after writing: off too.
        struct Abort: Error {}
        let again = BandMemo(datanet: other)
        #expect(throws: Abort.self) {
            try env.write { txn in
                #expect(try again.isActive(txn, bands))
                try write(a, Ledger.bandKeys(other, (0..<MinHash.k).map { UInt64($0) }), txn, to: again)
                throw Abort()
            }
        }
        #expect(try !env.write { txn in try again.isActive(txn, bands) })
        // Past its limit of entries: off (the table answers instead).
        let small = BandMemo(datanet: DatanetID(SHA256.hash([5])), limit: 20)
        try env.write { txn in
            #expect(try small.isActive(txn, bands))
            try write(a, Ledger.bandKeys(small.datanet, (0..<MinHash.k).map { UInt64($0) }), txn, to: small)
            #expect(try small.isActive(txn, bands))
            try write(b, Ledger.bandKeys(small.datanet, (0..<MinHash.k).map { UInt64($0 + 1) }), txn, to: small)
            #expect(try !small.isActive(txn, bands))
        }
        // A table that holds an entry of the Datanet already: never active; one of another Datanet only: active.
        #expect(try !env.write { txn in try BandMemo(datanet: d).isActive(txn, bands) })
        #expect(try env.write { txn in try BandMemo(datanet: other).isActive(txn, bands) })
    }
}

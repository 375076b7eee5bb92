import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Glibc
import Testing

/// The sequencer's fast paths against the slow ones they stand in for: pending reviews read
/// without a CBOR tree, and the latest-review rule over long review lists.
@Suite struct SequencingTests {
    typealias World = LedgerTests.World

    func review(_ w: World, _ ids: [RecordID], accept: Bool, reason: String, by keys: [SigningKey], createdAt: UInt64? = nil) throws -> Envelope {
        var e = Envelope(kind: .review, body: Review(datanet: w.datanet, reviewer: keys[0].publicKey, contributions: ids,
                                                     accept: accept, reason: reason, createdAt: createdAt).body)
        for k in keys { try e.sign(with: k) }
        return e
    }

    /// What the plain reader takes from a review, decoded in full instead; nil if it is refused.
    func decodedInFull(_ bytes: [UInt8], datanet: DatanetID) -> (reviewer: KeyID, accept: Bool, ids: [RecordID], createdAt: UInt64)? {
        guard let e = try? Envelope(encoded: bytes), let r = try? Record(e), case .review(let review) = r,
              review.datanet == datanet, !e.signatures.isEmpty else { return nil }
        return (KeyID(review.reviewer), review.accept, review.contributions, review.createdAt ?? 0)
    }

    @Test func plainReviewsAreReadAsTheDecoderReadsThem() throws {
        let w = try World()
        let ids = (0..<40).map { RecordID(SHA256.hash([UInt8($0)])) }
        var samples = [
            try review(w, [ids[0]], accept: true, reason: "", by: [w.curatorA]),
            try review(w, Array(ids[0..<24]), accept: false, reason: "blurry", by: [w.curatorB]),
            try review(w, ids, accept: true, reason: String(repeating: "é", count: 300), by: [w.curatorA, w.curatorB, w.owner]),
            try review(w, Array(ids[3..<9]), accept: true, reason: "changed my mind", by: [w.curatorB], createdAt: 1_790_000_000_123),
        ].map(\.encoded)
        // Not reviews, or not of this Datanet: left to the full decoder.
        let contribution = try w.contribution("x").encoded
        let elsewhere = try review(w, [ids[1]], accept: true, reason: "", by: [w.curatorA]).encoded
            .replacing(w.datanet.bytes, with: SHA256.hash([9]).bytes)
        for bytes in [contribution, elsewhere] {
            var reviews = PendingReviews()
            #expect(!bytes.withUnsafeBytes { reviews.appendIfPlain(entry: 0, envelope: $0, datanet: w.datanet) })
            #expect(reviews.count == 0 && reviews.contributions.isEmpty)
        }
        for bytes in samples {
            var reviews = PendingReviews()
            #expect(bytes.withUnsafeBytes { reviews.appendIfPlain(entry: 7, envelope: $0, datanet: w.datanet) })
            let full = try #require(decodedInFull(bytes, datanet: w.datanet))
            #expect(reviews.entries == [7] && reviews.reviewers == [full.reviewer] && reviews.accepts == [full.accept] && reviews.createdAt == [full.createdAt])
            #expect(Array(reviews.named(0)) == full.ids)
        }
        // Whatever the plain reader accepts, the full decoder accepts with the same fields;
        // what it refuses leaves nothing behind.
        var rng = SplitMix64(seed: 0xEE71E)
        var plain = 0
        samples.append(contribution)
        for i in 0..<30_000 {
            var b = samples[i % samples.count]
            rng.mutate(&b, maxEdits: 2)
            var reviews = PendingReviews()
            reviews.append(entry: 0, reviewer: KeyID(.zero), accept: false, createdAt: 0, contributions: [ids[5]])
            let taken = b.withUnsafeBytes { reviews.appendIfPlain(entry: 1, envelope: $0, datanet: w.datanet) }
            guard taken else {
                #expect(reviews.count == 1 && reviews.contributions == [ids[5]])
                continue
            }
            plain += 1
            let full = try #require(decodedInFull(b, datanet: w.datanet), "accepted by the plain reader only: \(b)")
            #expect(reviews.reviewers[1] == full.reviewer && reviews.accepts[1] == full.accept && Array(reviews.named(1)) == full.ids
                && reviews.createdAt[1] == full.createdAt)
        }
        #expect(plain > 0)
    }

    /// With more reviews of one contribution than the in-place search handles, a curator's latest
    /// review still replaces its earlier ones, and the leaf holds exactly the counted ones.
    @Test(arguments: [true, false])
    func latestReviewsCountInLongLists(lastOfBAccepts: Bool) throws {
        let w = try World(quorum: 2)
        let item = try w.contribution("long debate")
        try w.ledger.propose(item)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        var last = [String: Envelope]()
        for round in 0..<12 {
            for (name, key) in [("A", w.curatorA), ("B", w.curatorB)] {
                let accept = round == 11 ? (name == "A" || lastOfBAccepts) : round % 2 == 0
                let r = try review(w, [item.id], accept: accept, reason: "round \(round)", by: [key], createdAt: UInt64(round))
                try w.ledger.propose(r)
                last[name] = r
            }
        }
        let report = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let decision = try #require(report.decisions.first)
        #expect(report.decisions.count == 1 && decision.accepted == lastOfBAccepts)
        let leaf = try #require(try w.ledger.reader.leaves(w.datanet).last?.leaf)
        let counted = try w.ledger.reader.reviews(of: #require(leaf.decision), in: w.datanet).map(\.encoded)
        let expected = (lastOfBAccepts ? [last["A"]!, last["B"]!] : [last["B"]!]).sorted { $0.id < $1.id }.map(\.encoded)
        #expect(counted == expected)
    }

    /// A review leaves pending once everything it names is decided, whether decided in this run,
    /// before it (an exact duplicate rejected at intake), or not at all yet.
    @Test func reviewsLeavePendingWhenAllTheyNameIsDecided() throws {
        let w = try World(quorum: 1)
        let first = try w.contribution("tune"), copy = try w.contribution("tune", by: w.curatorA), other = try w.contribution("other")
        try w.ledger.propose(all: [first, copy, other])
        let intake = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(intake.decisions.map(\.contribution) == [copy.id]) // the duplicate, at intake
        let settlesNow = try review(w, [first.id, copy.id], accept: true, reason: "", by: [w.curatorA])
        let waits = try review(w, [first.id, other.id], accept: false, reason: "", by: [w.curatorB])
        try w.ledger.propose(all: [settlesNow, waits])
        // Quorum 1 of 2: one accept decides, one reject does not. `first` is accepted; `other`
        // stays undecided, and so does the review naming it.
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.map(\.contribution) == [first.id] && r.decisions[0].accepted)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).map(\.id) == [waits.id])
        let accept = try review(w, [other.id], accept: true, reason: "", by: [w.curatorA])
        try w.ledger.propose(accept)
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.contribution) == [other.id])
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
        // A review naming a decided and an undecided contribution stays until both are decided.
        let late = try w.contribution("late")
        try w.ledger.propose(late)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let half = try review(w, [first.id, late.id], accept: true, reason: "half", by: [w.curatorB])
        try w.ledger.propose(half)
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.contribution) == [late.id])
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
    }

    /// An envelope over the size limit is refused when proposed, and the plain reader leaves one
    /// to the full decoder (which refuses it too).
    @Test func oversizedReviewsAreRefused() throws {
        let w = try World()
        let ids = (0..<130_000).map { RecordID(SHA256.hash(withUnsafeBytes(of: UInt32($0)) { Array($0) })) }
        let big = try review(w, ids, accept: true, reason: "", by: [w.curatorA])
        let bytes = big.encoded
        #expect(bytes.count > Envelope.maximumReviewSize)
        #expect { try w.ledger.propose(big) } throws: { e in
            if case .record(.malformed(let why))? = e as? LedgerRefusal { why.contains("exceeds \(Envelope.maximumReviewSize)") } else { false }
        }
        var reviews = PendingReviews()
        #expect(!bytes.withUnsafeBytes { reviews.appendIfPlain(entry: 0, envelope: $0, datanet: w.datanet) })
        #expect(decodedInFull(bytes, datanet: w.datanet) == nil)
    }

    /// A pending record that no longer decodes (a damaged store) is refused and taken out of
    /// pending instead of stopping every later run; the records around it are sequenced.
    @Test func anUndecodablePendingRecordIsRefusedNotBlocking() throws {
        let w = try World()
        let before = try w.contribution("before"), after = try w.contribution("after")
        try w.ledger.propose(before)
        let junkID = RecordID(SHA256.hash([0xde, 0xad]))
        try w.ledger.env.write { txn in
            let seq = try w.ledger.nextSequence(txn)
            try txn.put(w.ledger.pending, BigEndian.key(w.datanet, seq), junkID.bytes + [0x84, 0x01, 0x66, 0x00])
        }
        try w.ledger.propose(after)
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.intakes.map(\.record) == [before.id, after.id])
        #expect(r.refused.count == 1 && r.refused[0].record == junkID && { if case .record(.cbor) = r.refused[0].refusal { true } else { false } }())
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
    }

    /// When LMDB must grow its map in the middle of a sequencing transaction, the transaction is
    /// retried from the same point: same leaves, same report, no "log changed" refusal.
    @Test func aMapGrownMidRunRetriesTheTransaction() throws {
        let dir = NSTemporaryDirectory() + "datanet-mapgrowth-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true, mapSize: 1 << 20))
        let owner = try SigningKey(), author = try SigningKey()
        let policy = PolicyState(name: "tiny", owner: owner.publicKey, sequencer: owner.publicKey, curators: [owner.publicKey], quorum: 1,
                                 contributors: nil, readers: nil, maxPendingProposals: .max, maxPendingBytes: .max)
        var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 0, nonce: [UInt8](repeating: 3, count: 16)).body)
        try g.sign(with: owner)
        let d = try ledger.create(genesis: g, sequencerKey: owner)
        let records = try (0..<3_000).map { i -> Envelope in
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: d, author: author.publicKey, content: ObjectID(SHA256.hash(Array("c\(i)".utf8))), contentKind: .blob, size: 10,
                mediaType: "application/octet-stream", license: "CC0-1.0", sidecar: .zero, createdAt: 0).body)
            try e.sign(with: author)
            return e
        }
        try ledger.propose(all: records)
        let mapBefore = ledger.env.mapSize
        let r = try ledger.sequence(d, key: owner, leavesPerTransaction: 100_000)
        try #require(ledger.env.mapSize > mapBefore, "the run did not need a larger map: the test does not test the retry")
        #expect(r.intakes.map(\.record) == records.map(\.id))
        #expect(r.intakes.map(\.index) == Array(1...3_000))
        #expect(r.size == 3_001 && r.refused.isEmpty)
        #expect(try ledger.reader.checkpoints(d).map(\.size) == [1, 3_001])
    }
}

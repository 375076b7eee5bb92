import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Trust model, item 10: a review is sequenced once, as its own leaf, and the decisions it
/// settles cite that leaf by index, so a batch review is never copied into every decision.
@Suite struct ReviewLeafTests {
    typealias World = LedgerTests.World

    /// One review accepting many contributions: one review leaf, small decision leaves citing
    /// it, an audit that holds, receipts that carry the review leaf, and a replica that agrees.
    @Test func batchReviewIsSequencedOnceAndCited() throws {
        let w = try World(quorum: 1, maxPending: 1000)
        let items = try (0..<300).map { try w.contribution("item \($0)") }
        try w.ledger.propose(all: items)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let batch = try w.review(items.map(\.id), accept: true, by: w.curatorA)
        try w.ledger.propose(batch)
        let report = try w.ledger.sequence(w.datanet, key: w.sequencer, leavesPerTransaction: 128)
        #expect(report.decisions.count == 300 && report.decisions.allSatisfy(\.accepted))
        let leaves = try w.ledger.reader.leaves(w.datanet, from: 301)
        let reviewLeaves = leaves.filter { $0.leaf.kind == .review }
        #expect(reviewLeaves.map(\.index) == [301] && reviewLeaves.first?.leaf.review == batch)
        for (_, leaf) in leaves where leaf.kind == .decision {
            #expect(leaf.decision?.reviews == .cited([301]))
            #expect(leaf.encoded.count <= 256, "a decision leaf of \(leaf.encoded.count) bytes")
        }
        #expect(try w.ledger.reader.placement(batch.id).map { $0.1 } == 301)
        let audit = try w.ledger.audit(w.datanet)
        #expect(audit.holds, "\(audit.violations)")
        #expect(audit.signatures == 1 + 300 + 1) // the genesis, the contributions, the review once
        // A receipt carries the review leaf with its proof; it verifies here and offline.
        let receipt = try w.ledger.provenance.receipt(for: items[7].id)
        #expect(receipt.type == Receipt.typeName && receipt.reviews?.map(\.index) == [301])
        #expect(try w.ledger.provenance.verify(receipt, anchor: w.datanet).holds)
        let parsed = try Receipt(json: try receipt.json)
        #expect(parsed.verify(anchor: w.datanet).holds)
        // A replica imports the log and agrees, review leaf included.
        let peer = try BundleTests.Peer()
        #expect(try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true)).leaves == 602)
        #expect(try peer.ledger.audit(w.datanet).holds)
        #expect(try peer.ledger.reader.placement(batch.id).map { $0.1 } == 301)
        #expect(try peer.ledger.reader.pendingRecords(w.datanet).isEmpty)
    }

    /// A review still pending (it names a contribution not yet taken in) is cited where its
    /// leaf already is by the next run, never sequenced a second time; replaying it is refused.
    @Test func aLaterRunCitesTheSameReviewLeaf() throws {
        let w = try World(quorum: 1)
        let first = try w.contribution("first"), later = try w.contribution("later")
        try w.ledger.propose(first)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer) // leaf 1
        let review = try w.review([first.id, later.id], accept: true, by: w.curatorA)
        try w.ledger.propose(review)
        var r = try w.ledger.sequence(w.datanet, key: w.sequencer) // review leaf 2, decision 3
        #expect(r.decisions.map(\.index) == [3])
        #expect(try w.ledger.reader.pendingRecords(w.datanet).map(\.id) == [review.id])
        // Still pending here: proposing it again is refused as such.
        #expect(throws: LedgerRefusal.alreadyTaken(record: review.id.hex, pending: true)) { try w.ledger.propose(review) }
        // A replica receives the review leaf and the still-pending copy in one bundle; once the
        // decision citing the leaf arrives, the copy leaves pending there too.
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true))
        // The replica keeps the pending copy (it still counts for `later`, should the sequencer
        // role move there) beside the leaf.
        #expect(try peer.ledger.reader.placement(review.id).map { $0.1 } == 2 && peer.ledger.reader.pendingRecords(w.datanet).map(\.id) == [review.id])
        try w.ledger.propose(later)
        r = try w.ledger.sequence(w.datanet, key: w.sequencer) // intake 4, decision 5
        #expect(r.decisions.map(\.index) == [5])
        let leaves = try w.ledger.reader.leaves(w.datanet)
        #expect(leaves.filter { $0.leaf.kind == .review }.map(\.index) == [2])
        #expect(leaves[5].leaf.decision?.reviews == .cited([2]))
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
        // Everything it names decided: a replay is refused as in the log.
        #expect(throws: LedgerRefusal.alreadyTaken(record: review.id.hex, pending: false)) { try w.ledger.propose(review) }
        #expect(try w.ledger.audit(w.datanet).holds)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, since: 3, recordsOnly: true))
        #expect(try peer.ledger.reader.decision(later.id) == 5 && peer.ledger.audit(w.datanet).holds)
        #expect(try peer.ledger.reader.pendingRecords(w.datanet).isEmpty)
    }

    /// A review of the largest size allowed (100,000 contributions fit under the review bound)
    /// is proposed; one over the bound is refused, and no other kind may grow past 1 MiB.
    @Test func reviewBoundAllowsOneHundredThousandContributions() throws {
        let w = try World(quorum: 1)
        let ids = (0..<100_000).map { RecordID(SHA256.hash(withUnsafeBytes(of: UInt32($0)) { Array($0) })) }
        var e = Envelope(kind: .review, body: Review(datanet: w.datanet, reviewer: w.curatorA.publicKey, contributions: ids, accept: true, reason: "").body)
        try e.sign(with: w.curatorA)
        #expect(e.encoded.count > Envelope.maximumSize && e.encoded.count <= Envelope.maximumReviewSize)
        #expect(try Envelope(encoded: e.encoded) == e)
        _ = try w.ledger.propose(e)
        // Another kind of the same size is refused by the decoder, naming its kind.
        var bytes = e.encoded
        let at = try #require(bytes.indices.first { bytes[$0...].starts(with: Array("review".utf8)) })
        bytes.replaceSubrange(at..<(at + 6), with: Array("policy".utf8))
        #expect(throws: RecordError.malformed("policy envelope of \(bytes.count) bytes exceeds \(Envelope.maximumSize)")) { try Envelope(encoded: bytes) }
    }

    /// A receipt citing two reviews of 100,000 contributions each (quorum 2): about 25 MB,
    /// within the receipt bound, and it verifies after a round trip through its JSON.
    @Test func receiptCitingTwoLargestReviewsVerifies() throws {
        let w = try World(quorum: 2)
        let c = try w.contribution("the one")
        try w.ledger.propose(c)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let others = (0..<99_999).map { RecordID(SHA256.hash(withUnsafeBytes(of: UInt32($0)) { Array($0) })) }
        for k in [w.curatorA, w.curatorB] { try w.ledger.propose(try w.review(others + [c.id], accept: true, by: k)) }
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.accepted) == [true])
        let json = try w.ledger.provenance.receipt(for: c.id).json
        #expect(json.count > 16 << 20 && json.count <= Receipt.maximumSize, "\(json.count) bytes")
        let v = try Receipt(json: json).verify(anchor: w.datanet)
        #expect(v.holds, "\(ReceiptTests.failing(v))")
    }

    /// Decisions that cite what they may not: each is caught at the decision leaf by its rule.
    @Test(arguments: [
        ("cites a leaf that is not a review", "a decision cites review leaves before it"),
        ("cites a later leaf", "a decision cites review leaves before it"),
        ("cites a review of another contribution", "a counted review is about this contribution"),
        ("cites a disagreeing review", "counted reviews agree with the verdict"),
        ("review sequenced twice", "a review is sequenced once"),
        ("review leaf by a non-curator", "a review leaf's reviewer is a curator in force"),
        ("review leaf carries a contribution", "a review leaf carries a review"),
        ("cites a superseded review", "a curator's latest review counts (created-at, then record id)"),
    ])
    func forgedCitationsAreCaught(_ misdeed: String, _ rule: String) throws {
        let w = try World(quorum: 1)
        let a = try w.contribution("song A"), b = try w.contribution("song B")
        let ra = try w.review([a.id], accept: true, by: w.curatorA), rb = try w.review([b.id], accept: true, by: w.curatorA)
        try AuditTests.appendForged(w, AuditTests.intake(a, content: "song A"))  // 1
        try AuditTests.appendForged(w, AuditTests.intake(b, content: "song B"))  // 2
        func decide(_ c: Envelope, _ intake: UInt64, accept: Bool = true, _ cited: [UInt64]) throws {
            try AuditTests.appendForged(w, .decision(.init(contribution: c.id, intake: intake, accepted: accept, reason: "forged", reviews: .cited(cited))))
        }
        var expected: UInt64 = 4
        switch misdeed {
        case "cites a leaf that is not a review":
            try AuditTests.appendForged(w, .review(ra))                          // 3
            try decide(a, 1, [2])
        case "cites a later leaf":
            try AuditTests.appendForged(w, .review(ra))
            try decide(a, 1, [3, 5])
        case "cites a review of another contribution":
            try AuditTests.appendForged(w, .review(rb))
            try decide(a, 1, [3])
        case "cites a disagreeing review":
            try AuditTests.appendForged(w, .review(ra))
            try decide(a, 1, accept: false, [3])
        case "review sequenced twice":
            try AuditTests.appendForged(w, .review(ra))
            try AuditTests.appendForged(w, .review(ra))                          // 4
        case "review leaf by a non-curator":
            let rx = try w.review([a.id], accept: true, by: w.outsider)
            try AuditTests.appendForged(w, .review(rx))
            expected = 3
        case "review leaf carries a contribution":
            try AuditTests.appendForged(w, .review(a))
            expected = 3
        case "cites a superseded review":
            // The curator changed its mind (created later) before the decision counted the first.
            let early = try w.review([a.id], accept: true, by: w.curatorA, createdAt: 1_000)
            let late = try w.review([a.id, b.id], accept: false, by: w.curatorA, createdAt: 2_000)
            try AuditTests.appendForged(w, .review(early))                       // 3
            try AuditTests.appendForged(w, .review(late))                        // 4
            try decide(a, 1, [3])
            expected = 5
        default: Issue.record("unknown misdeed")
        }
        let report = try w.ledger.audit(w.datanet)
        #expect(report.violations.first { $0.rule == rule }?.index == expected, "\(misdeed): \(report.violations)")
        // A fresh store refuses the same log in a bundle and stays as it was.
        let peer = try BundleTests.Peer()
        let before = peer.fingerprint
        #expect { try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true)) } throws: { e in
            if case .refused(let why)? = e as? BundleError { why.contains(rule) } else { false }
        }
        #expect(peer.fingerprint == before)
    }

    /// A log written before review leaves (decisions carrying their reviews) still audits,
    /// imports and gives receipts that verify: mixed with the cited form in one log.
    @Test func embeddedDecisionsStillVerifyBesideCitedOnes() throws {
        let w = try World(quorum: 1)
        let a = try w.contribution("song A"), b = try w.contribution("song B")
        let ra = try w.review([a.id], accept: true, by: w.curatorA)
        try AuditTests.appendForged(w, AuditTests.intake(a, content: "song A"))                  // 1
        try AuditTests.appendForged(w, AuditTests.decision(a, intake: 1, accept: true, [ra]))    // 2, embedded
        try w.ledger.propose(b)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)                                  // 3
        try w.ledger.propose(try w.review([b.id], accept: true, by: w.curatorA))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)                                  // review 4, decision 5
        let leaves = try w.ledger.reader.leaves(w.datanet)
        #expect(leaves[5].leaf.decision?.reviews == .cited([4]))
        guard case .embedded(let carried)? = leaves[2].leaf.decision?.reviews else { Issue.record("leaf 2 is not an embedded decision"); return }
        #expect(carried == [ra])
        #expect(try w.ledger.audit(w.datanet).holds)
        // (The forged leaves bypassed this store's index: a's receipt is made from the leaves.)
        for r in [try ReceiptTests.Forge(w).receipt(a.id, key: w.sequencer), try w.ledger.provenance.receipt(for: b.id)] {
            #expect(r.verify(anchor: w.datanet).holds, "\(ReceiptTests.failing(r.verify(anchor: w.datanet)))")
        }
        let peer = try BundleTests.Peer()
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet, recordsOnly: true))
        #expect(try peer.ledger.audit(w.datanet).holds)
        #expect(try peer.ledger.reader.decision(a.id) == 2 && peer.ledger.reader.decision(b.id) == 5)
    }

    /// One curator's change of mind counts the same whatever order its reviews arrive in (from
    /// two stores, say): the later created-at wins, then the greater record id; the audit agrees.
    @Test(arguments: [false, true])
    func theLaterReviewCountsWhateverTheArrivalOrder(_ lateArrivesFirst: Bool) throws {
        let w = try World(quorum: 1)
        let a = try w.contribution("song A")
        try w.ledger.propose(a)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // Quorum 1 of 2: one accept decides, one reject does not.
        let early = try w.review([a.id], accept: false, by: w.curatorA, createdAt: 1_000)
        let late = try w.review([a.id], accept: true, by: w.curatorA, createdAt: 2_000)
        for e in lateArrivesFirst ? [late, early] : [early, late] { try w.ledger.propose(e) }
        #expect(try w.ledger.reader.status(of: a.id)?.reviews.map(\.accept) == [true])
        let r = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(r.decisions.map(\.accepted) == [true])
        #expect(try w.ledger.audit(w.datanet).holds)
        // Equal created-at: the greater record id wins.
        let b = try w.contribution("song B")
        try w.ledger.propose(b)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let x = try w.review([b.id], accept: true, by: w.curatorA, createdAt: 5), y = try w.review([b.id], accept: false, by: w.curatorA, createdAt: 5)
        for e in lateArrivesFirst ? [x, y] : [y, x] { try w.ledger.propose(e) }
        #expect(try w.ledger.sequence(w.datanet, key: w.sequencer).decisions.map(\.accepted) == (x.id > y.id ? [true] : []))
        #expect(try w.ledger.audit(w.datanet).holds)
    }
}

import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Node-local expiry (schema/negentropy.md "Expiry"): contributions past the maximum age leave
/// pending for the refused set and are not taken again; reviews, policy changes and tombstones
/// leave when made moot; the item tree follows.
@Suite struct PendingExpiryTests {
    typealias World = LedgerTests.World
    static let day: UInt64 = 86_400_000 // created-at is Unix ms

    @Test func theAgeRuleAllowsTheClockSkewAndNeverOverflows() {
        let day = Self.day, now: UInt64 = 100 * Self.day
        #expect(!Ledger.isExpired(createdAt: now - 30 * day, maxAge: 30 * day, now: now))
        #expect(!Ledger.isExpired(createdAt: now - 30 * day - 600_000, maxAge: 30 * day, now: now))
        #expect(Ledger.isExpired(createdAt: now - 30 * day - 600_001, maxAge: 30 * day, now: now))
        #expect(!Ledger.isExpired(createdAt: now + 5_000, maxAge: 30 * day, now: now), "a created-at a little ahead is not old")
        #expect(Ledger.isExpired(createdAt: now + 30 * day + 600_001, maxAge: 30 * day, now: now), "one further ahead than the maximum age could never expire: it does now")
        #expect(Ledger.isExpired(createdAt: .max, maxAge: 30 * day, now: now))
        #expect(!Ledger.isExpired(createdAt: 0, maxAge: .max, now: .max))
        #expect(Ledger.isExpired(createdAt: 0, maxAge: .max - 600_001, now: .max))
    }

    @Test func expiredAndMootRecordsLeavePending() throws {
        let w = try World(quorum: 1)
        let now: UInt64 = 1_000 * Self.day
        let old = try w.stored(Array("an old song".utf8), createdAt: now - 40 * Self.day)
        let fresh = try w.stored(Array("a fresh song".utf8), createdAt: now - Self.day)
        let placed = try w.stored(Array("a placed song".utf8), createdAt: now - Self.day)
        // A policy change taken in: one naming the policy before it is now superseded.
        let first = try w.policyChange("closer", signedBy: [w.owner]) { $0.maxPendingProposals = 50 }
        try w.ledger.propose(all: [placed, first])
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(all: [old, fresh])
        // Moot once `old` is refused: a review of it alone; a review of it and `fresh` stays.
        let ofOld = try w.review([old.id], accept: true, by: w.curatorA)
        let ofBoth = try w.review([old.id, fresh.id], accept: true, by: w.curatorB)
        try w.ledger.propose(all: [ofOld, ofBoth])
        let stale = try Envelope(kind: .policy, body: PolicyChange(datanet: w.datanet, previous: w.datanet.genesis,
                                                                     state: try w.ledger.reader.state(of: w.datanet).policy, summary: "late").body)
        var staleSigned = stale
        try staleSigned.sign(with: w.owner)
        try w.ledger.env.write { txn in _ = try w.ledger.propose(txn, staleSigned, try Record(staleSigned), in: try w.ledger.state(txn, w.datanet)) }
        let pendingBefore = Set(try w.ledger.reader.pendingRecords(w.datanet).map(\.id))
        #expect(pendingBefore.isSuperset(of: [old.id, fresh.id, ofOld.id, ofBoth.id, staleSigned.id]))

        let report = try w.ledger.expirePending(w.datanet, maxAge: 30 * Self.day, now: now)
        #expect(report.contributions == 1 && report.reviews == 1 && report.policies == 1, "\(report)")
        let after = Set(try w.ledger.reader.pendingRecords(w.datanet).map(\.id))
        #expect(after == pendingBefore.subtracting([old.id, ofOld.id, staleSigned.id]))
        try PendingItemsTests.agree(w.ledger, w.datanet)
        #expect(try w.ledger.reader.refusedRecords(among: [old.id, fresh.id, ofOld.id, ofBoth.id, staleSigned.id]) == [old.id, ofOld.id, staleSigned.id],
                "what expired or became moot is refused, so no peer hands it back")
        // Refused for good: proposed again or carried by a bundle, it is passed over.
        #expect(throws: LedgerRefusal.expired(record: old.id.hex)) { try w.ledger.propose(old) }
        let peer = try BundleTests.Peer()
        try peer.ledger.importBundle(from: try Self.file(BundleTests.export(w.ledger, w.datanet)))
        try peer.ledger.propose(old) // a peer that has not expired it offers it back
        let back = try BundleTests.export(peer.ledger, w.datanet, recordsOnly: true)
        #expect(try BundleTests.frames(back).contains { $0.count > 5 && Array($0[5...]) == old.encoded }, "the bundle carries it")
        let summary = try BundleTests.importBytes(w.ledger, back)
        #expect(!Set(try w.ledger.reader.pendingRecords(w.datanet).map(\.id)).contains(old.id), "\(summary)")
        try PendingItemsTests.agree(w.ledger, w.datanet)
        // Nothing left to expire: a second pass writes nothing.
        #expect(try w.ledger.expirePending(w.datanet, maxAge: 30 * Self.day, now: now).total == 0)
    }

    /// An open file descriptor of `bytes` (read from the start).
    static func file(_ bytes: [UInt8]) throws -> Int32 {
        let path = NSTemporaryDirectory() + "expiry-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        return open(path, O_RDONLY)
    }
}

import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// The store's bound on queued content (`max-queued-bytes`, QueuedBytes.swift): proposals past
/// it are refused with the store unchanged, and the count follows every way a record leaves
/// the queue, so deferred proposals wait only within the bound.
@Suite struct QueueBoundTests {
    /// The count kept in ledger-meta, and the count made afresh from the queue.
    static func counts(_ ledger: Ledger) throws -> (kept: UInt64?, recounted: UInt64) {
        let kept = try ledger.env.read { txn in try txn.get(ledger.meta, Ledger.queuedBytesKey).map { BigEndian.u64($0) } }
        var recounted: UInt64 = 0
        for st in try ledger.reader.datanets() {
            for e in try ledger.reader.pendingRecords(st.id) { if case .contribution(let c) = try Record(e) { recounted += c.size } }
        }
        return (kept, recounted)
    }

    @Test func proposalsPastTheBoundWaitForTheSequencer() throws {
        // One undecided proposal per author: the sequencer defers the rest, which keep queueing.
        let w = try LedgerTests.World(quorum: 1, maxPending: 1)
        try StoreConfig(storeDirectory: w.dir).set("max-queued-bytes", "250")
        let ledger = try Ledger(store: w.ledger.store)
        let (a, b, c) = (try w.contribution("a"), try w.contribution("b"), try w.contribution("c"))
        try ledger.propose(all: [a, b])
        #expect(try Self.counts(ledger) == (200, 200))
        #expect(throws: LedgerRefusal.queueFull(queued: 200, adding: 100, bound: 250)) { try ledger.propose(c) }
        #expect(throws: LedgerRefusal.queueFull(queued: 200, adding: 100, bound: 250)) { try ledger.propose(all: [try w.review([a.id], accept: true, by: w.curatorA), c]) }
        #expect(try ledger.reader.pendingRecords(w.datanet).map(\.id) == [a.id, b.id], "a refused proposal leaves the queue as it was")
        // Reviews and other records carry no content: they queue past the bound.
        _ = try ledger.propose(try w.review([a.id], accept: true, by: w.curatorA))
        let report = try ledger.sequence(w.datanet, key: w.sequencer)
        #expect(report.deferred.map(\.record) == [b.id])
        #expect(try Self.counts(ledger) == (100, 100), "taken in: out of the queue; deferred: still in it")
        _ = try ledger.propose(c)
        #expect(try Self.counts(ledger) == (200, 200))
        // a was accepted in that run, so b is taken in and c deferred.
        _ = try ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try Self.counts(ledger) == (100, 100))
    }

    /// Records of any kind, all Datanets together, are bounded too (`max-queued-records`):
    /// keys are free, so many authors each within their quota, or records without content,
    /// cannot flood the queue. A record past the bound is refused, the queue as it was.
    @Test func recordsPastTheCountBoundAreRefused() throws {
        let w = try LedgerTests.World(quorum: 1)
        try StoreConfig(storeDirectory: w.dir).set("max-queued-records", "2")
        let ledger = try Ledger(store: w.ledger.store)
        let (a, b, c) = (try w.contribution("a"), try w.contribution("b"), try w.contribution("c"))
        try ledger.propose(all: [a, b])
        #expect(throws: LedgerRefusal.queueFullOfRecords(held: 2, bound: 2)) { try ledger.propose(c) }
        #expect(throws: LedgerRefusal.queueFullOfRecords(held: 2, bound: 2)) { try ledger.propose(try w.review([a.id], accept: true, by: w.curatorA)) }
        #expect(try ledger.reader.pendingRecords(w.datanet).map(\.id) == [a.id, b.id])
        _ = try ledger.sequence(w.datanet, key: w.sequencer)
        _ = try ledger.propose(c)
        #expect(StoreConfig.count("0") == nil && StoreConfig.count("1000000001") == nil && StoreConfig.count("-1") == nil && StoreConfig.count("12") == 12)
        try StoreConfig(storeDirectory: w.dir).set("max-queued-records", "many")
        #expect(throws: IdentityError.self) { try Ledger(store: w.ledger.store).propose(try w.contribution("d")) }
    }

    /// A store made before the count keeps none: the first proposal counts its queue.
    @Test func aStoreWithoutACountCountsItsQueueOnce() throws {
        let w = try LedgerTests.World(quorum: 1)
        try w.ledger.propose(all: [try w.contribution("a"), try w.contribution("b")])
        try w.ledger.env.write { txn in try txn.delete(w.ledger.meta, Ledger.queuedBytesKey) }
        #expect(try Self.counts(w.ledger) == (nil, 200))
        _ = try w.ledger.propose(try w.contribution("c"))
        #expect(try Self.counts(w.ledger) == (300, 300))
    }

    @Test func byteCountsAreReadStrictly() {
        #expect(StoreConfig.byteCount("16GiB") == 16 << 30)
        #expect(StoreConfig.byteCount("500 MB") == 500_000_000)
        #expect(StoreConfig.byteCount("250") == 250)
        #expect(StoreConfig.byteCount("7B") == 7)
        for bad in ["", "GiB", "-1", "1.5GiB", "12 apples", "0x10", "99999999999999999999", "20000000TiB"] {
            #expect(StoreConfig.byteCount(bad) == nil, "\(bad)")
        }
    }

    /// A bad setting fails a proposal with the file named, and reads nothing wrong.
    @Test func aBadSettingRefusesProposalsNamingTheFile() throws {
        let w = try LedgerTests.World(quorum: 1)
        try StoreConfig(storeDirectory: w.dir).set("max-queued-bytes", "lots")
        let ledger = try Ledger(store: w.ledger.store)
        #expect(throws: IdentityError.self) { _ = try ledger.propose(try w.contribution("a")) }
        #expect(try ledger.reader.pendingRecords(w.datanet).isEmpty)
    }
}

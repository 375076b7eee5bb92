import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Foundation
import Testing

/// Each Datanet's pending item tree (what sync reconciles) holds exactly the items of its
/// pending queue through proposals, sequencing runs, bundle imports and a store made before
/// the trees (filled on its first writable open).
@Suite struct PendingItemsTests {
    typealias World = LedgerTests.World

    /// The tree's items, and the queue's items (created-at for contributions, 0 otherwise).
    static func items(_ ledger: Ledger, _ d: DatanetID) throws -> (tree: [TimestampedID], queue: [TimestampedID]) {
        try ledger.env.read { txn in
            var tree = [TimestampedID](), queue = [TimestampedID]()
            let t = try #require(ledger.pendingItemsTree(d))
            try t.forEach(txn, 0, try t.count(txn)) { item, _ in tree.append(item); return true }
            try txn.scanNumbered(ledger.pending, d) { n, v in
                let (id, bytes) = try ledger.pendingRecord(txn, v, key: BigEndian.key(d, n))
                let e = try Envelope(encoded: try #require(bytes))
                let stamp: UInt64 = if case .contribution(let c) = try Record(e) { min(c.createdAt, .max - 1) } else { 0 }
                queue.append(TimestampedID(timestamp: stamp, id: id.digest))
                return true
            }
            return (tree, queue.sorted())
        }
    }

    /// Asserts the tree and the queue agree and returns how many items they hold.
    @discardableResult
    static func agree(_ ledger: Ledger, _ d: DatanetID, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let (tree, queue) = try items(ledger, d)
        #expect(tree == queue, sourceLocation: sourceLocation)
        return tree.count
    }

    @Test func theTreeFollowsTheQueue() throws {
        let w = try World(quorum: 1)
        let peer = try BundleTests.Peer()
        var made = [Envelope]()
        for i in 0..<40 { made.append(try w.stored(Array("song \(i)".utf8), createdAt: UInt64(1_000 + i % 7))) }
        try w.ledger.propose(all: Array(made[..<30]))
        #expect(try Self.agree(w.ledger, w.datanet) == 30)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try Self.agree(w.ledger, w.datanet) == 0)
        // Reviews (timestamp 0) and new contributions pending; a peer takes them by bundle.
        try w.ledger.propose(all: [try w.review(made[..<10].map(\.id), accept: true, by: w.curatorA),
                                   try w.review([made[10].id], accept: false, by: w.curatorB)] + Array(made[30...]))
        #expect(try Self.agree(w.ledger, w.datanet) == 12)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try Self.agree(peer.ledger, w.datanet) == 12)
        // The sequencer decides and takes in; the peer's copies leave its queue on import.
        // (One reject of two curators at quorum 1 decides nothing: that review stays pending.)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        #expect(try Self.agree(w.ledger, w.datanet) == 1)
        try BundleTests.importBytes(peer.ledger, try BundleTests.export(w.ledger, w.datanet))
        #expect(try Self.agree(peer.ledger, w.datanet) == 1)

        // A created-at of 2^64 − 1 (Negentropy's "infinity") reconciles as 2^64 − 2.
        let last = try w.stored(Array("from the end of time".utf8), createdAt: .max)
        try w.ledger.propose(last)
        #expect(try Self.items(w.ledger, w.datanet).tree.contains(TimestampedID(timestamp: .max - 1, id: last.id.digest)))
        try Self.agree(w.ledger, w.datanet)

        // A store made before the trees: its tree and marker gone, the upgrade a writable open
        // runs fills it (and runs once).
        try w.ledger.propose(try w.stored(Array("late".utf8), createdAt: 5))
        try w.ledger.env.write { txn in
            let table = try #require(w.ledger.pendingItems)
            var keys = [[UInt8]]()
            try txn.scan(table) { k, _ in keys.append(Array(k)); return true }
            for k in keys { _ = try txn.delete(table, k) }
            _ = try txn.delete(w.ledger.meta, Ledger.pendingItemsFilled)
        }
        #expect(try Self.items(w.ledger, w.datanet).tree.isEmpty)
        try w.ledger.fillPendingItems()
        #expect(try Self.agree(w.ledger, w.datanet) == 3)
        try w.ledger.fillPendingItems()
        #expect(try Self.agree(w.ledger, w.datanet) == 3)
    }
}

#if DATANET_FAULTS
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import Testing

/// SQLite-style fault loop over sequencing: fail the Nth LMDB write or commit, N = 1, 2, …
/// until a run completes with no fault fired. After every failure the log is a prefix that its
/// newest signed checkpoint covers exactly, the audit holds, and sequencing again finishes
/// the same log a run without faults makes.
@Suite(.serialized) struct SequencingFaultTests {
    typealias World = LedgerTests.World

    /// Three contributions and an exact copy, a policy change, and reviews that decide all three.
    static func prepared() throws -> (World, [Envelope]) {
        let w = try World(quorum: 1)
        let items = try ["one", "two", "three"].map { try w.contribution($0) } + [try w.contribution("one", by: w.curatorA)]
        let change = try w.policyChange("rename", signedBy: [w.owner]) { $0.name = "birds (renamed)" }
        try w.ledger.propose(all: items + [change, try w.review([items[0].id, items[1].id], accept: true, by: w.curatorA),
                                           try w.review([items[2].id], accept: false, by: w.curatorA),
                                           try w.review([items[2].id], accept: false, by: w.curatorB)])
        return (w, items)
    }

    /// What a finished log shows, independent of keys: leaf kinds, and each item's verdict.
    static func outcome(_ w: World, _ items: [Envelope]) throws -> [String] {
        try w.ledger.reader.leaves(w.datanet).map { "\($0.leaf.kind)" }
            + items.map { item in try w.ledger.reader.decision(item.id).map { "decided at \($0)" } ?? "undecided" }
    }

    @Test(arguments: [false, true])
    func failTheNthWriteOrCommitWhileSequencing(persistent: Bool) throws {
        let (reference, referenceItems) = try Self.prepared()
        _ = try reference.ledger.sequence(reference.datanet, key: reference.sequencer, leavesPerTransaction: 2)
        let expected = try Self.outcome(reference, referenceItems)
        #expect(expected.filter { $0 == "decision" }.count == 4)
        var n = 1, completed = false
        while !completed {
            try #require(n < 5_000)
            let (w, items) = try Self.prepared()
            let plan = FaultPlan(failAt: n, persistent: persistent)
            w.ledger.store.env.faults = plan
            let result = try? w.ledger.sequence(w.datanet, key: w.sequencer, leavesPerTransaction: 2)
            w.ledger.store.env.faults = nil
            completed = !plan.fired
            #expect((result != nil) == completed, "run \(n)")
            // What committed is a prefix with its own signed checkpoint, and it obeys every rule.
            let st = try w.ledger.reader.state(of: w.datanet)
            let cp = try Checkpoint.verify(note: try #require(try w.ledger.reader.latestCheckpoint(w.datanet)), key: w.sequencer.publicKey)
            let hashes = try w.ledger.reader.leaves(w.datanet).map(\.leaf.hash)
            #expect(cp.size == st.size && UInt64(hashes.count) == st.size, "run \(n)")
            #expect(cp.root == Merkle.root(leafHashes: hashes), "run \(n)")
            #expect(try w.ledger.audit(w.datanet).holds, "run \(n)")
            if !completed { _ = try w.ledger.sequence(w.datanet, key: w.sequencer, leavesPerTransaction: 2) }
            #expect(try Self.outcome(w, items) == expected, "run \(n)")
            #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty, "run \(n)")
            n += 1
        }
        #expect(n > 10)
    }
}
#endif

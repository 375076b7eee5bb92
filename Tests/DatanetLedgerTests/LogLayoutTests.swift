import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
@testable import DatanetStore
import Foundation
import Glibc
import Testing

/// Every Datanet's log lives in two shared tables (`log-leaves`, `log-nodes`), so a store
/// follows as many Datanets as it likes (LMDB allows 256 named tables); stores that kept a
/// table per Datanet are moved on their next writable open and still read before it.
@Suite struct LogLayoutTests {
    static func directory() -> String {
        NSTemporaryDirectory() + "datanet-layout-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// A genesis signed by `owner` naming `sequencer`, made unique by `n`.
    static func genesis(_ n: Int, owner: SigningKey, sequencer: SigningKey) throws -> Envelope {
        let policy = PolicyState(name: "set \(n)", owner: owner.publicKey, sequencer: sequencer.publicKey,
                                 curators: [owner.publicKey], quorum: 1, contributors: nil, readers: nil,
                                 maxPendingProposals: 100, maxPendingBytes: 1 << 30)
        var nonce = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { nonce[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
        var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 1, nonce: nonce).body)
        try g.sign(with: owner)
        return g
    }

    static func contribution(_ d: DatanetID, _ text: String, by key: SigningKey) throws -> Envelope {
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: d, author: key.publicKey, content: ObjectID(SHA256.hash(Array(text.utf8))), contentKind: .blob,
            size: 100, mediaType: "text/plain", license: "CC0-1.0", sidecar: .zero, createdAt: 2).body)
        try e.sign(with: key)
        return e
    }

    /// Named tables of the store whose name starts with `prefix`.
    static func tables(_ ledger: Ledger, _ prefix: String) throws -> [String] {
        try ledger.env.read { try $0.tableNames(prefix: prefix) }
    }

    @Test(.timeLimit(.minutes(5))) func tenThousandDatanetsThroughEveryCommandThatWalksThemAll() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let count = 10_000
        let owner = try SigningKey(), sequencer = try SigningKey()
        var ids = [DatanetID]()
        do {
            let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
            for n in 0..<count { ids.append(try ledger.create(genesis: try Self.genesis(n, owner: owner, sequencer: sequencer), sequencerKey: sequencer)) }
            // A few with more than the genesis leaf, so the walks meet intakes and decisions.
            for d in ids.prefix(3) {
                try ledger.propose(try Self.contribution(d, "text for \(d.hex)", by: owner))
                _ = try ledger.sequence(d, key: sequencer)
            }
            // The named tables do not grow with the Datanets.
            #expect(try Self.tables(ledger, "leaves:").isEmpty && Self.tables(ledger, "log:").isEmpty)
            #expect(try Self.tables(ledger, "").count < 40)
        }
        // A fresh open walks them all: datanets, gc, fsck, bundle export of each.
        let ledger = try Ledger(store: try ObjectStore(directory: dir))
        let all = try ledger.reader.datanets()
        #expect(all.count == count)
        #expect(Set(all.map(\.id)) == Set(ids))
        let gc = try ledger.collectGarbage(dryRun: true)
        #expect(gc.tombstoned == 0 && gc.dryRun)
        #expect(try ledger.store.fsck().problems.isEmpty)
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        var leaves = 0
        for st in all { leaves += try ledger.exportBundle(st.id, recordsOnly: true, to: null).leaves }
        #expect(leaves == count + 3)
        // Each log is its own: the first Datanet's leaves are its own, and a proof verifies.
        let first = try ledger.reader.leaves(ids[0])
        #expect(first.count == 2 && first.allSatisfy { $0.leaf.datanet == ids[0] })
        #expect(try ledger.audit(ids[0]).violations.isEmpty && ledger.audit(ids[count - 1]).violations.isEmpty)
    }

    /// Rewrites a store's shared log tables into the layout of stores made before them: a
    /// `leaves:<id>` and a `log:<id>` table per Datanet, keyed by index and position alone.
    static func makeLegacy(_ dir: String, _ ids: [DatanetID]) throws {
        let store = try ObjectStore(directory: dir)
        try store.env.write { txn in
            let leaves = try txn.openTable(LeafTable.tableName), nodes = try txn.openTable(MerkleLog.tableName)
            for d in ids {
                for (shared, name) in [(leaves, "leaves:" + d.hex), (nodes, "log:" + d.hex)] {
                    let own = try txn.openTable(name, create: true)
                    var rows = [([UInt8], [UInt8])]()
                    try txn.scan(shared, from: d.bytes) { k, v in
                        guard k.starts(with: d.bytes) else { return false }
                        rows.append((Array(k.dropFirst(32)), Array(v)))
                        return true
                    }
                    for (k, v) in rows { try txn.put(own, k, v, append: true) }
                }
            }
            try txn.drop(leaves)
            try txn.drop(nodes)
        }
    }

    @Test func storesWithATablePerDatanetAreReadThenMovedOnTheNextWritableOpen() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let owner = try SigningKey(), sequencer = try SigningKey()
        var ids = [DatanetID](), contributions = [RecordID]()
        var before = [[UInt8]](), receipts = [Data]()
        do {
            let ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
            for n in 0..<3 {
                let d = try ledger.create(genesis: try Self.genesis(n, owner: owner, sequencer: sequencer), sequencerKey: sequencer)
                ids.append(d)
                for i in 0...n { contributions.append(try ledger.propose(try Self.contribution(d, "item \(i) of \(n)", by: owner))) }
                _ = try ledger.sequence(d, key: sequencer)
            }
            for d in ids { before.append(contentsOf: try ledger.reader.leaves(d).map(\.leaf.encoded)) }
            receipts = try contributions.map { try ledger.provenance.receipt(for: $0).json }
        }
        try Self.makeLegacy(dir, ids)

        // Read-only open: nothing moves, everything reads from the old tables.
        do {
            let ledger = try Ledger(store: try ObjectStore(directory: dir), create: false)
            #expect(ledger.legacyLogs == Set(ids))
            var leaves = [[UInt8]]()
            for d in ids { leaves.append(contentsOf: try ledger.reader.leaves(d).map(\.leaf.encoded)) }
            #expect(leaves == before)
            #expect(try contributions.map { try ledger.provenance.receipt(for: $0).json } == receipts)
            #expect(try ledger.audit(ids[2]).violations.isEmpty)
            #expect(try Self.tables(ledger, "leaves:").count == 3)
        }

        // Writable open: moved, old tables dropped, the same bytes read, and the logs grow.
        let ledger = try Ledger(store: try ObjectStore(directory: dir))
        #expect(ledger.legacyLogs.isEmpty)
        #expect(try Self.tables(ledger, "leaves:").isEmpty && Self.tables(ledger, "log:").isEmpty)
        var leaves = [[UInt8]]()
        for d in ids { leaves.append(contentsOf: try ledger.reader.leaves(d).map(\.leaf.encoded)) }
        #expect(leaves == before)
        #expect(try contributions.map { try ledger.provenance.receipt(for: $0).json } == receipts)
        for d in ids { #expect(try ledger.audit(d).violations.isEmpty) }
        try ledger.propose(try Self.contribution(ids[1], "after the move", by: owner))
        #expect(try ledger.sequence(ids[1], key: sequencer).size == 4)
        #expect(try ledger.audit(ids[1]).violations.isEmpty)
    }
}

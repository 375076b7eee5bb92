import DatanetCrypto
import DatanetObjects
import DatanetStore
@testable import DatanetSync
import DatanetTestSupport
import Foundation
import Testing

/// The item set kept in LMDB (`SumTree`) against the in-memory one and a sorted array:
/// counts, items at indices, ranks and fingerprints through random insertions and removals,
/// the same after the store is reopened and when loaded at once; and the reference
/// transcripts replayed with the server's set read from LMDB.
@Suite struct StoredNegentropyItemsTests {
    final class Store {
        let dir = NSTemporaryDirectory() + "datanet-sumtree-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var store: ObjectStore
        var table: Table
        init() throws {
            store = try ObjectStore(directory: dir, create: true)
            table = try store.env.openTables([SumTree.tableName], create: true)[0]
        }
        func reopen() throws {
            store = try ObjectStore(directory: dir, create: false)
            table = try store.env.openTables([SumTree.tableName], create: false)[0]
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }
        func tree(_ name: String) -> SumTree { SumTree(table: table, id: SHA256.hash(Array(name.utf8))) }
    }

    /// Every answer of the stored set equals the sorted array's (random probes, every bucket edge).
    static func agree(_ s: Store, _ tree: SumTree, _ model: [NegentropyItem], _ rng: inout SplitMix64) throws {
        let memory = NegentropyItems(model)
        try s.store.env.read { txn in
            let stored = StoredNegentropyItems(tree, in: txn)
            #expect(try stored.itemCount() == model.count)
            guard !model.isEmpty else { return }
            for _ in 0..<25 {
                let i = Int(rng.next() % UInt64(model.count))
                #expect(try stored.item(at: i) == model[i])
                let a = Int(rng.next() % UInt64(model.count + 1)), b = Int(rng.next() % UInt64(model.count + 1))
                let (lo, hi) = (min(a, b), max(a, b))
                #expect(try stored.fingerprint(lo, hi) == memory.fingerprint(lo, hi))
                var seen = [NegentropyItem]()
                try stored.forEach(lo, hi) { item, index in seen.append(item); return index - lo < 40 }
                #expect(seen == Array(model[lo..<min(hi, lo + 41)]))
                let probe = NegentropyTests.randomItem(&rng)
                #expect(try stored.rank(below: probe) == memory.rank(below: probe))
                #expect(try stored.rank(below: model[i]) == i)
            }
        }
    }

    @Test func storedItemsAgreeThroughChangesAndReopening() throws {
        let s = try Store()
        var rng = SplitMix64(seed: 0x5eed)
        var model = [NegentropyItem]()
        let tree = s.tree("songs")
        for round in 0..<12 {
            try s.store.env.write { txn in
                for _ in 0..<300 {
                    if rng.next() % 3 == 0, !model.isEmpty {
                        let victim = model.remove(at: Int(rng.next() % UInt64(model.count)))
                        let (first, again) = (try tree.remove(txn, victim), try tree.remove(txn, victim))
                        #expect(first && !again)
                    } else {
                        let item = NegentropyTests.randomItem(&rng)
                        let (first, again) = (try tree.insert(txn, item), try tree.insert(txn, item))
                        #expect(first && !again)
                        model.insert(item, at: model.firstIndex { $0 > item } ?? model.count)
                    }
                }
            }
            if round % 3 == 0 { try Self.agree(s, tree, model, &rng) }
        }
        // Another tree in the same table is apart.
        let other = s.tree("poems")
        try s.store.env.write { txn in _ = try other.insert(txn, model[0]) }
        try s.reopen()
        try Self.agree(s, s.tree("songs"), model, &rng)
        #expect(try s.store.env.read { txn in try s.tree("poems").count(txn) } == 1)
        // Emptied, then loaded at once: the same answers as built one by one.
        let removedAll = try s.store.env.write { txn in try model.allSatisfy { try s.tree("songs").remove(txn, $0) } }
        #expect(removedAll)
        #expect(try s.store.env.read { txn in try s.tree("songs").count(txn) } == 0)
        try s.store.env.write { txn in try s.tree("songs").load(txn, sorted: model) }
        try Self.agree(s, s.tree("songs"), model, &rng)
    }

    /// Batches of additions and removals at once (`SumTree.change`: clustered and scattered,
    /// items already there or absent, a batch emptying the tree) leave what the model holds.
    @Test func batchedChangesAgreeWithTheModel() throws {
        let s = try Store()
        var rng = SplitMix64(seed: 0xba7c)
        var model = Set<NegentropyItem>()
        let tree = s.tree("batches")
        for round in 0..<14 {
            var adds = Set<NegentropyItem>(), removes = Set<NegentropyItem>()
            let clustered = round % 2 == 0
            let base = rng.next() % 1000
            for k in 0..<Int(rng.next() % 900) {
                var item = NegentropyTests.randomItem(&rng)
                if clustered { item = NegentropyItem(timestamp: base + UInt64(k / 7), id: item.id) }
                adds.insert(item)
            }
            // Some of what is held, some of what is not, some added twice.
            for item in model where rng.next() % 3 == 0 { removes.insert(item) }
            for _ in 0..<20 { removes.insert(NegentropyTests.randomItem(&rng)) }
            if let again = model.first { adds.insert(again) }
            adds.subtract(removes)
            if round == 9 { removes = model; adds = [] } // everything at once
            let expected = (added: adds.subtracting(model).count, removed: removes.intersection(model).count)
            let got = try s.store.env.write { txn in try tree.change(txn, adding: adds.sorted(), removing: removes.sorted()) }
            #expect(got.added == expected.added && got.removed == expected.removed)
            model.subtract(removes)
            model.formUnion(adds)
            try Self.agree(s, tree, model.sorted(), &rng)
        }
    }

    /// An item both removed and added in one batch ends up held, by the node-by-node path and
    /// by the rebuild a large removal takes.
    @Test func anItemInBothListsEndsUpHeld() throws {
        let s = try Store()
        var rng = SplitMix64(seed: 0xb07)
        let items = Array(Set((0..<3_000).map { _ in NegentropyTests.randomItem(&rng) })).sorted()
        let small = s.tree("small"), large = s.tree("large")
        try s.store.env.write { txn in try small.load(txn, sorted: items); try large.load(txn, sorted: items) }
        let x = items[17]
        let few = try s.store.env.write { txn in try small.change(txn, adding: [x], removing: [x, items[18]]) }
        let most = try s.store.env.write { txn in try large.change(txn, adding: [x], removing: Array(items[..<2_000])) }
        #expect(few.removed == 2 && few.added == 1 && most.removed == 2_000 && most.added == 1)
        try s.store.env.read { txn in
            let (rank, smallCount) = (try StoredNegentropyItems(small, in: txn).rank(below: items[19]), try small.count(txn))
            let (largeCount, first) = (try large.count(txn), try large.item(txn, at: 0))
            #expect(rank == 18 && smallCount == items.count - 1)
            #expect(largeCount == 1_001 && first == x)
        }
    }

    /// Damaged node values (cut, kinds and counts changed, bytes flipped) make reads throw,
    /// never trap; the reconciler says so as its own storage error.
    @Test func damagedNodesFailCleanly() throws {
        let s = try Store()
        var rng = SplitMix64(seed: 0xda6a)
        let tree = s.tree("damaged")
        let items = (0..<700).map { _ in NegentropyTests.randomItem(&rng) }.sorted()
        try s.store.env.write { txn in try tree.load(txn, sorted: Array(Set(items)).sorted()) }
        var keys = [[UInt8]]()
        try s.store.env.read { txn in try txn.scan(s.table) { k, _ in keys.append(Array(k)); return true } }
        var failures = 0
        for round in 0..<400 {
            let txn = try s.store.env.beginWrite()
            defer { txn.abort() }
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            var v = try #require(try txn.get(s.table, key))
            switch round % 4 {
            case 0: v = Array(v.prefix(Int(rng.next() % UInt64(v.count))))
            case 1: v[0] ^= UInt8(1 + rng.next() % 255)
            case 2: if v.count > 3 { v[1 + Int(rng.next() % 2)] ^= UInt8(1 + rng.next() % 255) }
            default: for _ in 0..<4 { v[Int(rng.next() % UInt64(v.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            try txn.put(s.table, key, v)
            let stored = StoredNegentropyItems(tree, in: txn)
            do {
                let n = try stored.itemCount()
                _ = try stored.rank(below: NegentropyTests.randomItem(&rng))
                if n > 0 {
                    _ = try stored.item(at: Int(rng.next() % UInt64(min(n, 700))))
                    _ = try stored.fingerprint(0, min(n, 700))
                    try stored.forEach(0, min(n, 700)) { _, _ in true }
                }
                var server = try Negentropy(stored)
                var (h, nd) = ([Digest](), [Digest]())
                var client = try Negentropy(NegentropyItems(items.prefix(300)))
                _ = try server.reconcile(try client.initiate(), have: &h, need: &nd)
            } catch {
                failures += 1
            }
        }
        #expect(failures > 100)
        // A root whose first child is the root itself: every descent stops with an error.
        let txn = try s.store.env.beginWrite()
        defer { txn.abort() }
        let metaKey = try #require(keys.last) // id ‖ ff×8 sorts last
        let meta = try #require(try txn.get(s.table, metaKey))
        let rootKey = Array(metaKey.prefix(32)) + Array(meta.prefix(8))
        var root = try #require(try txn.get(s.table, rootKey))
        try #require(root[0] == 1)
        root.replaceSubrange(3..<11, with: meta.prefix(8))
        try txn.put(s.table, rootKey, root)
        let stored = StoredNegentropyItems(tree, in: txn)
        #expect(throws: (any Error).self) { try stored.item(at: 0) }
        #expect(throws: (any Error).self) { try stored.rank(below: items[100]) } // (under the first child)
        #expect(throws: (any Error).self) { try stored.fingerprint(0, 5) }
    }

    @Test(arguments: ["random_1000_10pct_each_side", "frame_limit_server_only_4096", "small_overlap_20", "empty_both"])
    func transcriptsReplayWithTheServersSetInLMDB(_ name: String) throws {
        let scenario = try #require(NegentropyTests.file.scenarios.first { $0.name == name })
        let s = try Store()
        let tree = s.tree(name)
        let sorted = scenario.server.map { NegentropyItem(timestamp: $0.timestamp, id: Digest(hex: $0.id)!) }.sorted()
        if !sorted.isEmpty { try s.store.env.write { txn in try tree.load(txn, sorted: sorted) } }
        var client = try Negentropy(NegentropyTests.items(scenario.client), frameSizeLimit: scenario.frameSizeLimitClient)
        var message = try client.initiate()
        for round in scenario.rounds {
            #expect(Hex.encode(message) == round.client_to_server)
            let answer = try s.store.env.read { txn in
                var server = try Negentropy(StoredNegentropyItems(tree, in: txn), frameSizeLimit: scenario.frameSizeLimitServer)
                var (h, n) = ([Digest](), [Digest]())
                return try #require(try server.reconcile(message, have: &h, need: &n))
            }
            #expect(Hex.encode(answer) == round.server_to_client)
            var (h, n) = ([Digest](), [Digest]())
            guard let next = try client.reconcile(answer, have: &h, need: &n) else { break }
            message = next
        }
    }
}

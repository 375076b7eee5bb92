import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import DatanetRecords
import Testing

/// A cursor's lookups, puts and deletes agree with a plain dictionary, for ascending runs
/// (the case it is for) and for keys in any order.
@Suite struct CursorTests {
    @Test func cursorWritesMatchAModel() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        let table = try store.env.openTables(["cursor-test"], create: true)[0]
        var model = [UInt64: UInt64]()
        var rng = SplitMix64(seed: 0xC0850)
        let d = DatanetID(SHA256.hash([7]))
        for round in 0..<6 {
            // Rounds alternate ascending runs and random order; some keys repeat, some deletes miss.
            var keys = (0..<2_000).map { _ in rng.next() % 5_000 }
            if round % 2 == 0 { keys.sort() }
            try store.env.write { txn in
                try txn.withCursor(table) { c in
                    for k in keys {
                        if rng.next() % 3 == 0 {
                            let removed = try c.delete(DigestNumberKey(d, k))
                            #expect(removed == (model.removeValue(forKey: k) != nil))
                        } else {
                            let v = rng.next()
                            try c.put(DigestNumberKey(d, k), BigEndianUInt64(v))
                            model[k] = v
                        }
                        #expect(try c.withValue(DigestNumberKey(d, k)) { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) } == model[k])
                    }
                }
            }
        }
        var stored = [UInt64: UInt64]()
        try store.env.read { txn in
            try txn.scan(table) { k, v in
                #expect(k.count == 40 && k.starts(with: d.bytes))
                stored[UInt64(bigEndian: UnsafeRawBufferPointer(rebasing: k[32...]).loadUnaligned(as: UInt64.self))] =
                    UInt64(bigEndian: v.loadUnaligned(as: UInt64.self))
                return true
            }
        }
        #expect(stored == model)
    }

    /// A store serves many readers at once (`serve` sessions, listing workers): far more read
    /// transactions than LMDB's default table of 126 slots may be open together.
    @Test func manyReadersAtOnce() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        #expect(store.env.maxReaders >= Environment.readerSlots)
        var open = [Transaction]()
        for _ in 0..<600 { open.append(try store.env.beginRead()) }
        #expect(open.count == 600)
        for t in open { t.abort() }
    }

    @Test func fixedKeysHoldTheirBytes() {
        let d = DatanetID(SHA256.hash([1, 2, 3]))
        DigestNumberKey(d, 0x0102_0304_0506_0708).withUnsafeBytes { #expect(Array($0) == d.bytes + [1, 2, 3, 4, 5, 6, 7, 8]) }
        BigEndianUInt64(258).withUnsafeBytes { #expect(Array($0) == [0, 0, 0, 0, 0, 0, 1, 2]) }
    }

    /// `lastKey(prefix:)` against a sorted model, for prefixes present, absent, between others,
    /// empty, and made of 0xff bytes (which have no "prefix plus one").
    @Test func lastKeyWithPrefixMatchesAModel() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        let table = try store.env.openTables(["last-key-test"], create: true)[0]
        let keys: [[UInt8]] = [[0x00], [0x01, 0x00], [0x01, 0x05], [0x01, 0xff], [0x01, 0xff, 0x02], [0x02],
                               [0xff, 0x01], [0xff, 0xff], [0xff, 0xff, 0x07]]
        try store.env.write { txn in for k in keys { try txn.put(table, k, [1]) } }
        let prefixes: [[UInt8]] = [[], [0x00], [0x01], [0x01, 0xff], [0x02], [0x03], [0xfe], [0xff], [0xff, 0xff], [0xff, 0xff, 0xff]]
        try store.env.read { txn in
            for p in prefixes {
                let expected = keys.filter { $0.starts(with: p) }.last
                let found = try txn.lastKey(table, prefix: p)
                #expect(found == expected, "prefix \(p)")
            }
            let names = try txn.tableNames(prefix: "last-")
            #expect(names == ["last-key-test"])
        }
    }
}

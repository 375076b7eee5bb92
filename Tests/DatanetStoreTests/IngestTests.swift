import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Testing

@Suite struct IngestTests {
    /// Both read paths: the single-threaded reader and the two-thread pipeline (whose 4 MiB slots
    /// make 9 MiB + 1 cross slot boundaries with a carried tail).
    @Test(arguments: [0, 1, FastCDC.minSize - 1, FastCDC.minSize, FastCDC.maxSize, FastCDC.maxSize + 1, 3_000_001, 9 << 20 + 1],
          [false, true])
    func roundTrip(size: Int, pipelined: Bool) throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        var rng = SplitMix64(seed: UInt64(size) &+ 17)
        let data = rng.bytes(size)
        writeFile(dir.file("f"), data)
        let ingest = Ingest(store: store)
        ingest.pipelineThreshold = pipelined ? 0 : .max
        let r = try ingest.add(paths: [dir.file("f")])
        #expect(r.count == 1 && r[0].kind == .blob && r[0].size == UInt64(size))
        // Same chunks either way: cut the whole buffer at once and compare.
        #expect(try store.blob(r[0].id)?.chunks.map { Int($0.length) } == cutInMemory(data))
        #expect(try readBlob(store, r[0].id) == data)
        let m = try #require(try store.blob(r[0].id))
        #expect(m.size == UInt64(size))
        #expect(m.chunks.allSatisfy { Int($0.length) <= FastCDC.maxSize })
        if size <= FastCDC.minSize { #expect(m.chunks.count == (size == 0 ? 0 : 1)) }
        #expect(try store.fsck().problems.isEmpty)
    }

    @Test func roundTrip128MiBAndDedupOfEdits() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        let size = 128 << 20
        var rng = SplitMix64(seed: 128)
        let base = rng.bytes(size)
        writeFile(dir.file("base"), base)
        let first = try Ingest(store: store).add(paths: [dir.file("base")])[0]
        #expect(first.newBytes == UInt64(size))
        #expect(try readBlob(store, first.id) == base)

        // 32 scattered 4 KiB overwrites at seeded offsets: under 5% new bytes.
        var edited = base
        for _ in 0..<32 {
            let at = Int(rng.next() % UInt64(size - 4096))
            edited.replaceSubrange(at..<at + 4096, with: rng.bytes(4096))
        }
        writeFile(dir.file("edited"), edited)
        let e = try Ingest(store: store).add(paths: [dir.file("edited")])[0]
        #expect(e.newBytes < UInt64(size) / 20, "32 edits added \(e.newBytes) new bytes")
        #expect(e.newBytes > 0)
        #expect(try readBlob(store, e.id) == edited)

        // 1 MiB inserted near the start: under 5% beyond the inserted MiB.
        var inserted = base
        inserted.insert(contentsOf: rng.bytes(1 << 20), at: 100_000)
        writeFile(dir.file("inserted"), inserted)
        let i = try Ingest(store: store).add(paths: [dir.file("inserted")])[0]
        #expect(i.newBytes < UInt64(1 << 20) + UInt64(size) / 20, "insert added \(i.newBytes) new bytes")
        #expect(try readBlob(store, i.id) == inserted)
        #expect(try store.fsck().problems.isEmpty)
    }

    @Test func foldersBecomeTreesWithRawNames() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        let root = dir.file("data")
        try FileManager.default.createDirectory(atPath: root + "/sub/deeper", withIntermediateDirectories: true)
        writeFile(root + "/b.txt", Array("bravo".utf8))
        writeFile(root + "/a.txt", Array("alpha".utf8))
        writeFile(root + "/sub/deeper/x.bin", [1, 2, 3])
        writeFile(root + "/sub/é", Array("accent".utf8))
        let r = try Ingest(store: store).add(paths: [root])[0]
        #expect(r.kind == .tree)
        #expect(r.size == 5 + 5 + 3 + 6)
        let t = try #require(try store.tree(r.id))
        #expect(t.entries.map { String(decoding: $0.name, as: UTF8.self) } == ["a.txt", "b.txt", "sub"])
        #expect(t.entries[2].kind == .tree)
        let sub = try #require(try store.tree(t.entries[2].id))
        #expect(sub.entries.map(\.name) == [Array("deeper".utf8), Array("é".utf8)])
        #expect(try readBlob(store, t.entries[0].id) == Array("alpha".utf8))
        // Same folder again: same id, nothing new.
        let again = try Ingest(store: store).add(paths: [root])[0]
        #expect(again.id == r.id && again.newBytes == 0)
        #expect(try store.fsck().problems.isEmpty)
    }

    /// What the add's last transaction writes commits with the content or not at all: a throw
    /// from `beforeCommit` (a ledger refusing the proposal of what was just stored) rolls back
    /// the whole add, batches already committed included.
    @Test func beforeCommitRollsTheWholeAddBack() throws {
        let dir = TempDir("ingest-hook")
        let store = try makeStore(dir)
        var rng = SplitMix64(seed: 11)
        writeFile(dir.file("keep"), rng.bytes(100_000))
        _ = try Ingest(store: store).add(paths: [dir.file("keep")])
        func counts() throws -> [Int] {
            try store.env.read { txn in try [store.chunks, store.blobs, store.roots, store.leases].map { try txn.count($0) } }
        }
        let before = try counts()
        writeFile(dir.file("big"), rng.bytes(40 << 20)) // more than one 32 MiB batch
        struct Refused: Error {}
        let ingest = Ingest(store: store)
        var seen = [AddResult]()
        ingest.beforeCommit = { txn, added in
            seen = added
            #expect(try txn.contains(store.roots, added[0].id)) // the content is visible in the hook's transaction
            throw Refused()
        }
        #expect(throws: Refused.self) { try ingest.add(paths: [dir.file("big")]) }
        #expect(seen.count == 1 && seen[0].size == 40 << 20)
        #expect(try counts() == before)
        // Without a throw the same add commits, hook writes included.
        let ok = Ingest(store: store)
        ok.beforeCommit = { txn, added in try txn.put(store.roots, SHA256.hash([1]), try #require(try txn.get(store.roots, added[0].id))) }
        let added = try ok.add(paths: [dir.file("big")])
        #expect(try store.env.read { txn in try txn.contains(store.roots, SHA256.hash([1])) && txn.contains(store.roots, added[0].id) })
    }

    @Test func gearTableMatchesTheReference() {
        // First values of the reference table (fastcdc-rs v2020 GEAR), derived here from MD5.
        #expect(FastCDC.gear(0) == 0x3b5d_3c7d_207e_37dc)
        #expect(FastCDC.gear(1) == 0x784d_68ba_9112_3086)
        #expect(FastCDC.gear(255) == 0xaabd_2b2a_4515_04e1)
    }

    @Test func chunkerRespectsBoundsAndIsStreamingExact() throws {
        var rng = SplitMix64(seed: 9)
        let data = rng.bytes(10 << 20) + [UInt8](repeating: 0, count: 3 << 20)
        let dir = TempDir()
        writeFile(dir.file("f"), data)
        // Cutting the whole buffer at once must give the same chunks as the streaming reader.
        let whole = cutInMemory(data)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ChunkReader.bufferSize, alignment: 64)
        defer { buffer.deallocate() }
        let reader = try ChunkReader(path: Array(dir.file("f").utf8), buffer: buffer)
        var streamed = [Int]()
        while let (_, bytes) = try reader.next() { streamed.append(bytes.count) }
        #expect(streamed == whole)
        #expect(whole.dropLast().allSatisfy { $0 >= FastCDC.minSize && $0 <= FastCDC.maxSize })
        #expect(whole.suffix(12).dropLast().allSatisfy { $0 == FastCDC.maxSize }) // zeros never match a mask
    }
}

/// Chunk lengths from cutting the whole input in memory, the reference for streaming readers.
func cutInMemory(_ data: [UInt8]) -> [Int] {
    var lengths = [Int]()
    data.withUnsafeBytes { b in
        var at = 0
        while at < b.count {
            let n = FastCDC.cut(UnsafeRawBufferPointer(rebasing: b[at..<min(b.count, at + FastCDC.maxSize)]))
            lengths.append(n)
            at += n
        }
    }
    return lengths
}

import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Testing

@Suite struct ProofAndFsckTests {
    func storeWithFile(_ dir: TempDir, size: Int = 2_000_000) throws -> (ObjectStore, ObjectID, BlobManifest) {
        let store = try makeStore(dir)
        var rng = SplitMix64(seed: 77)
        writeFile(dir.file("f"), rng.bytes(size))
        let id = try Ingest(store: store).add(paths: [dir.file("f")])[0].id
        return (store, id, try #require(try store.blob(id)))
    }

    @Test func everyChunkProofVerifiesAndFailsAfterAnyOneChange() throws {
        let dir = TempDir()
        let (_, id, m) = try storeWithFile(dir)
        #expect(m.chunks.count > 8)
        for index in m.chunks.indices {
            let good = ChunkProof(blobID: id, manifest: m, index: index)
            try good.verify()
            var mutations: [(String, ChunkProof)] = []
            func mutate(_ what: String, _ f: (inout ChunkProof) -> Void) { var p = good; f(&p); mutations.append((what, p)) }
            mutate("index") { $0.index += 1 }
            mutate("offset") { $0.offset += 1 }
            mutate("length") { $0.length -= 1 }
            mutate("size") { $0.size += 1 }
            // The chunk count is not a claim of its own (RFC 9162 binds a tree's size through the
            // root's shape only), but the last chunk, and only it, must end the file.
            if index == m.chunks.count - 1 { mutate("chunks") { $0.chunks += 1 } }
            mutate("root digit") { $0.root = flipDigit($0.root) }
            mutate("blob digit") { $0.blob = flipDigit($0.blob) }
            mutate("chunk digit") { $0.chunk = flipDigit($0.chunk) }
            mutate("type") { $0.type = "datanet/chunk-proof/v0" }
            mutate("proof dropped") { $0.proof.removeLast() }
            for i in good.proof.indices { mutate("proof[\(i)] digit") { $0.proof[i] = flipDigit($0.proof[i]) } }
            for (what, bad) in mutations {
                #expect(throws: ChunkProof.Failure.self, "chunk \(index): changing \(what) should fail") { try bad.verify() }
            }
        }
    }

    func flipDigit(_ hex: String) -> String {
        var c = Array(hex)
        c[5] = c[5] == "0" ? "1" : "0"
        return String(c)
    }

    @Test func fsckNamesAChunkAlteredUnderIt() throws {
        let dir = TempDir()
        let (store, _, m) = try storeWithFile(dir)
        #expect(try store.fsck().problems.isEmpty)
        let victim = m.chunks[3].id
        try store.env.write { txn in
            var bytes = try #require(try txn.get(store.chunks, victim))
            bytes[100] ^= 0x01
            try txn.put(store.chunks, victim, bytes)
        }
        let report = try store.fsck()
        #expect(report.problems.count == 1)
        #expect(report.problems.first?.contains(victim.hex) == true)
        #expect(throws: StoreError.self) { try readBlob(store, try #require(try store.addedObjects().first).id) }
    }

    @Test func fsckFindsDamagedManifestsTreesAndMissingChunks() throws {
        let dir = TempDir()
        let (store, id, m) = try storeWithFile(dir)
        // A manifest whose chunk list no longer matches its root and id.
        var altered = m
        altered.chunks.swapAt(0, 1)
        try store.env.write { txn in try txn.put(store.blobs, id, altered.encoded) }
        var problems = try store.fsck().problems
        #expect(problems.contains { $0.contains("blob \(id)") && $0.contains("offset") })
        #expect(problems.contains { $0.contains("Merkle root") })
        // A missing chunk.
        try store.env.write { txn in
            try txn.put(store.blobs, id, m.encoded)
            try txn.delete(store.chunks, m.chunks[2].id)
        }
        problems = try store.fsck().problems
        #expect(problems == ["blob \(id): chunk 2 (\(m.chunks[2].id)) is missing"])
        // A tree that is not canonical CBOR.
        try store.env.write { txn in try txn.put(store.trees, ObjectID(bytes: [UInt8](repeating: 7, count: 32))!, [0x9f, 0xff]) }
        #expect(try store.fsck().problems.contains { $0.contains("tree 0707") })
    }

    @Test func orphansOfAnInterruptedAddAreUnreferencedNotDamage() throws {
        let dir = TempDir()
        let store = try makeStore(dir)
        var rng = SplitMix64(seed: 5)
        let orphan = rng.bytes(70_000)
        let id = ObjectID(SHA256.hash(orphan))
        try store.env.write { txn in
            try txn.put(store.chunks, id, orphan)
            try txn.put(store.leases, [UInt8](repeating: 1, count: 16), [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xfe] + [UInt8](repeating: 0, count: 8))
        }
        let r = try store.fsck()
        #expect(r.problems.isEmpty)
        #expect(r.unreferenced.map(\.1) == [id])
        #expect(r.staleLeases == 1)
    }
}

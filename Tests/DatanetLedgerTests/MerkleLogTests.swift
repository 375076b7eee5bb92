import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Testing

/// The LMDB-backed log against the in-memory RFC 9162 definitions: roots at every size,
/// inclusion and consistency proofs for all pairs up to 64 and random pairs in a 100,000-leaf
/// log, each verified and each failing when any one value is altered.
@Suite struct MerkleLogTests {
    static func leaves(_ n: Int, seed: UInt64 = 1) -> [Digest] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Merkle.leafHash(rng.bytes(16)) }
    }

    func withLog<R>(_ leaves: [Digest], _ body: (Environment, MerkleLog) throws -> R) throws -> R {
        let dir = NSTemporaryDirectory() + "datanet-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try ObjectStore(directory: dir, create: true)
        let log = try MerkleLog(env: store.env, id: DatanetID(SHA256.hash(Array("log".utf8))), create: true)
        try store.env.write { txn in
            var at = 0
            while at < leaves.count {
                // Several appends, so the log is built across calls as well as within one.
                let n = min(leaves.count - at, 777)
                try log.append(txn, leafHashes: Array(leaves[at..<at + n]))
                at += n
            }
        }
        return try body(store.env, log)
    }

    @Test func positionsArePostOrder() {
        #expect((0..<4).map { MerkleLog.position(level: 0, index: $0) } == [0, 1, 3, 4])
        #expect(MerkleLog.position(level: 1, index: 0) == 2)
        #expect(MerkleLog.position(level: 1, index: 1) == 5)
        #expect(MerkleLog.position(level: 2, index: 0) == 6)
        #expect(MerkleLog.position(level: 0, index: 4) == 7)
    }

    @Test func rootsAtEverySizeUpTo300() throws {
        let all = Self.leaves(300)
        try withLog(all) { (env: Environment, log: MerkleLog) throws in
            try env.read { (txn: Transaction) throws in
                #expect(try log.size(txn) == 300)
                for n in 0...300 {
                    #expect(try log.root(txn, size: UInt64(n)) == Merkle.root(leafHashes: Array(all.prefix(n))), "size \(n)")
                }
            }
        }
    }

    /// Every batch `BatchProof.batches` cuts, for every start and size up to 70 (blocks of at
    /// most 2^3 leaves), is a full aligned subtree whose proof from the stored log satisfies
    /// the C2SP subtree verifier (itself driven by the published probes), and fails when a
    /// hash of the proof or of the batch is altered.
    @Test func batchSubtreeProofsUpTo70() throws {
        let all = Self.leaves(70, seed: 5)
        try withLog(all) { (env: Environment, log: MerkleLog) throws in
            try env.read { (txn: Transaction) throws in
                for size in 1...70 {
                    let root = Merkle.root(leafHashes: Array(all.prefix(size)))
                    for from in 0..<size {
                        let batches = BatchProof.batches(from: UInt64(from), to: UInt64(size), maximumLevel: 3)
                        #expect(batches.first?.start == UInt64(from) && batches.last?.end == UInt64(size))
                        #expect(zip(batches, batches.dropFirst()).allSatisfy { $0.end == $1.start })
                        for (start, end) in batches {
                            let width = end - start
                            #expect(width.nonzeroBitCount == 1 && width <= 8 && start % width == 0)
                            let proof = try log.subtreeProof(txn, start: start, end: end, size: UInt64(size))
                            let sub = Merkle.root(leafHashes: Array(all[Int(start)..<Int(end)]))
                            try Merkle.verifySubtreeConsistency(start: start, end: end, size: UInt64(size), subtreeRoot: sub, root: root, proof: proof)
                            for i in proof.indices {
                                var bad = proof
                                bad[i] = SHA256.hash(bad[i].bytes)
                                #expect(throws: Merkle.ProofError.self) {
                                    try Merkle.verifySubtreeConsistency(start: start, end: end, size: UInt64(size), subtreeRoot: sub, root: root, proof: bad)
                                }
                            }
                            #expect(throws: Merkle.ProofError.self) {
                                try Merkle.verifySubtreeConsistency(start: start, end: end, size: UInt64(size), subtreeRoot: SHA256.hash(sub.bytes), root: root, proof: proof)
                            }
                        }
                    }
                }
                #expect(throws: LedgerError.self) { try log.subtreeProof(txn, start: 2, end: 5, size: 8) }
                #expect(throws: LedgerError.self) { try log.subtreeProof(txn, start: 64, end: 128, size: 70) }
            }
        }
    }

    @Test func allProofPairsUpTo64() throws {
        let all = Self.leaves(64, seed: 2)
        try withLog(all) { (env: Environment, log: MerkleLog) throws in
            try env.read { (txn: Transaction) throws in
                for size in 1...64 {
                    let prefix = Array(all.prefix(size))
                    let root = Merkle.root(leafHashes: prefix)
                    for index in 0..<size {
                        let proof = try log.inclusionProof(txn, index: UInt64(index), size: UInt64(size))
                        #expect(proof == Merkle.inclusionProof(index: index, leafHashes: prefix))
                        try Merkle.verifyInclusion(index: UInt64(index), size: UInt64(size), leafHash: prefix[index], proof: proof, root: root)
                    }
                    for size1 in 1...size {
                        let proof = try log.consistencyProof(txn, size1: UInt64(size1), size2: UInt64(size))
                        #expect(proof == Merkle.consistencyProof(size1: size1, leafHashes: prefix), "\(size1) -> \(size)")
                        let root1 = Merkle.root(leafHashes: Array(prefix.prefix(size1)))
                        try Merkle.verifyConsistency(size1: UInt64(size1), size2: UInt64(size), root1: root1, root2: root, proof: proof)
                        try Self.everyAlterationFails(size1: UInt64(size1), size2: UInt64(size), root1: root1, root2: root, proof: proof)
                    }
                }
            }
        }
    }

    /// Changing any one of the proof's hashes, either root, or size1 must fail. (Not size2: as
    /// with inclusion proofs, the larger tree's size is bound by its root, and a proof's shape
    /// can also fit a slightly larger tree.)
    static func everyAlterationFails(size1: UInt64, size2: UInt64, root1: Digest, root2: Digest, proof: [Digest]) throws {
        let other = Merkle.leafHash([0xee])
        func fails(_ why: String, _ s1: UInt64, _ s2: UInt64, _ r1: Digest, _ r2: Digest, _ p: [Digest]) {
            #expect(throws: Merkle.ProofError.self, "\(size1)->\(size2): \(why)") {
                try Merkle.verifyConsistency(size1: s1, size2: s2, root1: r1, root2: r2, proof: p)
            }
        }
        fails("root1", size1, size2, other, root2, proof)
        fails("root2", size1, size2, root1, other, proof)
        if size1 < size2 {
            for i in proof.indices { var p = proof; p[i] = other; fails("proof[\(i)]", size1, size2, root1, root2, p) }
            fails("size1 - 1", size1 - 1, size2, root1, root2, proof)
            fails("proof truncated", size1, size2, root1, root2, Array(proof.dropLast()))
        }
    }

    @Test func randomPairsInA100kLog() throws {
        let n = 100_000
        let all = Self.leaves(n, seed: 3)
        var rng = SplitMix64(seed: 4)
        try withLog(all) { (env: Environment, log: MerkleLog) throws in
            try env.read { (txn: Transaction) throws in
                #expect(try log.size(txn) == UInt64(n))
                // Roots at random sizes, from in-memory hashing of the prefix (checked 20 times).
                var roots = [UInt64: Digest]()
                for _ in 0..<20 {
                    let size = 1 + rng.next() % UInt64(n)
                    roots[size] = Merkle.root(leafHashes: Array(all.prefix(Int(size))))
                    #expect(try log.root(txn, size: size) == roots[size])
                }
                let sizes = roots.keys.sorted()
                for size in sizes {
                    for _ in 0..<50 {
                        let index = rng.next() % size
                        let proof = try log.inclusionProof(txn, index: index, size: size)
                        try Merkle.verifyInclusion(index: index, size: size, leafHash: all[Int(index)], proof: proof, root: roots[size]!)
                        var bad = proof
                        bad[Int(rng.next() % UInt64(bad.count))] = Merkle.leafHash([1])
                        #expect(throws: Merkle.ProofError.self) {
                            try Merkle.verifyInclusion(index: index, size: size, leafHash: all[Int(index)], proof: bad, root: roots[size]!)
                        }
                    }
                }
                for (i, s1) in sizes.enumerated() {
                    for s2 in sizes[i...] {
                        let proof = try log.consistencyProof(txn, size1: s1, size2: s2)
                        try Merkle.verifyConsistency(size1: s1, size2: s2, root1: roots[s1]!, root2: roots[s2]!, proof: proof)
                        try Self.everyAlterationFails(size1: s1, size2: s2, root1: roots[s1]!, root2: roots[s2]!, proof: proof)
                    }
                }
            }
        }
    }

    @Test func proofsOutsideTheLogAreRefused() throws {
        try withLog(Self.leaves(10)) { (env: Environment, log: MerkleLog) throws in
            try env.read { (txn: Transaction) throws in
                func range(_ e: any Error) -> Bool { if case .proofRange? = e as? LedgerError { true } else { false } }
                #expect(performing: { try log.inclusionProof(txn, index: 10, size: 10) }, throws: range)
                #expect(performing: { try log.inclusionProof(txn, index: 0, size: 11) }, throws: range)
                #expect(performing: { try log.consistencyProof(txn, size1: 0, size2: 5) }, throws: range)
                #expect(performing: { try log.consistencyProof(txn, size1: 6, size2: 5) }, throws: range)
            }
        }
    }
}

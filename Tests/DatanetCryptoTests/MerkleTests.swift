import DatanetCrypto
import Testing

/// RFC 9162 hashing checked against a naive recursive definition, and inclusion proofs checked
/// to verify for every (index, size) up to 64 and to fail on any altered value.
@Suite struct MerkleTests {
    static func leaves(_ n: Int) -> [Digest] { (0..<n).map { Merkle.leafHash([UInt8(truncatingIfNeeded: $0), 0x5a]) } }

    /// MTH(D[n]) written exactly as RFC 9162 §2.1.1 states it.
    static func naiveRoot(_ d: ArraySlice<Digest>) -> Digest {
        if d.isEmpty { return Merkle.emptyRoot }
        if d.count == 1 { return d.first! }
        var k = 1
        while k * 2 < d.count { k *= 2 }
        return Merkle.nodeHash(naiveRoot(d.prefix(k)), naiveRoot(d.dropFirst(k)))
    }

    @Test func knownHashes() {
        #expect(Merkle.emptyRoot.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // RFC 6962/9162 leaf hash of the empty leaf (transparency-dev testdata).
        #expect(Merkle.leafHash([]).hex == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    }

    /// RFC 9162's split point k (the largest power of two below n), for every n up to 4,096 and
    /// at the edges of 64-bit sizes, against the definition counted out.
    @Test func splitPointIsTheLargestPowerOfTwoBelow() {
        for n in 2...4_096 {
            var k = 1
            while k * 2 < n { k *= 2 }
            #expect(Merkle.largestPowerOfTwo(below: n) == k)
            #expect(Merkle.largestPowerOfTwo(below: UInt64(n)) == UInt64(k))
        }
        #expect(Merkle.largestPowerOfTwo(below: UInt64(1) << 63) == 1 << 62)
        #expect(Merkle.largestPowerOfTwo(below: (UInt64(1) << 63) + 1) == 1 << 63)
        #expect(Merkle.largestPowerOfTwo(below: UInt64.max) == 1 << 63)
    }

    @Test func rootsMatchTheRecursiveDefinition() {
        let all = Self.leaves(300)
        for n in 0...300 {
            #expect(Merkle.root(leafHashes: Array(all.prefix(n))) == Self.naiveRoot(all.prefix(n)), "size \(n)")
        }
    }

    @Test func inclusionProofsVerifyAndFailWhenAltered() throws {
        let all = Self.leaves(64)
        for size in 1...64 {
            let leaves = Array(all.prefix(size))
            let root = Merkle.root(leafHashes: leaves)
            for index in 0..<size {
                let proof = Merkle.inclusionProof(index: index, leafHashes: leaves)
                #expect(proof.count == Merkle.inclusionProofSize(index: UInt64(index), size: UInt64(size)))
                try Merkle.verifyInclusion(index: UInt64(index), size: UInt64(size), leafHash: leaves[index], proof: proof, root: root)
                // A different leaf, index, root or proof element must each fail. (The size is bound by
                // the root, not by the path: a proof can also fit a larger tree's shape.)
                let other = Merkle.leafHash([0xff])
                #expect(throws: Merkle.ProofError.self) {
                    try Merkle.verifyInclusion(index: UInt64(index), size: UInt64(size), leafHash: other, proof: proof, root: root)
                }
                if size > 1 {
                    #expect(throws: Merkle.ProofError.self) {
                        try Merkle.verifyInclusion(index: UInt64((index + 1) % size), size: UInt64(size), leafHash: leaves[index], proof: proof, root: root)
                    }
                }
                #expect(throws: Merkle.ProofError.self) {
                    try Merkle.verifyInclusion(index: UInt64(index), size: UInt64(size), leafHash: leaves[index], proof: proof, root: other)
                }
                for i in proof.indices {
                    var bad = proof
                    bad[i] = other
                    #expect(throws: Merkle.ProofError.self) {
                        try Merkle.verifyInclusion(index: UInt64(index), size: UInt64(size), leafHash: leaves[index], proof: bad, root: root)
                    }
                }
            }
        }
        #expect(throws: Merkle.ProofError.indexOutOfRange(index: 3, size: 3)) {
            try Merkle.rootFromInclusionProof(index: 3, size: 3, leafHash: all[0], proof: [])
        }
    }
}

/// Verification of RFC 9162 inclusion and consistency proofs, and of subtree inclusion and
/// consistency proofs (draft-ietf-plants-merkle-tree-certs §4.4), as pure functions that
/// recompute a root and compare. Written from the RFC and the draft, checked against every
/// transparency-dev probe (Tests/DatanetCryptoTests/Vectors/merkle).
///
/// Terms: the paths to leaves `index` and `size − 1` share their upper part; below the level
/// where they diverge ("inner") a sibling may be on either side, above it ("border") every
/// sibling is a left one.
extension Merkle {
    /// The number of hashes an inclusion proof for (index, size) must have.
    public static func inclusionProofSize(index: UInt64, size: UInt64) -> Int {
        let (inner, border) = decompose(index: index, size: size)
        return inner + border
    }

    /// (inner, border) proof lengths for leaf `index` in a tree of `size`. Requires index < size.
    static func decompose(index: UInt64, size: UInt64) -> (Int, Int) {
        let inner = bitLength(index ^ (size - 1))
        return (inner, (index >> UInt64(inner)).nonzeroBitCount)
    }

    static func bitLength(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }

    /// Hashes `seed` up through `proof`, the sibling at level i on the side bit i of `index` says.
    static func chainInner(_ seed: Digest, _ proof: ArraySlice<Digest>, index: UInt64, _ h: inout SHA256.Hasher) -> Digest {
        var r = seed
        for (i, p) in proof.enumerated() {
            r = (index >> UInt64(i)) & 1 == 0 ? nodeHash(r, p, using: &h) : nodeHash(p, r, using: &h)
        }
        return r
    }

    /// Like `chainInner`, but only with the left siblings: the same subtree as it was before
    /// anything to its right existed.
    static func chainInnerRight(_ seed: Digest, _ proof: ArraySlice<Digest>, index: UInt64, _ h: inout SHA256.Hasher) -> Digest {
        var r = seed
        for (i, p) in proof.enumerated() where (index >> UInt64(i)) & 1 == 1 {
            r = nodeHash(p, r, using: &h)
        }
        return r
    }

    /// Hashes `seed` up the right border, where every sibling is on the left.
    static func chainBorderRight(_ seed: Digest, _ proof: ArraySlice<Digest>, _ h: inout SHA256.Hasher) -> Digest {
        var r = seed
        for p in proof { r = nodeHash(p, r, using: &h) }
        return r
    }

    /// Recomputes the root from a leaf hash and its inclusion proof (RFC 9162 §2.1.3.2).
    /// - Requires: `index < size`.
    /// - Throws: `.indexOutOfRange`, `.wrongProofSize`.
    public static func rootFromInclusionProof(index: UInt64, size: UInt64, leafHash: Digest,
                                              proof: [Digest]) throws(ProofError) -> Digest {
        guard index < size else { throw .indexOutOfRange(index: index, size: size) }
        let (inner, border) = decompose(index: index, size: size)
        guard proof.count == inner + border else { throw .wrongProofSize(got: proof.count, want: inner + border) }
        var h = SHA256.Hasher()
        let r = chainInner(leafHash, proof[..<inner], index: index, &h)
        return chainBorderRight(r, proof[inner...], &h)
    }

    /// Verifies an inclusion proof against a known root.
    /// - Throws: any `ProofError`; `.rootMismatch` when the shape is right but the root differs.
    public static func verifyInclusion(index: UInt64, size: UInt64, leafHash: Digest,
                                       proof: [Digest], root: Digest) throws(ProofError) {
        try match(try rootFromInclusionProof(index: index, size: size, leafHash: leafHash, proof: proof), root)
    }

    /// Verifies that the tree of `size2` with `root2` extends the tree of `size1` with `root1`
    /// (RFC 9162 §2.1.4.2). Requires 0 < size1 ≤ size2; equal sizes need an empty proof and equal roots.
    public static func verifyConsistency(size1: UInt64, size2: UInt64, root1: Digest, root2: Digest,
                                         proof: [Digest]) throws(ProofError) {
        guard size1 <= size2 else { throw .invalidRange("size2 \(size2) < size1 \(size1)") }
        guard size1 > 0 else { throw .invalidRange("a consistency proof from the empty tree proves nothing") }
        if size1 == size2 {
            guard proof.isEmpty else { throw .unexpectedProof("sizes are equal but the proof is not empty") }
            return try match(root1, root2)
        }
        guard !proof.isEmpty else { throw .unexpectedProof("consistency proof is empty") }
        try match(try rootFromSubtreeConsistency(start: 0, end: size1, size: size2, proof: proof, subtreeRoot: root1), root2)
    }

    /// True when [start, end) is a subtree: `start` is 0 or a multiple of the smallest power of
    /// two ≥ end − start. The empty range [s, s) counts (it is part of every tree).
    public static func isSubtree(start: UInt64, end: UInt64) -> Bool {
        guard start <= end else { return false }
        if start == 0 || start == end { return true }
        let width = end - start
        let span: UInt64 = width.nonzeroBitCount == 1 ? width : 1 << UInt64(bitLength(width))
        return span != 0 && start % span == 0
    }

    /// Verifies that leaf `index` is in subtree [start, end) with root `subtreeRoot`.
    public static func verifySubtreeInclusion(index: UInt64, start: UInt64, end: UInt64, leafHash: Digest,
                                              proof: [Digest], subtreeRoot: Digest) throws(ProofError) {
        guard isSubtree(start: start, end: end) else { throw .invalidRange("[\(start), \(end)) is not a subtree") }
        guard index >= start && index < end else { throw .indexOutOfRange(index: index, size: end) }
        try verifyInclusion(index: index - start, size: end - start, leafHash: leafHash, proof: proof, root: subtreeRoot)
    }

    /// Verifies that subtree [start, end) with `subtreeRoot` is part of the tree of `size` with `root`.
    public static func verifySubtreeConsistency(start: UInt64, end: UInt64, size: UInt64, subtreeRoot: Digest,
                                                root: Digest, proof: [Digest]) throws(ProofError) {
        guard isSubtree(start: start, end: end) else { throw .invalidRange("[\(start), \(end)) is not a subtree") }
        guard end <= size else { throw .invalidRange("subtree end \(end) is past the tree size \(size)") }
        if start == end {
            // The empty subtree is part of every tree: its root must be the empty hash, and
            // there is nothing to prove about `root`.
            guard proof.isEmpty else { throw .unexpectedProof("the subtree is empty but the proof is not") }
            return try match(subtreeRoot, emptyRoot)
        }
        if start == 0 && end == size {
            guard proof.isEmpty else { throw .unexpectedProof("the subtree is the whole tree but the proof is not empty") }
            return try match(subtreeRoot, root)
        }
        guard !proof.isEmpty else { throw .unexpectedProof("consistency proof is empty") }
        try match(try rootFromSubtreeConsistency(start: start, end: end, size: size, proof: proof, subtreeRoot: subtreeRoot), root)
    }

    /// Recomputes the root of the tree of `size` from subtree [start, end) and a proof, checking
    /// on the way that the proof's nodes inside the subtree hash to `subtreeRoot`.
    static func rootFromSubtreeConsistency(start: UInt64, end: UInt64, size: UInt64, proof: [Digest],
                                           subtreeRoot: Digest) throws(ProofError) -> Digest {
        var h = SHA256.Hasher()
        let height = bitLength((end - 1) ^ start)
        if end == size {
            // The subtree ends the tree: only its left siblings up the border are needed.
            let want = (start >> UInt64(height)).nonzeroBitCount
            guard proof.count == want else { throw .wrongProofSize(got: proof.count, want: want) }
            return chainBorderRight(subtreeRoot, proof[...], &h)
        }
        let fork = bitLength((end - 1) ^ (size - 1))
        let shift = (end - start).trailingZeroBitCount
        // The proof opens with the rightmost full subtree inside [start, end), unless that is the
        // whole subtree, whose root the verifier already has.
        let full = end - start == 1 << UInt64(shift)
        let seed = full ? subtreeRoot : proof[0]
        let first = full ? 0 : 1
        let want = first + (fork - shift) + ((end - 1) >> UInt64(fork)).nonzeroBitCount
        guard proof.count == want else { throw .wrongProofSize(got: proof.count, want: want) }
        // Grow the subtree root as it was at `end` and as it is at `size` side by side.
        var old = seed, grown = seed
        var i = first
        for level in shift..<height {
            if ((end - 1) >> UInt64(level)) & 1 == 1 {
                old = nodeHash(proof[i], old, using: &h)
                grown = nodeHash(proof[i], grown, using: &h)
                i += 1
            } else if level < fork {
                grown = nodeHash(grown, proof[i], using: &h)
                i += 1
            }
        }
        try match(old, subtreeRoot)
        // The rest is an inclusion proof of the grown subtree as a leaf of the tree at its height.
        let index = start >> UInt64(height)
        let levelSize = ((size - 1) >> UInt64(height)) + 1
        return try rootFromInclusionProof(index: index, size: levelSize, leafHash: grown, proof: Array(proof[i...]))
    }

    static func match(_ calculated: Digest, _ expected: Digest) throws(ProofError) {
        guard calculated == expected else { throw .rootMismatch(expected: expected, calculated: calculated) }
    }
}

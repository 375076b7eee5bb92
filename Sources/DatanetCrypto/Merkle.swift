/// RFC 9162 Merkle tree hashing, inclusion proofs over an in-memory list of leaf hashes, and
/// their verification. Used for blob manifests (a chunk in a file) and, later, Datanet logs.
///
/// The tree for seven leaves (RFC 9162 §2.1.5): each split puts the largest power of two that
/// is smaller than the leaf count on the left.
///
///               root
///              /    \
///            k        l
///           / \      / \
///          g   h    i   \
///         / \ / \  / \   \
///         a b c d  e f    j
///         0 1 2 3  4 5    6
public enum Merkle {
    /// Errors from proof verification; every one carries the numbers that disagreed.
    public enum ProofError: Error, Equatable, CustomStringConvertible {
        /// The index is not below the tree size.
        case indexOutOfRange(index: UInt64, size: UInt64)
        /// The proof has the wrong number of hashes for (index, size).
        case wrongProofSize(got: Int, want: Int)
        /// The proof is well formed but leads to another root.
        case rootMismatch(expected: Digest, calculated: Digest)
        /// The sizes or bounds cannot have a proof (e.g. size2 < size1, a misaligned subtree).
        case invalidRange(String)
        /// A proof was given where none can exist, or none where one is needed.
        case unexpectedProof(String)

        public var description: String {
            switch self {
            case .indexOutOfRange(let i, let n): return "leaf index \(i) is out of range for a tree of size \(n)"
            case .wrongProofSize(let got, let want): return "inclusion proof has \(got) hashes, expected \(want)"
            case .rootMismatch(let e, let c): return "proof leads to root \(c), expected \(e)"
            case .invalidRange(let why): return "no proof can exist: \(why)"
            case .unexpectedProof(let why): return why
            }
        }
    }

    /// The hash of the empty tree: SHA-256 of no bytes.
    public static let emptyRoot = SHA256.hash([UInt8]())

    /// Leaf hash: SHA-256(0x00 ‖ data).
    public static func leafHash(_ data: UnsafeRawBufferPointer) -> Digest {
        var h = SHA256.Hasher()
        h.update([0x00])
        h.update(data)
        return h.finalize()
    }

    /// Leaf hash of a byte array.
    public static func leafHash(_ data: [UInt8]) -> Digest {
        data.withUnsafeBytes { leafHash($0) }
    }

    /// Interior node hash: SHA-256(0x01 ‖ left ‖ right).
    public static func nodeHash(_ left: Digest, _ right: Digest, using h: inout SHA256.Hasher) -> Digest {
        h.update([0x01])
        h.update(left)
        h.update(right)
        return h.finalize()
    }

    /// Interior node hash with a fresh hasher.
    public static func nodeHash(_ left: Digest, _ right: Digest) -> Digest {
        var h = SHA256.Hasher()
        return nodeHash(left, right, using: &h)
    }

    /// The root over `leaves` (already leaf-hashed). Bottom-up pairing with the odd node carried
    /// up unchanged builds exactly the RFC 9162 left-balanced tree.
    public static func root(leafHashes leaves: [Digest]) -> Digest {
        guard !leaves.isEmpty else { return emptyRoot }
        var level = leaves
        var h = SHA256.Hasher()
        while level.count > 1 {
            var next = [Digest]()
            next.reserveCapacity((level.count + 1) / 2)
            var i = 0
            while i + 1 < level.count {
                next.append(nodeHash(level[i], level[i + 1], using: &h))
                i += 2
            }
            if i < level.count { next.append(level[i]) }
            level = next
        }
        return level[0]
    }

    /// The inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index`, leaf first.
    /// - Requires: `index < leaves.count`.
    public static func inclusionProof(index: Int, leafHashes leaves: [Digest]) -> [Digest] {
        precondition(index >= 0 && index < leaves.count, "inclusion proof index out of range")
        var proof = [Digest]()
        path(index, leaves[...], into: &proof)
        return proof
    }

    private static func path(_ m: Int, _ d: ArraySlice<Digest>, into proof: inout [Digest]) {
        let n = d.count
        guard n > 1 else { return }
        let k = largestPowerOfTwo(below: n)
        let start = d.startIndex
        if m < k {
            path(m, d[start..<start + k], into: &proof)
            proof.append(root(leafHashes: Array(d[(start + k)...])))
        } else {
            path(m - k, d[(start + k)...], into: &proof)
            proof.append(root(leafHashes: Array(d[start..<start + k])))
        }
    }

    /// The consistency proof (RFC 9162 §2.1.4.1) from the first `size1` leaves to all of them.
    /// - Requires: `0 < size1 <= leaves.count`.
    public static func consistencyProof(size1: Int, leafHashes leaves: [Digest]) -> [Digest] {
        precondition(size1 > 0 && size1 <= leaves.count, "consistency proof sizes out of range")
        var proof = [Digest]()
        subproof(size1, leaves[...], complete: true, into: &proof)
        return proof
    }

    private static func subproof(_ m: Int, _ d: ArraySlice<Digest>, complete: Bool, into proof: inout [Digest]) {
        let n = d.count
        if m == n {
            if !complete { proof.append(root(leafHashes: Array(d))) }
            return
        }
        let k = largestPowerOfTwo(below: n)
        let start = d.startIndex
        if m <= k {
            subproof(m, d[start..<start + k], complete: complete, into: &proof)
            proof.append(root(leafHashes: Array(d[(start + k)...])))
        } else {
            subproof(m - k, d[(start + k)...], complete: false, into: &proof)
            proof.append(root(leafHashes: Array(d[start..<start + k])))
        }
    }

    /// The largest power of two strictly less than `n`: where RFC 9162 splits a tree of n > 1
    /// leaves.
    /// Inlinable so each caller gets a specialized copy: unspecialized generic integer
    /// arithmetic across the module boundary doubled the cost of a stored inclusion proof.
    @inlinable
    public static func largestPowerOfTwo<T: FixedWidthInteger>(below n: T) -> T {
        guard n > 2 else { return 1 }
        return 1 << (T.bitWidth - 1 - (n - 1).leadingZeroBitCount)
    }
}

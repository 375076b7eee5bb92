import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// What a store remembers of a pinned Datanet it was shown (schema/receipt.md "Trust on first
/// use"): the newest checkpoint a verification accepted, and the policy chain up to it. Every
/// later receipt must agree with it, as Go's checksum-database client requires of each new tree.
public struct SeenCheckpoint: Sendable, Equatable {
    /// The signed checkpoint note, as received.
    public let note: String
    public let size: UInt64
    public let root: Digest
    /// The policy, set-sequencer and continuation leaves below `size`: (index, leaf hash).
    public let chain: [Link]

    public struct Link: Sendable, Equatable {
        public let index: UInt64
        public let hash: Digest
        public init(index: UInt64, hash: Digest) { (self.index, self.hash) = (index, hash) }
    }

    public init(note: String, chain: [Link]) throws(RecordError) {
        let cp: Checkpoint
        do { cp = try Checkpoint.unverified(note: note) } catch { throw .malformed("the remembered checkpoint does not parse: \(error)") }
        (self.note, size, root, self.chain) = (note, cp.size, cp.root, chain)
    }

    /// CBOR {1: note, 2: [[index, leaf hash], …]}: the value of the store's pin entry.
    public var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(1, .string(note))
        b.set(2, .array(chain.map { .array([.unsigned($0.index), .bytes($0.hash.bytes)]) }))
        return b.encoded
    }

    public init(encoded: [UInt8]) throws(RecordError) {
        var f = try BodyFields(encoded, kind: "remembered checkpoint")
        let note = try f.text(1, "note", maxBytes: 64 << 10)
        let links = try f.field(2, "chain", wrong: { _ in "the remembered chain is not a list of [index, 32-byte hash]" }) { s throws(CBORError) -> [Link]? in
            let n = try s.arrayCount()
            var out = [Link]()
            for _ in 0..<n {
                guard try s.arrayCount() == 2 else { return nil }
                let i = try s.unsigned()
                guard let h = Digest(try s.bytes()) else { return nil }
                out.append(Link(index: i, hash: h))
            }
            return out
        }
        try f.finish()
        try self.init(note: note, chain: links)
    }

    /// The check of a receipt's checkpoint `cp` (with its chain) against this memory. `proven`:
    /// a consistency proof between the two sizes was checked (this store's log holds both roots,
    /// or the receipt's `previous` is this checkpoint).
    package func check(_ cp: Checkpoint, chain: [Link], proven: Bool) -> VerificationCheck {
        let name = "consistent with the newest checkpoint seen"
        if cp.size == size {
            return cp.root == root
                ? VerificationCheck(name, .pass, "the checkpoint of size \(size) seen before has this root")
                : VerificationCheck(name, .fail, "FORK: a checkpoint of size \(size) with another root was seen before; keep both notes as evidence")
        }
        let common = min(cp.size, size)
        let mine = self.chain.filter { $0.index < common }, theirs = chain.filter { $0.index < common }
        guard mine == theirs else {
            let at = zip(mine, theirs).first { $0 != $1 }.map { min($0.index, $1.index) } ?? (mine.count < theirs.count ? theirs[mine.count].index : mine[theirs.count].index)
            return VerificationCheck(name, .fail, "FORK: the policy chain differs at leaf \(at) from the one seen at size \(size): another history (a key handoff left out or added)")
        }
        let span = cp.size > size ? "from size \(size) (seen) to \(cp.size)" : "from size \(cp.size) to \(size) (seen)"
        if proven { return VerificationCheck(name, .pass, "consistent \(span): the policy chains agree and a consistency proof holds") }
        return VerificationCheck(name, .statement, "the policy chains agree up to size \(common); that the other leaves \(span) are one history is the sequencer's word (no consistency proof here: a store holding the log shows it, or a receipt refreshed from size \(size))")
    }
}

extension Receipt {
    /// The receipt's policy chain as (index, leaf hash), as a store remembers it; an entry that
    /// does not decode is left out (the receipt then fails its well-formedness check anyway).
    package var chainLinks: [SeenCheckpoint.Link] {
        chain.compactMap { e in CanonicalBase64.decode(e.leaf).map { SeenCheckpoint.Link(index: e.index, hash: Merkle.leafHash(Array($0))) } }
    }
}

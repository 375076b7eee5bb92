import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Glibc

/// What places a batch of leaves in a Datanet's log (schema/protocol.md "Leaves in proven
/// batches"): a signed checkpoint and the subtree consistency proof (C2SP tlog subtree proofs,
/// as `Merkle.verifySubtreeConsistency` checks them) of the batch's leaves in that checkpoint's tree.
public struct BatchProof: Sendable, Equatable {
    /// The leaves of the batch: [start, end) (the bundle's header must say the same).
    public var start: UInt64, end: UInt64
    /// The signed checkpoint note the batch is proven against (it may lie beyond the batch).
    public var note: String
    /// The subtree consistency proof of leaves [start, end) in the tree of the note's size.
    public var path: [Digest]
    /// The first batch of a run that starts past leaf 0: the RFC 9162 consistency proof from
    /// `start` to the note's size, which places the receiver's log before the batch (empty otherwise).
    public var consistency: [Digest]

    public init(start: UInt64, end: UInt64, note: String, path: [Digest], consistency: [Digest] = []) {
        (self.start, self.end, self.note, self.path, self.consistency) = (start, end, note, path, consistency)
    }

    /// The most leaves a batch holds.
    public static let maximumLeaves: UInt64 = 1 << 12

    /// Checks that `leaves` (leaf hashes from index `from` on) are the subtree of the note's
    /// log the path says, for this Datanet's origin, and with a consistency proof, that this
    /// log's first `from` leaves (root `prefix`) are the note's log's.
    func place(leaves: [Digest], from: UInt64, prefix: () throws -> Digest, origin: String) throws {
        guard let cp = try? Checkpoint.unverified(note: note), cp.origin == origin else {
            throw BundleError.refused("the checkpoint a batch is proven against does not parse or is of another log")
        }
        if !consistency.isEmpty {
            do {
                try Merkle.verifyConsistency(size1: from, size2: cp.size, root1: try prefix(), root2: cp.root, proof: consistency)
            } catch let e as Merkle.ProofError {
                throw BundleError.refused("the peer's checkpoint of size \(cp.size) is not consistent with this log at size \(from) (\(e)): the two histories fork, or the peer lies; nothing of it was kept")
            }
        }
        let end = from + UInt64(leaves.count)
        do {
            try Merkle.verifySubtreeConsistency(start: from, end: end, size: cp.size, subtreeRoot: Merkle.root(leafHashes: leaves),
                                                root: cp.root, proof: path)
        } catch {
            throw BundleError.refused("leaves \(from)–\(end - 1) are not in the log of the checkpoint of size \(cp.size): \(error)")
        }
    }

    /// Whether the note's signature holds under the sequencer key `key` gives for its size
    /// (as far as the replay knows it).
    func isSigned(key: (UInt64) -> PublicKey?) -> Bool {
        guard let size = try? Checkpoint.unverified(note: note).size, let k = key(size) else { return false }
        return (try? Checkpoint.verify(note: note, key: k)) != nil
    }

    /// The batches [start, end) that carry leaves `from..<to`: each the largest aligned block
    /// of at most 2^`maximumLevel` leaves that starts where the last ended and fits (so each
    /// is a full subtree of any tree of size ≥ its end).
    public static func batches(from: UInt64, to: UInt64, maximumLevel: Int = maximumLeaves.trailingZeroBitCount) -> [(start: UInt64, end: UInt64)] {
        var out = [(start: UInt64, end: UInt64)]()
        var at = from
        while at < to {
            var level = min(maximumLevel, at == 0 ? 63 : at.trailingZeroBitCount)
            while level > 0 && (1 << UInt64(level)) > to - at { level -= 1 }
            out.append((at, at + (1 << UInt64(level))))
            at += 1 << UInt64(level)
        }
        return out
    }
}

/// A bundle that arrives in a run of them (`Ledger.importBundles`).
public enum IncomingBundle: Sendable {
    /// A batch of leaves placed by a proof; more bundles follow.
    case batch(BatchProof)
    /// The last bundle: leaves (if any) covered by its own checkpoints, and pending records.
    case last
}

extension MerkleLog {
    /// The subtree consistency proof of the full aligned block [start, end) (a power of two
    /// of leaves, `start` a multiple of it) in the tree of `size`: the audit path of that
    /// block's node among the nodes of its level.
    public func subtreeProof(_ txn: Transaction, start: UInt64, end: UInt64, size: UInt64) throws -> [Digest] {
        let width = end &- start
        guard start < end, width.nonzeroBitCount == 1, start % width == 0, end <= size, size <= (try self.size(txn)) else {
            throw LedgerError.proofRange("no subtree proof of [\(start), \(end)) in a log of size \(size)")
        }
        let level = UInt64(width.trailingZeroBitCount)
        let index = start >> level
        var (lo, hi) = (UInt64(0), ((size - 1) >> level) + 1)
        var siblings = [(UInt64, UInt64)]()
        while hi - lo > 1 {
            let k = Merkle.largestPowerOfTwo(below: hi - lo)
            if index < lo + k { siblings.append((lo + k, hi)); hi = lo + k } else { siblings.append((lo, lo + k)); lo += k }
        }
        return try siblings.reversed().map { try rangeHash(txn, start: $0.0 << level, end: min($0.1 << level, size)) }
    }
}

extension BundleSummary {
    /// Adds what another bundle of the same run held or brought.
    public mutating func add(_ o: BundleSummary) {
        (from, to) = (min(from, o.from), max(to, o.to))
        leaves += o.leaves; newLeaves += o.newLeaves; checkpoints += o.checkpoints; records += o.records
        signatures += o.signatures; promises += o.promises; objects += o.objects; sidecars += o.sidecars
        skipped += o.skipped; bytes += o.bytes; withoutContent += o.withoutContent
    }
}

extension Ledger {
    /// Whether the content the intake leaves [start, end) of `d` name, as their records state
    /// its size, passes `limit` bytes (read only until it does).
    public func contentPasses(_ limit: UInt64, _ d: DatanetID, from start: UInt64, to end: UInt64) throws -> Bool {
        var total: UInt64 = 0
        try reader.forEachLeafSummary(d, from: start, to: end, kinds: [.intake]) { _, leaf in
            if case .intake(_, _, let c) = leaf { total = total.addingSaturating(c.size) }
            return total <= limit
        }
        return total > limit
    }

    /// The subtree proof of leaves [start, end) of `d` in its tree of `size` (`MerkleLog.subtreeProof`).
    public func subtreeProof(_ d: DatanetID, start: UInt64, end: UInt64, size: UInt64) throws -> [Digest] {
        let log = try merkleLog(d)
        return try env.read { txn in try log.subtreeProof(txn, start: start, end: end, size: size) }
    }

    /// The RFC 9162 consistency proof of `d`'s log from `size1` to `size2`.
    public func consistencyProof(_ d: DatanetID, from size1: UInt64, to size2: UInt64) throws -> [Digest] {
        let log = try merkleLog(d)
        return try env.read { txn in try log.consistencyProof(txn, size1: size1, size2: size2) }
    }

    /// Imports a run of bundles of one Datanet as they arrive: `next` gives the next bundle (a
    /// file open at its start) and says what it is, blocking until it is here; `arrives` says
    /// whether the next is here within a time, without taking it. Each batch is checked against
    /// its proof and replayed; batches that prove out are committed together (the transaction
    /// is opened only once a bundle is here, and committed as soon as none is waiting or
    /// `commitEvery` has passed), so nothing unverified is committed, the store's write lock is
    /// never held waiting on a peer, and a cut run keeps what was committed for the next to
    /// resume from. A batch that waits for a checkpoint key keeps the transaction open for the
    /// next one for at most `waitFor`. All batches of a run name one checkpoint and follow each
    /// other. The last bundle is imported as `importBundle` does. This store's log is replayed
    /// once, not once a bundle. With `onlyBy`, the run may carry nothing but pending records
    /// that key signed (`importBundle`).
    public func importBundles(_ d: DatanetID, commitEvery: Duration = .milliseconds(500), waitFor: Duration = .seconds(30), onlyBy: PublicKey? = nil,
                              next: () throws -> (fd: Int32, bundle: IncomingBundle),
                              arrives: (Duration) -> Bool) throws -> BundleSummary {
        var replay: LogAuditor?
        var total: BundleSummary?
        var runNote: String?
        var previousEnd: UInt64?
        let memo = BandMemo(datanet: d)
        var upcoming: (fd: Int32, bundle: IncomingBundle)? = try next() // waited for outside any transaction
        while let start = upcoming {
            upcoming = nil
            let (part, after, finished) = try env.writeOnce { txn -> (BundleSummary, LogAuditor?, Bool) in
                let opened = ContinuousClock.now
                // Moved, not copied: its tables change below without a copy of them (a failed
                // transaction ends the run, and with it the replay).
                var working = replay
                replay = nil
                var run: BundleSummary?
                // Whether the last batch imported in this transaction waits for its checkpoint's key.
                var waiting = false
                var current = start
                while true {
                    var proof: BatchProof?
                    if case .batch(let p) = current.bundle { proof = p }
                    if let p = proof {
                        if let n = runNote, n != p.note { throw BundleError.refused("the batches of one run are proven against different checkpoints") }
                        if let e = previousEnd, p.start != e { throw BundleError.refused("a batch starts at leaf \(p.start), not where the one before ended (\(e))") }
                        // The run's first batch places this log's leaves before it in the checkpoint's log.
                        if previousEnd == nil, p.start > 0, p.consistency.isEmpty {
                            throw BundleError.refused("the first batch starts at leaf \(p.start) without a consistency proof from there")
                        }
                        (runNote, previousEnd) = (p.note, p.end)
                    }
                    if onlyBy != nil, proof != nil { throw BundleError.refused("this peer may send only its own pending records, not leaves") }
                    let (summary, verified) = try importBundle(txn, current.fd, of: d, replay: &working, proof: proof, onlyBy: onlyBy, memo: memo)
                    if run == nil { run = summary } else { run!.add(summary) }
                    if proof == nil {
                        // Batches still waiting are committed only if their checkpoint now checks
                        // out in full: signed by the key in force at its size, with this log's root.
                        if waiting, let n = runNote { try checkWaiting(txn, d, note: n, replay: working) }
                        return (run!, working, true)
                    }
                    waiting = !verified
                    if verified {
                        if ContinuousClock.now - opened >= commitEvery || !arrives(.zero) { return (run!, working, false) }
                    } else if !arrives(waitFor) {
                        throw BundleError.refused("batches waited more than \(waitFor) for the next (their checkpoint's key is not known yet)")
                    }
                    current = try next()
                }
            }
            replay = after
            if total == nil { total = part } else { total!.add(part) }
            if !finished { upcoming = try next() }
        }
        return total!
    }

    private func checkWaiting(_ txn: Transaction, _ d: DatanetID, note: String, replay: LogAuditor?) throws {
        guard let cp = try? Checkpoint.unverified(note: note), let auditor = replay, cp.size <= auditor.size,
              let key = auditor.key(forSize: cp.size), (try? Checkpoint.verify(note: note, key: key)) != nil,
              try merkleLog(d).root(txn, size: cp.size) == cp.root
        else { throw BundleError.refused("the checkpoint the batches were proven against is not signed by the sequencer key in force at its size") }
    }
}

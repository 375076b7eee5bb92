import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation

/// What a bundle import keeps beside the log: the content its leaves and records reach, the
/// intake promises it carries, settled reviews dropped, and the index of each leaf applied.
extension Ledger {
    /// Marks `id` and what it reaches as live; false when something reached is missing or is
    /// not of the kind that names it. The objects this import stored are walked from memory
    /// (with an explicit stack: a bundle may nest trees arbitrarily deep), the rest through the store.
    func mark(_ txn: Transaction, _ kind: ObjectKind, _ id: ObjectID, into live: inout LiveContent) throws -> Bool {
        var complete = true
        var stack = [(kind, id)]
        while let (k, i) = stack.popLast() {
            if let marked = live.kinds[i] {
                if marked != k { complete = false }
                continue
            }
            live.kinds[i] = k
            if let (freshKind, children) = live.fresh[i] {
                guard freshKind == k else { complete = false; continue }
                live.objects.insert(i)
                stack += children
            } else if try !store.mark(i, kind: k, in: txn, into: &live.objects) {
                complete = false
            }
        }
        return complete
    }

    /// Marks what a contribution of `d` may keep: nothing when it is under a tombstone; its
    /// sidecar unless a tombstone erased that; its content unless a tombstone of `d` erased that
    /// content. With `required` (a description), the content must be here complete.
    func want(_ txn: Transaction, _ d: DatanetID, _ id: RecordID, _ c: Contribution, into live: inout LiveContent, required: String?) throws {
        if live.erasures == nil { live.erasures = try anyErasures(txn) }
        if live.erasures == true {
            guard try !isErased(txn, d, contribution: id) else { return }
            if try !isErased(txn, d, sidecar: c.sidecar) { live.sidecars.insert(c.sidecar) }
            guard try !isErased(txn, d, content: c.content) else { return }
        } else {
            live.sidecars.insert(c.sidecar)
        }
        let complete = try mark(txn, c.contentKind == .blob ? .blob : .tree, c.content, into: &live)
        if let required, !complete {
            throw BundleError.refused("the content \(c.content.hex) of \(required) is missing")
        }
    }

    /// Marks a model's artifact as kept when it came (it is not required), unless a tombstone
    /// erased that content in `d`.
    func wantArtifact(_ txn: Transaction, _ d: DatanetID, _ artifact: ObjectID, into live: inout LiveContent) throws {
        guard try !isErased(txn, d, content: artifact) else { return }
        _ = try mark(txn, .blob, artifact, into: &live)
    }

    /// Checks every intake promise against the replayed log (it must name an intake leaf of this
    /// Datanet by its hash and record) and keeps those answering this store's own identities'
    /// contributions and those `relayed` (proposals that were queued here: a peer between a
    /// contributor and the sequencer passes the answer back), once each is found signed by
    /// the sequencer key in force at that leaf. Returns how many were kept.
    func keepPromises(_ txn: Transaction, _ d: DatanetID, _ received: [IntakePromise], relayed: Set<RecordID>, auditor: LogAuditor,
                              newLeaves: [CheckedLeaf], localSize: UInt64, table: LeafTable) throws -> Int {
        guard !received.isEmpty else { return 0 }
        let identities = IdentityStore(storeDirectory: store.directory)
        let mine = Set(identities.names().compactMap { try? identities.load($0).publicKey })
        var kept = 0
        for p in received {
            guard p.datanet == d, p.index < auditor.size else {
                throw BundleError.refused("an intake promise names leaf \(p.index) of \(p.datanet.hex.prefix(16))…, not a leaf of this log")
            }
            let (leaf, hash): (Leaf?, Digest)
            if p.index >= localSize, Int(p.index - localSize) < newLeaves.count {
                let c = newLeaves[Int(p.index - localSize)]
                (leaf, hash) = (c.leaf, c.hash)
            } else {
                let bytes = try table.get(txn, p.index) ?? []
                (leaf, hash) = (try? Leaf(encoded: bytes), Merkle.leafHash(bytes))
            }
            guard let intake = leaf?.intake, hash == p.leafHash, intake.record == p.record else {
                throw BundleError.refused("the intake promise for leaf \(p.index) does not match that leaf")
            }
            guard mine.contains(intake.author) || relayed.contains(p.record),
                  try !txn.contains(promises, p.record) else { continue }
            guard p.sequencer == auditor.key(forSize: p.index + 1), p.isValid else {
                throw BundleError.refused("the intake promise for leaf \(p.index) is not signed by the sequencer key in force there")
            }
            try txn.put(promises, p.record, p.encoded)
            kept += 1
        }
        return kept
    }

    /// Takes out of pending the reviews of `d` every contribution of which is now decided: a
    /// decision leaf cites its reviews rather than carrying them, so the leaves do not say which
    /// pending copies they settled.
    func dropSettledReviews(_ txn: Transaction, _ d: DatanetID) throws {
        var settled = [[UInt8]]()
        try txn.scanNumbered(pending, d) { n, v in
            let key = BigEndian.key(d, n)
            guard let bytes = try pendingRecord(txn, v, key: key).1, case .review(let r)? = try? Record(Envelope(encoded: Array(bytes))) else { return true }
            if try r.contributions.allSatisfy({ try decision(txn, $0) != nil }) { settled.append(key) }
            return true
        }
        for key in settled { try removePending(txn, key) }
    }

    /// Updates this store's indexes for a leaf received from elsewhere through the index's one
    /// apply path, as sequencing it here did there; records the leaf carries leave pending here.
    func indexLeaf(_ txn: Transaction, _ d: DatanetID, _ checked: CheckedLeaf) throws {
        // Indexed as the replay adds each leaf, before it has seen the rest: a leaf or record it
        // cannot use is skipped here, and the replay's violation refuses the whole import.
        guard let leaf = checked.leaf else { return }
        var records = [(Envelope, Record)]()
        for r in checked.records { guard let (e, record, _) = try? r.get() else { return }; records.append((e, record)) }
        guard let effect = LeafEffect(leaf, records: records) else { return }
        if case .tombstone(_, let contribution, let intake) = effect {
            // A tombstone the replay will refuse (no such intake here) must not be applied first.
            guard let p = try index.placement(txn, contribution), p.datanet == d, p.index == intake else { return }
        }
        try index.apply(txn, d, first: checked.index, [effect])
        for (e, record) in records {
            guard let k = try txn.get(pendingIndex, e.id), try txn.contains(pending, k) else { continue }
            // Reviews leave pending once every contribution they name is decided here, which
            // `dropSettledReviews` judges after the whole import.
            if case .review = record { continue }
            try removePending(txn, k)
        }
    }
}

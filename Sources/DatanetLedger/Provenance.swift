import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// What lets a contributor, or anyone they show it to, check a contribution's place in a log:
/// receipts made and refreshed against this store's newest checkpoint, their verification
/// against a pinned or named anchor, and the pins themselves.
public struct Provenance: Sendable {
    let ledger: Ledger
}

extension Ledger {
    /// Receipts, their verification and the pinned anchors of this ledger.
    public var provenance: Provenance { Provenance(ledger: self) }
}

extension Provenance {
    /// Trusts a Datanet (by genesis id) as an anchor for `verify`; it need not be held here.
    /// When this store holds its log, the newest checkpoint held is remembered (trust on first
    /// use: every later receipt must agree with it); a pin already made keeps what it remembers
    /// unless the log held here is newer. Returns what is now remembered.
    @discardableResult
    public func pin(_ d: DatanetID) throws -> SeenCheckpoint? {
        let held = try heldCheckpoint(d)
        return try ledger.env.write { txn in
            let old = try seen(txn, d)
            if let held, held.size > old?.size ?? 0 {
                // Moving forward only along the same history: this log must have the remembered root.
                if let old, try ledger.merkleLog(d).root(txn, size: old.size) != old.root {
                    throw LedgerRefusal.checkpointRefused("FORK: this store's log has another root at size \(old.size) than the checkpoint remembered for the pin; the pin is unchanged")
                }
                try txn.put(ledger.pins, d, held.encoded)
                return held
            }
            if old == nil { try txn.put(ledger.pins, d, [UInt8]()) }
            return old
        }
    }

    /// The newest checkpoint this store holds of `d` with its policy chain, if it follows `d`.
    private func heldCheckpoint(_ d: DatanetID) throws -> SeenCheckpoint? {
        guard (try? ledger.reader.state(of: d)) != nil, let note = try ledger.reader.latestCheckpoint(d),
              let size = try? Checkpoint.unverified(note: note).size, size > 0 else { return nil }
        let table = try ledger.leafTable(d)
        let links = try ledger.env.read { txn in
            try ledger.policyChain(txn, d, size: size, table: table).map { i -> SeenCheckpoint.Link in
                guard let b = try table.get(txn, i) else { throw LedgerError.corruptLog("leaf \(i) is missing") }
                return SeenCheckpoint.Link(index: i, hash: Merkle.leafHash(b))
            }
        }
        return try SeenCheckpoint(note: note, chain: links)
    }

    /// What this store remembers of a pinned Datanet: the newest checkpoint seen (nil when
    /// nothing yet, or when `d` is not pinned).
    public func seen(_ d: DatanetID) throws -> SeenCheckpoint? {
        try ledger.env.read { txn in try seen(txn, d) }
    }

    /// The pin entry's memory in `txn` (an empty entry remembers nothing yet).
    private func seen(_ txn: Transaction, _ d: DatanetID) throws -> SeenCheckpoint? {
        try txn.get(ledger.pins, d).flatMap { $0.isEmpty ? nil : try SeenCheckpoint(encoded: $0) }
    }

    /// Remembers the receipt's checkpoint for its pinned Datanet when `verified` holds and it is
    /// newer than what is remembered (never an older or a forked one). True when remembered.
    @discardableResult
    public func remember(_ receipt: Receipt, verified: ReceiptVerification) throws -> Bool {
        guard verified.holds, let d = DatanetID(hex: receipt.datanet), try pinned().contains(d),
              let cp = try? Checkpoint.unverified(note: receipt.checkpoint) else { return false }
        let fresh = try SeenCheckpoint(note: receipt.checkpoint, chain: receipt.chainLinks.filter { $0.index < cp.size })
        return try ledger.env.write { txn in
            let old = try seen(txn, d)
            guard cp.size > old?.size ?? 0 else { return false }
            try txn.put(ledger.pins, d, fresh.encoded)
            return true
        }
    }

    /// Stops trusting a Datanet as an anchor; false when it was not pinned.
    @discardableResult
    public func unpin(_ d: DatanetID) throws -> Bool {
        try ledger.env.write { txn in try txn.delete(ledger.pins, d) }
    }

    /// The pinned Datanets.
    public func pinned() throws -> [DatanetID] {
        try ledger.env.read { txn in
            var out = [DatanetID]()
            try txn.scan(ledger.pins) { k, _ in
                if let d = DatanetID(k) { out.append(d) }
                return true
            }
            return out
        }
    }

    /// What this store holds of a Datanet, for the consistency check of a receipt whose
    /// checkpoint has `size` leaves; nil when it holds no checkpoint of it.
    public func heldLog(_ d: DatanetID, receiptSize size: UInt64, contribution: RecordID? = nil) throws -> HeldLog? {
        guard let note = try ledger.reader.latestCheckpoint(d), let held = try? Checkpoint.unverified(note: note) else { return nil }
        let log = try ledger.merkleLog(d)
        let table = try ledger.leafTable(d)
        return try ledger.env.read { txn in
            var tomb: (UInt64, Bool)?
            if let c = contribution, let i = try ledger.tombstone(txn, c), let b = try table.get(txn, i),
               let e = (try? Leaf(encoded: b))?.tombstone?.record, case .tombstone(let t)? = try? Record(e) { tomb = (i, t.takedown) }
            let root = held.size >= size && size > 0 ? try log.root(txn, size: size) : nil
            return HeldLog(size: held.size, rootAtReceiptSize: root, tombstone: tomb)
        }
    }

    /// Verifies a receipt anchored at `anchor`, or else at a pinned Datanet; a contribution
    /// this store's log shows under a tombstone fails unless `allowWithdrawn`. With `strict`,
    /// what a receipt takes on the sequencer's word must be checked too: this store must hold
    /// the log with the receipt's root at its size, and that log must pass `audit`.
    public func verify(_ receipt: Receipt, anchor: DatanetID?, allowWithdrawn: Bool = false, strict: Bool = false) throws -> ReceiptVerification {
        let named = DatanetID(hex: receipt.datanet)
        let pinnedIDs = try pinned()
        let trusted = anchor ?? named.flatMap { pinnedIDs.contains($0) ? $0 : nil }
        let size = (try? Checkpoint.unverified(note: receipt.checkpoint))?.size ?? 0
        let held = try named.flatMap { try? ledger.reader.state(of: $0) }.flatMap {
            try heldLog($0.id, receiptSize: size, contribution: RecordID(hex: receipt.contribution))
        }
        var result = receipt.verify(anchor: trusted, held: held, allowWithdrawn: allowWithdrawn)
        // Trust on first use: a pinned Datanet's receipts must agree with the newest checkpoint seen.
        if let d = named, pinnedIDs.contains(d), let cp = try? Checkpoint.unverified(note: receipt.checkpoint) {
            if let seen = try seen(d) {
                let heldSeenRoot = try held.flatMap { h -> Digest? in
                    guard h.size >= seen.size else { return nil }
                    let log = try ledger.merkleLog(d)
                    return try ledger.env.read { txn in try log.root(txn, size: seen.size) }
                }
                let previous = receipt.previous.flatMap { try? Checkpoint.unverified(note: $0.checkpoint) }
                // Another root at the remembered size, in this store's log or in the receipt's
                // own older checkpoint, is two histories: a fork, not a statement.
                let name = "consistent with the newest checkpoint seen"
                if let r = heldSeenRoot, r != seen.root {
                    result.checks.append(VerificationCheck(name, .fail, "FORK: this store's log has another root at size \(seen.size) than the checkpoint remembered for the pin"))
                } else if let p = previous, p.size == seen.size, p.root != seen.root {
                    result.checks.append(VerificationCheck(name, .fail, "FORK: the receipt's earlier checkpoint of size \(seen.size) has another root than the one remembered for the pin"))
                } else {
                    let proven = (held?.rootAtReceiptSize == cp.root && heldSeenRoot == seen.root)
                        || (previous?.size == seen.size && previous?.root == seen.root)
                    result.checks.append(seen.check(cp, chain: receipt.chainLinks, proven: proven))
                }
            } else {
                result.checks.append(VerificationCheck("consistent with the newest checkpoint seen", .pass,
                                                       "no checkpoint of this pinned Datanet seen before: this one is remembered if the receipt holds (trust on first use)"))
            }
        }
        if strict { try confirmStatements(&result, named, size: size, held: held, cp: receipt.checkpoint) }
        // A signed checkpoint that disagrees with this log at its size is fork evidence: kept,
        // in a short write of its own after the check (`ledger.observe` checks the signature first).
        if let d = named, let ours = held?.rootAtReceiptSize,
           let theirs = try? Checkpoint.unverified(note: receipt.checkpoint), theirs.root != ours {
            _ = try? ledger.observe(note: receipt.checkpoint, datanet: d)
        }
        return result
    }

    /// `verify --strict`: the sequencer's statements in `result` become checked when this store
    /// holds the log to the receipt's checkpoint with its root and that log passes audit; else a
    /// failing check says what is missing.
    private func confirmStatements(_ result: inout ReceiptVerification, _ d: DatanetID?, size: UInt64, held: HeldLog?, cp note: String) throws {
        let name = "strict: the log is held here and audited"
        guard let d, let cp = try? Checkpoint.unverified(note: note), let root = held?.rootAtReceiptSize, root == cp.root else {
            let what = d.map { "the log of \($0.hex.prefix(16))… up to the receipt's checkpoint (size \(size))" } ?? "the receipt's Datanet"
            return result.checks.append(VerificationCheck(name, .fail, "this store does not hold \(what) with the receipt's root; import a bundle of it"))
        }
        let audit = try ledger.audit(d)
        guard audit.holds else {
            guard let first = audit.violations.first else {
                return result.checks.append(VerificationCheck(name, .fail, "this store holds evidence of \(audit.forks.count) fork(s) of the log: its sequencer signed two histories"))
            }
            return result.checks.append(VerificationCheck(name, .fail, "audit of this store's log finds \(audit.violations.count) violation(s), first: "
                                                          + (first.index.map { "leaf \($0): " } ?? "") + first.rule))
        }
        result.checks = result.checks.map { $0.confirmingStatements("checked: this store's log (\(audit.leaves) leaves) has the receipt's root and passes audit") }
        result.checks.append(VerificationCheck(name, .pass, "\(audit.leaves) leaves replayed from the genesis, every rule holds"))
    }
}

import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

extension Ledger {
    /// Trusts a Datanet (by genesis id) as an anchor for `verify`; it need not be held here.
    public func pin(_ d: DatanetID) throws {
        try env.write { txn in try txn.put(pins, d, [UInt8]()) }
    }

    /// Stops trusting a Datanet as an anchor; false when it was not pinned.
    @discardableResult
    public func unpin(_ d: DatanetID) throws -> Bool {
        try env.write { txn in try txn.delete(pins, d) }
    }

    /// The pinned Datanets.
    public func pinned() throws -> [DatanetID] {
        try env.read { txn in
            var out = [DatanetID]()
            try txn.scan(pins) { k, _ in
                if let d = DatanetID(k) { out.append(d) }
                return true
            }
            return out
        }
    }

    /// What this store holds of a Datanet, for the consistency check of a receipt whose
    /// checkpoint has `size` leaves; nil when it holds no checkpoint of it.
    public func heldLog(_ d: DatanetID, receiptSize size: UInt64, contribution: RecordID? = nil) throws -> HeldLog? {
        guard let note = try reader.latestCheckpoint(d), let held = try? Checkpoint.unverified(note: note) else { return nil }
        let log = try merkleLog(d)
        let table = try leafTable(d)
        return try env.read { txn in
            var tomb: (UInt64, Bool)?
            if let c = contribution, let i = try tombstone(txn, c), let b = try table.get(txn, i),
               let e = (try? Leaf(encoded: b))?.tombstone?.record, case .tombstone(let t)? = try? Record(e) { tomb = (i, t.takedown) }
            let root = held.size >= size && size > 0 ? try log.root(txn, size: size) : nil
            return HeldLog(size: held.size, rootAtReceiptSize: root, tombstone: tomb)
        }
    }

    /// Verifies a receipt anchored at `anchor`, or else at a pinned Datanet; a contribution
    /// this store's log shows under a tombstone fails unless `allowWithdrawn`.
    public func verify(_ receipt: Receipt, anchor: DatanetID?, allowWithdrawn: Bool = false) throws -> ReceiptVerification {
        let named = DatanetID(hex: receipt.datanet)
        let pins = try pinned()
        let trusted = anchor ?? named.flatMap { pins.contains($0) ? $0 : nil }
        let size = (try? Checkpoint.unverified(note: receipt.checkpoint))?.size ?? 0
        let held = try named.flatMap { try? reader.state(of: $0) }.flatMap {
            try heldLog($0.id, receiptSize: size, contribution: RecordID(hex: receipt.contribution))
        }
        let result = receipt.verify(anchor: trusted, held: held, allowWithdrawn: allowWithdrawn)
        // A signed checkpoint that disagrees with this log at its size is fork evidence: kept,
        // in a short write of its own after the check (`observe` checks the signature first).
        if let d = named, let ours = held?.rootAtReceiptSize,
           let theirs = try? Checkpoint.unverified(note: receipt.checkpoint), theirs.root != ours {
            _ = try? observe(note: receipt.checkpoint, datanet: d)
        }
        return result
    }
}

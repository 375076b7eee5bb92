import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// Each Datanet's pending records as the item set sync reconciles (schema/negentropy.md "What
/// is reconciled"): a `SumTree` named by the Datanet's id in table `pending-items`, changed in
/// the transaction that changes the pending queue, so a reconciliation reads any range's
/// fingerprint without scanning the queue.
extension LedgerReader {
    /// How many records of `d` are pending here.
    public func pendingCount(_ d: DatanetID) throws -> Int {
        try ledger.env.read { txn in
            if let tree = ledger.pendingItemsTree(d) { return try tree.count(txn) }
            var n = 0
            try txn.scanNumbered(ledger.pending, d) { _, _ in n += 1; return true }
            return n
        }
    }
}

extension Ledger {
    static let pendingItemsFilled = Array("pending-items-v1".utf8)

    /// The item a pending record reconciles as: its id, with its signed created-at for a
    /// contribution (at most 2^64 − 2: Negentropy reserves 2^64 − 1 for its bound "infinity")
    /// and 0 for every other kind.
    package static func pendingItem(_ id: RecordID, envelope: UnsafeRawBufferPointer) -> TimestampedID {
        func item(_ createdAt: UInt64) -> TimestampedID { TimestampedID(timestamp: min(createdAt, .max - 1), id: id.digest) }
        guard let body = Envelope.body(of: envelope, kind: .contribution) else { return item(0) }
        if let c = Contribution.scanned(body) { return item(c.createdAt) }
        // A contribution in another shape than this build writes: decoded in full.
        if case .contribution(let c)? = try? Record(Envelope(encoded: Array(envelope))) { return item(c.createdAt) }
        return item(0)
    }

    /// The tree of `d`'s pending items, or nil on a read-only open of a store made before them.
    package func pendingItemsTree(_ d: DatanetID) -> SumTree? {
        pendingItems.map { SumTree(table: $0, id: d.digest) }
    }

    /// Takes the pending entry at `key` out of the queue (and its bytes out of the queue's
    /// count); returns the item it stood for, which the caller takes out of the tree (one
    /// `dropPendingItems` for a whole batch), or nil when there was no such entry.
    func takePending(_ txn: Transaction, _ key: [UInt8]) throws -> TimestampedID? {
        let item = try txn.withValue(pending, key) { v -> TimestampedID in
            guard let id = RecordID(UnsafeRawBufferPointer(rebasing: v.prefix(32))) else {
                throw LedgerError.corruptEntry(table: pending.name, key: Hex.encode(key), why: "value is \(v.count) bytes, shorter than a record id")
            }
            if v.count > 32 { return Self.pendingItem(id, envelope: UnsafeRawBufferPointer(rebasing: v[32...])) }
            // An entry written before pending carried records: the record is in `records`.
            return try txn.withValue(records, id) { Self.pendingItem(id, envelope: $0) } ?? TimestampedID(timestamp: 0, id: id.digest)
        }
        guard let item else { return nil }
        try removeQueued(txn, key: key)
        try txn.delete(pending, key)
        return item
    }

    /// Takes a record out of pending, given its pending key. Its `pending-index` entry stays
    /// (one per record ever proposed, like `records`): deleting it would be a write at a random
    /// key for every record sequenced.
    func removePending(_ txn: Transaction, _ key: [UInt8]) throws {
        guard key.count == 40, let d = DatanetID(bytes: key.prefix(32)), let item = try takePending(txn, key) else { return }
        try dropPendingItems(txn, d, [item])
    }

    /// Adds a newly queued record of `d` to its tree.
    func addPendingItem(_ txn: Transaction, _ d: DatanetID, _ item: TimestampedID) throws {
        try pendingItemsTree(d)?.insert(txn, item)
    }

    /// Takes `items` (any order) out of `d`'s tree in one pass.
    func dropPendingItems(_ txn: Transaction, _ d: DatanetID, _ items: [TimestampedID]) throws {
        guard !items.isEmpty, let tree = pendingItemsTree(d) else { return }
        try tree.change(txn, adding: [], removing: Array(Set(items)).sorted())
    }

    /// Builds every Datanet's tree from its queue, once, on the first writable open of a store
    /// made before them.
    func fillPendingItems() throws {
        guard let table = pendingItems, try !env.read({ txn in try txn.contains(meta, Self.pendingItemsFilled) }) else { return }
        try env.write { txn in
            guard try !txn.contains(meta, Self.pendingItemsFilled) else { return }
            try txn.scan(state) { k, _ in
                guard let d = DatanetID(k) else { return true }
                var items = [TimestampedID]()
                try txn.scanNumbered(pending, d) { n, v in
                    let key = BigEndian.key(d, n)
                    let (id, bytes) = try pendingRecord(txn, v, key: key)
                    items.append(bytes.map { b in b.withUnsafeBytes { Self.pendingItem(id, envelope: $0) } } ?? TimestampedID(timestamp: 0, id: id.digest))
                    return true
                }
                try SumTree(table: table, id: d.digest).change(txn, adding: Array(Set(items)).sorted(), removing: [])
                return true
            }
            try txn.put(meta, Self.pendingItemsFilled, [UInt8(1)])
        }
    }

    /// The items of `d`'s pending records whose signatures include `key`'s (all, without one),
    /// in order, read by scanning the queue: what a peer that may contribute to `d` but not
    /// read it reconciles (its own records only).
    package func pendingItems(_ d: DatanetID, signedBy key: PublicKey?) throws -> [TimestampedID] {
        try env.read { txn in
            var items = [TimestampedID]()
            try txn.scanNumbered(pending, d) { n, v in
                let (id, bytes) = try pendingRecord(txn, v, key: BigEndian.key(d, n))
                guard let bytes else { return true }
                if let key { guard let e = try? Envelope(encoded: bytes), e.signatures.contains(where: { $0.key == key }) else { return true } }
                items.append(bytes.withUnsafeBytes { Self.pendingItem(id, envelope: $0) })
                return true
            }
            return Array(Set(items)).sorted()
        }
    }
}

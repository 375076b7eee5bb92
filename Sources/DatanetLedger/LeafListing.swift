import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// How listings (`log`, `status`, `ls`, export's accepted set) read a whole log: leaves as
/// `LeafSummary` and sidecars as `Sidecar.scanned`, a block at a time on the other cores, each
/// block in a read transaction of its own, while the caller takes them in order on its thread.
/// Leaves below a Datanet's size are written once, so blocks read in different transactions
/// still see one log.
extension LedgerReader {
    /// Leaves per block: large enough to amortize a transaction, small enough to start at once.
    static let listingBlock = 4096

    /// Calls `body` with each leaf from index `from` up to `end` (the size held when called,
    /// when nil), as listings read it, in index order, until it returns false. With `kinds`,
    /// leaves of other kinds are passed over unread (their kind is peeked).
    public func forEachLeafSummary(_ d: DatanetID, from: UInt64 = 0, to end: UInt64? = nil, kinds: Set<LeafKind>? = nil,
                                   _ body: (UInt64, LeafSummary) throws -> Bool) throws {
        struct Stop: Error {}
        do {
            try forEachLeafBlock(d, from: from, to: end, kinds: kinds, start: { [(UInt64, LeafSummary)]() }, add: { $0.append(($1, $2)) },
                                 consume: { block in for (i, leaf) in block where try !body(i, leaf) { throw Stop() } })
        } catch is Stop {}
    }

    /// The leaves of `forEachLeafSummary` a block at a time: on the other cores, each block
    /// starts a result with `start` and hands it every leaf with `add` as the leaf is read (no
    /// array of leaves; `add` may read this store, which is opened without thread-bound
    /// readers), and `consume` takes the results in index order.
    public func forEachLeafBlock<R>(_ d: DatanetID, from: UInt64 = 0, to end: UInt64? = nil, kinds: Set<LeafKind>? = nil,
                                    start: @escaping () -> R, add: @escaping (inout R, UInt64, LeafSummary) throws -> Void,
                                    consume: (R) throws -> Void) throws {
        let table = try ledger.leafTable(d)
        let end = try end ?? state(of: d).size
        guard from < end else { return }
        let step = UInt64(Self.listingBlock)
        let blocks = stride(from: from, to: end, by: Int(step)).map { $0..<min(end, $0 + step) }
        let env = ledger.env
        try Parallel.pipeline(blocks, chunk: 1, { slice in
            try slice.map { range in
                try env.read { txn in
                    var made = start()
                    try table.scan(txn, from: range.lowerBound) { i, v in
                        guard i < range.upperBound else { return false }
                        if let kinds, let kind = LeafSummary.kind(of: v), !kinds.contains(kind) { return true }
                        try add(&made, i, try table.summary(i, v))
                        return true
                    }
                    return made
                }
            }
        }, consume: { made, _ in for m in made { try consume(m) } })
    }

    /// The sidecars of many contributions (nil where not held), in their order.
    public func sidecars(of cs: [Contribution]) throws -> [Sidecar?] {
        let env = ledger.env, table = ledger.sidecars
        var out = [Sidecar?]()
        out.reserveCapacity(cs.count)
        try Parallel.pipeline(cs, chunk: Self.listingBlock, { slice in
            try env.read { txn in
                try slice.map { c in try Ledger.sidecar(txn, table, c.sidecar) }
            }
        }, consume: { part, _ in out += part })
        return out
    }
}

extension Ledger {
    /// The sidecar with this hash in `table` (the ledger's `sidecars`), as listings read it; nil
    /// when not held or unreadable.
    static func sidecar(_ txn: Transaction, _ table: Table, _ hash: Digest) throws -> Sidecar? {
        try txn.withValue(table, hash) { Sidecar.scanned($0) ?? (try? Sidecar(encoded: Array($0))) } ?? nil
    }
}

extension Array {
    /// The position of the element whose `key` is `value`, by binary search in an array sorted
    /// by `key` (rows kept in intake order, found again by the intake index a later leaf names).
    func position(of value: UInt64, by key: (Element) -> UInt64) -> Int? {
        var (lo, hi) = (0, count)
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(self[mid]) < value { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && key(self[lo]) == value ? lo : nil
    }
}

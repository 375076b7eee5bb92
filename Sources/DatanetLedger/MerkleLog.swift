import DatanetCrypto
import DatanetObjects
import DatanetRecords
import DatanetStore

/// A Datanet's append-only RFC 9162 log in LMDB: every leaf hash and every full-subtree hash,
/// so a root or a proof at any past size costs O(log n) reads.
///
/// Nodes are stored in post-order under `datanet ‖ big-endian position` in one table shared
/// by every Datanet (`log-nodes`; LMDB's named tables are limited, the Datanets a node follows
/// are not): appending leaf i writes the leaf and then each subtree it completes, and those
/// positions only grow. For four leaves:
///
///     level 2              6
///                       /     \
///     level 1         2         5
///                    / \       / \
///     level 0       0   1     3   4        (positions; leaves 0 1 2 3)
///
/// The node of level h covering leaves [j·2^h, (j+1)·2^h) is at
/// 2·(j+1)·2^h − popcount(j+1) − 1 − ctz(j+1); leaf i is at 2i − popcount(i).
///
/// A store written before the shared table kept each log in a table of its own (`log:<id>`,
/// keyed by position alone); a read-only open of such a store reads it there (`legacy`).
public struct MerkleLog {
    /// The table holding this log's nodes.
    public let table: Table
    /// The Datanet whose log this is; nil for a legacy table of its own.
    let datanet: DatanetID?

    /// The shared node table.
    public static let tableName = "log-nodes"
    /// The table of one Datanet's log in a store not yet migrated.
    public static func legacyTableName(_ id: DatanetID) -> String { "log:" + id.hex }

    /// The log of Datanet `id` in the shared node table `table`.
    public init(table: Table, id: DatanetID) { (self.table, self.datanet) = (table, id) }

    /// A log kept in a table of its own (a store not yet migrated).
    init(legacy table: Table) { (self.table, self.datanet) = (table, nil) }

    /// Opens (creating with `create`) the shared node table and the log of Datanet `id` in it.
    public init(env: Environment, id: DatanetID, create: Bool) throws {
        self.init(table: try env.openTables([Self.tableName], create: create)[0], id: id)
    }

    /// Post-order position of the node of `level` with `index` on that level.
    public static func position(level: Int, index: UInt64) -> UInt64 {
        let n = index + 1
        return (n << UInt64(level + 1)) - UInt64(n.nonzeroBitCount) - 1 - UInt64(n.trailingZeroBitCount)
    }

    /// Nodes stored for a log of `size` leaves.
    static func nodeCount(_ size: UInt64) -> UInt64 { 2 * size - UInt64(size.nonzeroBitCount) }

    /// The number of leaves, from the number of stored nodes.
    public func size(_ txn: Transaction) throws -> UInt64 {
        let nodes: UInt64
        if let d = datanet {
            guard let last = try txn.lastKey(table, prefix: d.bytes) else { return 0 }
            guard last.count == 40 else { throw LedgerError.corruptLog("a node key in \(table.name) is \(last.count) bytes, not 40") }
            nodes = BigEndian.u64(last, at: 32) &+ 1
        } else {
            nodes = UInt64(try txn.count(table))
        }
        guard nodes < 1 << 62 else { throw LedgerError.corruptLog("\(table.name) holds a node position past any log") }
        var n = nodes / 2
        while Self.nodeCount(n) < nodes { n += 1 }
        guard Self.nodeCount(n) == nodes else { throw LedgerError.corruptLog("\(nodes) nodes fit no log size") }
        return n
    }

    /// The node of `level` and `index`, which must be complete at the current size.
    public func node(_ txn: Transaction, level: Int, index: UInt64) throws -> Digest {
        let pos = Self.position(level: level, index: index)
        let found = try datanet.map { try txn.withValue(table, DigestNumberKey($0, pos)) { Digest($0) } }
            ?? txn.withValue(table, BigEndianUInt64(pos)) { Digest($0) }
        guard let d = found, let digest = d else {
            throw LedgerError.corruptLog("node at level \(level) index \(index) is missing")
        }
        return digest
    }

    /// Appends leaf hashes to a log of `size` leaves (read from the table when nil); returns
    /// the new size.
    @discardableResult
    public func append(_ txn: Transaction, leafHashes: [Digest], size known: UInt64? = nil) throws -> UInt64 {
        guard let d = datanet else { throw LedgerError.corruptLog("the log of a store not yet migrated is read-only") }
        var size = try known ?? self.size(txn)
        // The full subtrees this call completes, smallest last: the left sibling a new leaf
        // needs is the smallest full subtree of the log, so it is the last of these when any
        // are left, else a node already stored (read once, as a single-leaf append needs).
        var made = [Digest]()
        var h = SHA256.Hasher()
        // Keys ascend within this Datanet's range, so one cursor finds each next page at hand.
        try txn.withCursor(table) { c in
            for leaf in leafHashes {
                try c.put(DigestNumberKey(d, Self.position(level: 0, index: size)), leaf)
                var hash = leaf
                var index = size
                var level = 0
                // Each trailing one bit of the old size is a left sibling this leaf completes.
                while index & 1 == 1 {
                    let left = try made.popLast() ?? node(txn, level: level, index: index - 1)
                    hash = Merkle.nodeHash(left, hash, using: &h)
                    level += 1
                    index >>= 1
                    try c.put(DigestNumberKey(d, Self.position(level: level, index: index)), hash)
                }
                made.append(hash)
                size += 1
            }
        }
        return size
    }

    /// MTH of leaves [start, end) where [start, end) is a subtree range (start a multiple of
    /// the smallest power of two ≥ end − start, or 0): the largest aligned full subtrees from
    /// the left, folded from the right.
    public func rangeHash(_ txn: Transaction, start: UInt64, end: UInt64) throws -> Digest {
        guard start < end else { return Merkle.emptyRoot }
        var peaks = [Digest]()
        var at = start
        while at < end {
            var level = at == 0 ? 63 : at.trailingZeroBitCount
            while level > 0 && (level >= 63 || at + (1 << UInt64(level)) > end) { level -= 1 }
            peaks.append(try node(txn, level: level, index: at >> UInt64(level)))
            at += 1 << UInt64(level)
        }
        var h = SHA256.Hasher()
        var r = peaks.removeLast()
        while let p = peaks.popLast() { r = Merkle.nodeHash(p, r, using: &h) }
        return r
    }

    /// The root at a past or current `size`.
    public func root(_ txn: Transaction, size: UInt64) throws -> Digest {
        try rangeHash(txn, start: 0, end: size)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` (RFC 9162 §2.1.3.1).
    public func inclusionProof(_ txn: Transaction, index: UInt64, size: UInt64) throws -> [Digest] {
        guard index < size, size <= (try self.size(txn)) else {
            throw LedgerError.proofRange("no leaf \(index) in a log of size \(size)")
        }
        var proof = [Digest]()
        var start: UInt64 = 0, end = size
        var siblings = [(UInt64, UInt64)]()
        while end - start > 1 {
            let k = Merkle.largestPowerOfTwo(below: end - start)
            if index < start + k {
                siblings.append((start + k, end)); end = start + k
            } else {
                siblings.append((start, start + k)); start += k
            }
        }
        for (a, b) in siblings.reversed() { proof.append(try rangeHash(txn, start: a, end: b)) }
        return proof
    }

    /// The consistency proof from `size1` to `size2` (RFC 9162 §2.1.4.1).
    public func consistencyProof(_ txn: Transaction, size1: UInt64, size2: UInt64) throws -> [Digest] {
        guard size1 > 0, size1 <= size2, size2 <= (try self.size(txn)) else {
            throw LedgerError.proofRange("no consistency proof from size \(size1) to \(size2)")
        }
        var ranges = [(UInt64, UInt64)]()
        var m = size1, start: UInt64 = 0, end = size2
        var complete = true
        while m != end - start {
            let k = Merkle.largestPowerOfTwo(below: end - start)
            if m <= k {
                ranges.append((start + k, end)); end = start + k
            } else {
                ranges.append((start, start + k)); m -= k; start += k; complete = false
            }
        }
        if !complete { ranges.append((start, end)) }
        return try ranges.reversed().map { try rangeHash(txn, start: $0.0, end: $0.1) }
    }
}

import DatanetCrypto
import DatanetStore

/// An item of a reconciled set (Negentropy V1): a timestamp and a 32-byte id, ordered by
/// timestamp then by the id's bytes.
public typealias NegentropyItem = TimestampedID

extension DigestSum {
    /// The Negentropy fingerprint of `count` ids summing to this: the first 16 bytes of
    /// SHA-256(sum as 32 little-endian bytes ‖ varint(count)).
    func fingerprint(count: Int) -> [UInt8] {
        Array(SHA256.hash(bytes + NegentropyVarint.encode(UInt64(count))).bytes.prefix(16))
    }
}

/// What Negentropy reconciles: a sorted set of items read by index (`NegentropyItems` in
/// memory, `StoredNegentropyItems` in LMDB).
public protocol NegentropyStorage {
    func itemCount() throws -> Int
    /// The item at `index` (0 ..< count).
    func item(at index: Int) throws -> NegentropyItem
    /// How many items sort below `key`.
    func rank(below key: NegentropyItem) throws -> Int
    /// The fingerprint of the items at `lower ..< upper`.
    func fingerprint(_ lower: Int, _ upper: Int) throws -> [UInt8]
    /// Calls `body` with the items at `lower ..< upper` and their indices until it returns false.
    func forEach(_ lower: Int, _ upper: Int, _ body: (NegentropyItem, Int) throws -> Bool) throws
}

/// A set of Negentropy items kept sorted in a treap whose nodes hold their subtree's size and
/// id sum, so that the item at an index, the index of a bound and the fingerprint of any
/// index range each cost O(log n) — never a scan of the range — and adding or removing an
/// item costs O(log n) expected. Nodes live in arrays (indices, no references), with
/// priorities from a fixed-seed generator, so the same insertions build the same tree.
public struct NegentropyItems: NegentropyStorage, Sendable {
    private var items = [NegentropyItem]()
    private var left = [Int32](), right = [Int32]()
    private var priority = [UInt64]()
    private var size = [Int32]()
    private var sums = [DigestSum]()
    private var free = [Int32]()
    private var root: Int32 = -1
    private var seed: UInt64 = 0x6e65_6765_6e74_7279

    /// An empty set.
    public init() {}

    /// The set of `items` (duplicates kept once), built in O(n log n).
    public init<S: Sequence>(_ items: S) where S.Element == NegentropyItem {
        let sorted = Array(Set(items)).sorted()
        // Built balanced from the sorted items, priorities dealt out in heap order.
        var priorities = (0..<sorted.count).map { _ in nextPriority() }
        priorities.sort(by: >)
        for item in sorted { _ = newNode(item) }
        var nextPriorityIndex = 0
        var levels = [(lo: Int, hi: Int, parent: Int32, isLeft: Bool)]()
        levels.append((0, sorted.count, -1, false))
        var head = 0
        while head < levels.count {
            let (lo, hi, parent, isLeft) = levels[head]
            head += 1
            guard lo < hi else { continue }
            let mid = (lo + hi) / 2
            let node = Int32(mid)
            priority[mid] = priorities[nextPriorityIndex]
            nextPriorityIndex += 1
            if parent < 0 { root = node } else if isLeft { left[Int(parent)] = node } else { right[Int(parent)] = node }
            levels.append((lo, mid, node, true))
            levels.append((mid + 1, hi, node, false))
        }
        // Sizes and sums bottom-up: the breadth-first order reversed visits children first.
        for (lo, hi, _, _) in levels.reversed() where lo < hi { update(Int32((lo + hi) / 2)) }
    }

    /// The number of items.
    public var count: Int { root < 0 ? 0 : Int(size[Int(root)]) }

    public func itemCount() -> Int { count }

    private mutating func nextPriority() -> UInt64 {
        seed &+= 0x9e37_79b9_7f4a_7c15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    private mutating func newNode(_ item: NegentropyItem) -> Int32 {
        let p = nextPriority()
        if let n = free.popLast() {
            let i = Int(n)
            (items[i], left[i], right[i], priority[i], size[i], sums[i]) = (item, -1, -1, p, 1, DigestSum(item.id))
            return n
        }
        items.append(item); left.append(-1); right.append(-1); priority.append(p); size.append(1); sums.append(DigestSum(item.id))
        return Int32(items.count - 1)
    }

    private mutating func update(_ n: Int32) {
        let i = Int(n)
        var s: Int32 = 1
        var sum = DigestSum(items[i].id)
        if left[i] >= 0 { s += size[Int(left[i])]; sum = sums[Int(left[i])] + sum }
        if right[i] >= 0 { s += size[Int(right[i])]; sum = sum + sums[Int(right[i])] }
        size[i] = s
        sums[i] = sum
    }

    /// Splits `t` into the items below `key` and the rest.
    private mutating func split(_ t: Int32, _ key: NegentropyItem) -> (Int32, Int32) {
        guard t >= 0 else { return (-1, -1) }
        let i = Int(t)
        if items[i] < key {
            let (l, r) = split(right[i], key)
            right[i] = l
            update(t)
            return (t, r)
        } else {
            let (l, r) = split(left[i], key)
            left[i] = r
            update(t)
            return (l, t)
        }
    }

    private mutating func merge(_ a: Int32, _ b: Int32) -> Int32 {
        guard a >= 0 else { return b }
        guard b >= 0 else { return a }
        if priority[Int(a)] > priority[Int(b)] {
            right[Int(a)] = merge(right[Int(a)], b)
            update(a)
            return a
        } else {
            left[Int(b)] = merge(a, left[Int(b)])
            update(b)
            return b
        }
    }

    /// Whether the set holds `item`.
    public func contains(_ item: NegentropyItem) -> Bool {
        var t = root
        while t >= 0 {
            let x = items[Int(t)]
            if x == item { return true }
            t = item < x ? left[Int(t)] : right[Int(t)]
        }
        return false
    }

    /// Adds `item`; false when it was already there.
    @discardableResult
    public mutating func insert(_ item: NegentropyItem) -> Bool {
        guard !contains(item) else { return false }
        let (l, r) = split(root, item)
        root = merge(merge(l, newNode(item)), r)
        return true
    }

    /// Removes `item`; false when it was not there.
    @discardableResult
    public mutating func remove(_ item: NegentropyItem) -> Bool {
        guard contains(item) else { return false }
        let (l, r) = split(root, item)
        // The smallest of `r` is `item`: the leftmost node, taken out by merging its right child up.
        var parent: Int32 = -1, t = r
        while left[Int(t)] >= 0 { parent = t; t = left[Int(t)] }
        let rest = right[Int(t)]
        var newRight = r
        if parent < 0 { newRight = rest } else {
            left[Int(parent)] = rest
            // Sizes and sums on the path from `r` down to `parent` shrink by the item.
            var u = r
            let gone = DigestSum(item.id)
            while u != rest && u >= 0 {
                size[Int(u)] -= 1
                sums[Int(u)] = sums[Int(u)] - gone
                if u == parent { break }
                u = left[Int(u)]
            }
        }
        free.append(t)
        root = merge(l, newRight)
        return true
    }

    /// The item at `index` (0 ..< count).
    public func item(at index: Int) -> NegentropyItem {
        var t = root, k = Int32(index)
        while true {
            let l = left[Int(t)], ls = l >= 0 ? size[Int(l)] : 0
            if k < ls { t = l } else if k == ls { return items[Int(t)] } else { k -= ls + 1; t = right[Int(t)] }
        }
    }

    /// How many items sort below `key`: the index of the first item at or above it.
    public func rank(below key: NegentropyItem) -> Int {
        var t = root, below: Int32 = 0
        while t >= 0 {
            let i = Int(t)
            if items[i] < key {
                below += (left[i] >= 0 ? size[Int(left[i])] : 0) + 1
                t = right[i]
            } else {
                t = left[i]
            }
        }
        return Int(below)
    }

    /// The id sum of the first `k` items.
    private func prefixSum(_ k: Int) -> DigestSum {
        var t = root, k = Int32(k), sum = DigestSum()
        while t >= 0 && k > 0 {
            let i = Int(t), l = left[i], ls = l >= 0 ? size[Int(l)] : 0
            if k <= ls { t = l; continue }
            if l >= 0 { sum = sum + sums[Int(l)] }
            sum = sum + DigestSum(items[i].id)
            k -= ls + 1
            t = right[i]
        }
        return sum
    }

    /// The fingerprint of the items at indices `lower ..< upper`.
    public func fingerprint(_ lower: Int, _ upper: Int) -> [UInt8] {
        (prefixSum(upper) - prefixSum(lower)).fingerprint(count: upper - lower)
    }

    /// Calls `body` with the items at `lower ..< upper` and their indices, in order, until it
    /// returns false: O(log n) to reach the first, then O(1) amortized each.
    public func forEach(_ lower: Int, _ upper: Int, _ body: (NegentropyItem, Int) throws -> Bool) rethrows {
        guard lower < upper else { return }
        // The path to the item at `lower`: nodes whose own item comes after it are stacked.
        var stack = [Int32]()
        var t = root, k = Int32(lower)
        while t >= 0 {
            let i = Int(t), l = left[i], ls = l >= 0 ? size[Int(l)] : 0
            if k < ls { stack.append(t); t = l } else if k == ls { stack.append(t); break } else { k -= ls + 1; t = right[i] }
        }
        var index = lower
        while index < upper, let n = stack.popLast() {
            guard try body(items[Int(n)], index) else { return }
            index += 1
            var c = right[Int(n)]
            while c >= 0 { stack.append(c); c = left[Int(c)] }
        }
    }
}

/// A Negentropy item set kept in LMDB (`SumTree`), read in one transaction: what a node
/// reconciles for a set that outlives the process.
public struct StoredNegentropyItems: NegentropyStorage {
    public let tree: SumTree
    public let txn: Transaction

    public init(_ tree: SumTree, in txn: Transaction) { (self.tree, self.txn) = (tree, txn) }

    public func itemCount() throws -> Int { try tree.count(txn) }
    public func item(at index: Int) throws -> NegentropyItem { try tree.item(txn, at: index) }
    public func rank(below key: NegentropyItem) throws -> Int { try tree.rank(txn, below: key) }

    public func fingerprint(_ lower: Int, _ upper: Int) throws -> [UInt8] {
        (try tree.prefixSum(txn, upper) - tree.prefixSum(txn, lower)).fingerprint(count: upper - lower)
    }

    public func forEach(_ lower: Int, _ upper: Int, _ body: (NegentropyItem, Int) throws -> Bool) throws {
        try tree.forEach(txn, lower, upper, body)
    }
}

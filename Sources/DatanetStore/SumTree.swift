import DatanetCrypto
import DatanetObjects

/// A sorted set of timestamped ids kept in LMDB as a B+tree whose inner entries hold each
/// child's item count, id sum (`DigestSum`) and first item, so that the item at an index,
/// the index of a key and the id sum of the first k items each read one node a level —
/// never a range — and adding or removing an item rewrites one node a level. Many trees
/// share one table, each under its own 32-byte id (schema/negentropy.md "Kept in LMDB").
///
/// Node values: a leaf is `0x00 ‖ u16 n ‖ n × (u64 timestamp ‖ id)`, an inner node
/// `0x01 ‖ u16 n ‖ n × (u64 child ‖ u64 count ‖ sum (32, little-endian) ‖ u64 timestamp ‖ id)`,
/// integers big-endian but the sum; keyed `id ‖ u64 node`, with `id ‖ ff×8` holding the
/// root's node and the next free node number. Nodes stay under LMDB's in-page value size.
public struct SumTree {
    public static let tableName = "sum-trees"
    static let leafCapacity = 32, innerCapacity = 20
    public let table: Table
    /// The tree's name: its keys begin with it.
    public let id: Digest

    /// The tree named `id` in `table`.
    public init(table: Table, id: Digest) { (self.table, self.id) = (table, id) }

    struct Child {
        var node: UInt64, count: UInt64, sum: DigestSum, first: TimestampedID
    }

    struct Node {
        var items = [TimestampedID]()
        var children = [Child]()
        var isLeaf: Bool
    }

    // MARK: storage

    private var metaKey: DigestNumberKey { DigestNumberKey(id, .max) }
    private func key(_ node: UInt64) -> DigestNumberKey { DigestNumberKey(id, node) }

    private func meta(_ txn: Transaction) throws -> (root: UInt64, next: UInt64)? {
        guard let v = try txn.get(table, metaKey) else { return nil }
        guard v.count == 16 else { throw StoreError.corrupt("a sum tree's root entry is \(v.count) bytes, not 16") }
        return (BigEndian.u64(v, at: 0), BigEndian.u64(v, at: 8))
    }

    private func setMeta(_ txn: Transaction, _ m: (root: UInt64, next: UInt64)?) throws {
        if let m { try txn.put(table, metaKey, BigEndian.bytes(m.root) + BigEndian.bytes(m.next)) } else { _ = try txn.delete(table, metaKey) }
    }

    func read(_ txn: Transaction, _ node: UInt64) throws -> Node {
        guard let v = try txn.get(table, key(node)), v.count >= 3 else { throw StoreError.corrupt("sum tree node \(node) is missing") }
        let n = Int(v[1]) << 8 | Int(v[2])
        func item(_ at: Int) -> TimestampedID {
            TimestampedID(timestamp: BigEndian.u64(v, at: at), id: v.withUnsafeBytes { Digest(UnsafeRawBufferPointer(rebasing: $0[at + 8 ..< at + 40]))! })
        }
        switch v[0] {
        case 0 where v.count == 3 + 40 * n:
            return Node(items: (0..<n).map { item(3 + 40 * $0) }, isLeaf: true)
        case 1 where v.count == 3 + 88 * n && n > 0:
            return Node(children: (0..<n).map { i in
                let at = 3 + 88 * i
                return Child(node: BigEndian.u64(v, at: at), count: BigEndian.u64(v, at: at + 8),
                             sum: v.withUnsafeBytes { DigestSum(bytes: UnsafeRawBufferPointer(rebasing: $0[at + 16 ..< at + 48]))! }, first: item(at + 48))
            }, isLeaf: false)
        default:
            throw StoreError.corrupt("sum tree node \(node) does not decode")
        }
    }

    /// Writes `node` as `id` — split in two, the second half under a new number, when past
    /// its capacity — and returns the entries that describe what was written.
    private func write(_ txn: Transaction, _ id: UInt64, _ node: Node, next: inout UInt64) throws -> [Child] {
        let capacity = node.isLeaf ? Self.leafCapacity : Self.innerCapacity
        let n = node.isLeaf ? node.items.count : node.children.count
        guard n <= capacity else {
            let half = n / 2
            var left = node, right = node
            if node.isLeaf { (left.items, right.items) = (Array(node.items[..<half]), Array(node.items[half...])) } else {
                (left.children, right.children) = (Array(node.children[..<half]), Array(node.children[half...]))
            }
            let fresh = next
            next += 1
            return try write(txn, id, left, next: &next) + write(txn, fresh, right, next: &next)
        }
        // Encoded straight into one buffer: a node write is on every change's path.
        var v = [UInt8]()
        v.reserveCapacity(node.isLeaf ? 3 + 40 * n : 3 + 88 * n)
        v += [node.isLeaf ? 0 : 1, UInt8(n >> 8), UInt8(n & 0xff)]
        var count: UInt64 = 0, sum = DigestSum()
        func u64(_ x: UInt64) { withUnsafeBytes(of: x.bigEndian) { v.append(contentsOf: $0) } }
        func append(_ item: TimestampedID) { u64(item.timestamp); item.id.withUnsafeBytes { v.append(contentsOf: $0) } }
        if node.isLeaf {
            for item in node.items { append(item); sum = sum + DigestSum(item.id) }
            count = UInt64(n)
        } else {
            for c in node.children {
                u64(c.node); u64(c.count); c.sum.append(to: &v)
                append(c.first)
                count &+= c.count // (wrapping: a damaged count must not trap)
                sum = sum + c.sum
            }
        }
        try txn.put(table, key(id), v)
        return [Child(node: id, count: count, sum: sum, first: node.isLeaf ? node.items[0] : node.children[0].first)]
    }

    // MARK: changes

    /// Adds `item`; false when it was already there.
    @discardableResult
    public func insert(_ txn: Transaction, _ item: TimestampedID) throws -> Bool {
        if let done = try patch(txn, item, adding: true) { return done }
        return try change(txn, adding: [item], removing: []).added == 1
    }

    /// Removes `item`; false when it was not there.
    @discardableResult
    public func remove(_ txn: Transaction, _ item: TimestampedID) throws -> Bool {
        if let done = try patch(txn, item, adding: false) { return done }
        return try change(txn, adding: [], removing: [item]).removed == 1
    }

    /// One item added or removed in place, when no node splits or empties: the leaf's bytes
    /// spliced and, on the path up, each entry for it patched (count, sum, first item), with no
    /// node decoded — every proposal queued pays this. Returns whether the set changed, or nil
    /// when the general path (`change`) must run.
    private func patch(_ txn: Transaction, _ item: TimestampedID, adding: Bool) throws -> Bool? {
        guard let m = try meta(txn) else { return nil }
        var path = [(node: UInt64, child: Int)]()
        var node = m.root
        while true {
            try Self.checkDepth(path.count)
            let next: UInt64? = try withNode(txn, node) { raw in
                guard !raw.isLeaf else { return nil }
                var i = 0
                while i + 1 < raw.count && raw.childFirst(i + 1) <= item { i += 1 }
                path.append((node, i))
                return raw.child(i)
            }
            guard let next else { break }
            node = next
        }
        var first: TimestampedID? // the leaf's new first item, when it changes
        let spliced: [UInt8]? = try withNode(txn, node) { raw -> [UInt8]? in
            var (lo, hi) = (0, raw.count)
            while lo < hi { let mid = (lo + hi) / 2; if raw.item(mid) < item { lo = mid + 1 } else { hi = mid } }
            let found = lo < raw.count && raw.item(lo) == item
            guard found != adding else { return [] } // nothing to do
            let n = raw.count + (adding ? 1 : -1)
            guard n >= 1, n <= Self.leafCapacity else { return nil }
            var v = [UInt8]()
            v.reserveCapacity(3 + 40 * n)
            v += [0, UInt8(n >> 8), UInt8(n & 0xff)]
            v.append(contentsOf: raw.bytes[3 ..< 3 + 40 * lo])
            if adding {
                withUnsafeBytes(of: item.timestamp.bigEndian) { v.append(contentsOf: $0) }
                item.id.withUnsafeBytes { v.append(contentsOf: $0) }
                v.append(contentsOf: raw.bytes[(3 + 40 * lo)...])
            } else {
                v.append(contentsOf: raw.bytes[(3 + 40 * (lo + 1))...])
            }
            if lo == 0 { first = adding ? item : raw.item(1) }
            return v
        }
        guard let spliced else { return nil }
        if spliced.isEmpty { return false }
        try txn.put(table, key(node), spliced)
        let delta = DigestSum(item.id)
        for (parent, child) in path.reversed() {
            let patched = try withNode(txn, parent) { raw -> [UInt8] in
                var v = Array(raw.bytes)
                let at = 3 + 88 * child
                let count = raw.childCount(child), sum = raw.childSum(child)
                guard adding || count > 0 else { throw StoreError.corrupt("sum tree node \(parent) counts no item where one was found") }
                withUnsafeBytes(of: (adding ? count &+ 1 : count - 1).bigEndian) { v.replaceSubrange(at + 8 ..< at + 16, with: $0) }
                var sumBytes = [UInt8]()
                (adding ? sum + delta : sum - delta).append(to: &sumBytes)
                v.replaceSubrange(at + 16 ..< at + 48, with: sumBytes)
                if let f = first {
                    withUnsafeBytes(of: f.timestamp.bigEndian) { v.replaceSubrange(at + 48 ..< at + 56, with: $0) }
                    f.id.withUnsafeBytes { v.replaceSubrange(at + 56 ..< at + 88, with: $0) }
                }
                return v
            }
            try txn.put(table, key(parent), patched)
            if child != 0 { first = nil } // this node's first item is its first child's
        }
        return true
    }

    /// Removes the items of `removing` that are here, then adds those of `adding` that are not
    /// (each ascending, no item twice), rewriting each node the changes reach once: a batch
    /// of k changes costs at most k descents, and far fewer when they fall near each other.
    /// Emptied nodes leave their parent; a root with one child hands over to it. Returns how
    /// many items were added and removed.
    @discardableResult
    public func change(_ txn: Transaction, adding: [TimestampedID], removing: [TimestampedID]) throws -> (added: Int, removed: Int) {
        guard !adding.isEmpty || !removing.isEmpty else { return (0, 0) }
        var counts = (added: 0, removed: 0)
        let before = try meta(txn)
        if before != nil, removing.count >= 1024, case let n = try count(txn), removing.count * 2 >= n {
            return try rebuild(txn, count: n, adding: adding, removing: removing)
        }
        var m = before ?? (root: 0, next: 0)
        var entries: [Child]
        if before == nil {
            guard !adding.isEmpty else { return counts }
            let id = m.next
            m.next += 1
            entries = try write(txn, id, Node(items: adding, isLeaf: true), next: &m.next)
            counts.added = adding.count
        } else {
            entries = try change(txn, m.root, adding[...], removing[...], depth: 0, next: &m.next, counts: &counts)
        }
        // Levels above what the root split into, until one node holds them.
        while entries.count > 1 {
            var up = [Child]()
            for start in stride(from: 0, to: entries.count, by: Self.innerCapacity) {
                let id = m.next
                m.next += 1
                up += try write(txn, id, Node(children: Array(entries[start ..< min(entries.count, start + Self.innerCapacity)]), isLeaf: false), next: &m.next)
            }
            entries = up
        }
        guard let top = entries.first else {
            try setMeta(txn, nil)
            return counts
        }
        m.root = top.node
        var depth = 0
        while case let node = try read(txn, m.root), !node.isLeaf, node.children.count == 1 {
            try Self.checkDepth(depth)
            depth += 1
            _ = try txn.delete(table, key(m.root))
            m.root = node.children[0].node
        }
        if before.map({ $0 != m }) ?? true { try setMeta(txn, m) } // (most changes split nothing)
        return counts
    }

    /// The tree rebuilt from the items that stay (read in place, leaf by leaf) and those added,
    /// its old nodes deleted: cheaper than rewriting node by node when most items go (a
    /// sequencing run taking the whole queue).
    private func rebuild(_ txn: Transaction, count n: Int, adding: [TimestampedID], removing: [TimestampedID]) throws -> (added: Int, removed: Int) {
        var kept = [TimestampedID]()
        var r = 0
        try forEach(txn, 0, n) { item, _ in
            while r < removing.count && removing[r] < item { r += 1 }
            if r < removing.count && removing[r] == item { r += 1 } else { kept.append(item) }
            return true
        }
        let removed = n - kept.count
        var merged = [TimestampedID]()
        merged.reserveCapacity(kept.count + adding.count)
        var (k, a, added) = (0, 0, 0)
        while k < kept.count || a < adding.count {
            if a == adding.count || (k < kept.count && kept[k] < adding[a]) { merged.append(kept[k]); k += 1; continue }
            if k < kept.count && kept[k] == adding[a] { a += 1; continue }
            merged.append(adding[a]); a += 1; added += 1
        }
        var keys = [[UInt8]]()
        let prefix = id.bytes
        try txn.scan(table, from: prefix) { key, _ in
            guard key.starts(with: prefix) else { return false }
            keys.append(Array(key))
            return true
        }
        for key in keys { _ = try txn.delete(table, key) }
        if !merged.isEmpty { try load(txn, sorted: merged) }
        return (added, removed)
    }

    /// Applies the changes that fall in node `id`'s range and rewrites it; returns the entries
    /// that now stand for it (none when emptied, several when it split).
    private func change(_ txn: Transaction, _ id: UInt64, _ adds: ArraySlice<TimestampedID>, _ removes: ArraySlice<TimestampedID>,
                        depth: Int, next: inout UInt64, counts: inout (added: Int, removed: Int)) throws -> [Child] {
        try Self.checkDepth(depth)
        var node = try read(txn, id)
        if node.isLeaf {
            // Removals first, then additions (an item in both lists ends up here).
            var left = [TimestampedID]()
            left.reserveCapacity(node.items.count)
            var r = removes.startIndex
            for item in node.items {
                while r < removes.endIndex && removes[r] < item { r += 1 }
                if r < removes.endIndex && removes[r] == item { r += 1; counts.removed += 1 } else { left.append(item) }
            }
            var kept = [TimestampedID]()
            kept.reserveCapacity(left.count + adds.count)
            var a = adds.startIndex
            for item in left {
                while a < adds.endIndex && adds[a] < item { kept.append(adds[a]); a += 1; counts.added += 1 }
                if a < adds.endIndex && adds[a] == item { a += 1 }
                kept.append(item)
            }
            counts.added += adds.endIndex - a
            kept += adds[a...]
            node.items = kept
            if kept.isEmpty { _ = try txn.delete(table, key(id)); return [] }
            return try write(txn, id, node, next: &next)
        }
        // Child i takes the changes from its first item up to the next child's (the first child
        // also those below it), as a descent to one item would choose.
        var children = [Child]()
        var a = adds.startIndex, r = removes.startIndex
        for (i, c) in node.children.enumerated() {
            var aEnd = adds.endIndex, rEnd = removes.endIndex
            if i + 1 < node.children.count {
                let bound = node.children[i + 1].first
                aEnd = adds[a...].firstIndex { $0 >= bound } ?? adds.endIndex
                rEnd = removes[r...].firstIndex { $0 >= bound } ?? removes.endIndex
            }
            if a == aEnd && r == rEnd { children.append(c); continue }
            children += try change(txn, c.node, adds[a..<aEnd], removes[r..<rEnd], depth: depth + 1, next: &next, counts: &counts)
            (a, r) = (aEnd, rEnd)
        }
        if children.isEmpty { _ = try txn.delete(table, key(id)); return [] }
        node.children = children
        return try write(txn, id, node, next: &next)
    }

    /// Builds the tree of `sorted` (ascending, no item twice) where there is none.
    public func load(_ txn: Transaction, sorted: [TimestampedID]) throws {
        guard try meta(txn) == nil, !sorted.isEmpty else { throw StoreError.corrupt("a sum tree is loaded only when empty, from items") }
        var next: UInt64 = 0
        var level = [Child]()
        // Leaves three-quarters full: the additions that follow mostly fit in place (`patch`).
        let fill = Self.leafCapacity * 3 / 4
        for start in stride(from: 0, to: sorted.count, by: fill) {
            let id = next
            next += 1
            level += try write(txn, id, Node(items: Array(sorted[start ..< min(sorted.count, start + fill)]), isLeaf: true), next: &next)
        }
        while level.count > 1 {
            var up = [Child]()
            for start in stride(from: 0, to: level.count, by: Self.innerCapacity) {
                let id = next
                next += 1
                up += try write(txn, id, Node(children: Array(level[start ..< min(level.count, start + Self.innerCapacity)]), isLeaf: false), next: &next)
            }
            level = up
        }
        try setMeta(txn, (level[0].node, next))
    }

    // MARK: queries

    /// A node read in place, its length checked against its count.
    struct RawNode {
        let bytes: UnsafeRawBufferPointer
        let count: Int

        init?(_ b: UnsafeRawBufferPointer) {
            guard b.count >= 3 else { return nil }
            count = Int(b[1]) << 8 | Int(b[2])
            guard (b[0] == 0 && b.count == 3 + 40 * count) || (b[0] == 1 && count > 0 && b.count == 3 + 88 * count) else { return nil }
            bytes = b
        }

        var isLeaf: Bool { bytes[0] == 0 }
        private func u64(_ at: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        private func timestamped(_ at: Int) -> TimestampedID {
            TimestampedID(timestamp: u64(at), id: Digest(UnsafeRawBufferPointer(rebasing: bytes[at + 8 ..< at + 40]))!)
        }
        func item(_ i: Int) -> TimestampedID { timestamped(3 + 40 * i) }
        func child(_ i: Int) -> UInt64 { u64(3 + 88 * i) }
        func childCount(_ i: Int) -> UInt64 { u64(3 + 88 * i + 8) }
        func childSum(_ i: Int) -> DigestSum { DigestSum(bytes: UnsafeRawBufferPointer(rebasing: bytes[3 + 88 * i + 16 ..< 3 + 88 * i + 48]))! }
        func childFirst(_ i: Int) -> TimestampedID { timestamped(3 + 88 * i + 48) }
    }

    /// Calls `body` with node `node` read in place.
    private func withNode<R>(_ txn: Transaction, _ node: UInt64, _ body: (RawNode) throws -> R) throws -> R {
        let r = try txn.withValue(table, key(node)) { b -> R? in try RawNode(b).map(body) }
        guard let r, let value = r else { throw StoreError.corrupt("sum tree node \(node) is missing or does not decode") }
        return value
    }

    /// The number of items.
    public func count(_ txn: Transaction) throws -> Int {
        guard let m = try meta(txn) else { return 0 }
        return try withNode(txn, m.root) { raw in raw.isLeaf ? raw.count : Int(clamping: (0..<raw.count).reduce(UInt64(0)) { $0 &+ raw.childCount($1) }) }
    }

    /// The item at `index` (which must be below `count`).
    public func item(_ txn: Transaction, at index: Int) throws -> TimestampedID {
        try leaf(txn, holding: index) { raw, at in raw.item(at) }
    }

    /// Calls `body` with the leaf holding the item at `index` and the item's place in it.
    private func leaf<R>(_ txn: Transaction, holding index: Int, _ body: (RawNode, Int) throws -> R) throws -> R {
        guard let m = try meta(txn) else { throw StoreError.corrupt("no item \(index) in an empty sum tree") }
        var node = m.root, k = UInt64(index), depth = 0
        while true {
            try Self.checkDepth(depth)
            depth += 1
            let next: UInt64? = try withNode(txn, node) { raw in
                guard !raw.isLeaf else { return nil }
                var i = 0
                while i < raw.count - 1 && k >= raw.childCount(i) { k -= raw.childCount(i); i += 1 }
                return raw.child(i)
            }
            guard let next else { break }
            node = next
        }
        return try withNode(txn, node) { raw in
            guard k < raw.count else { throw StoreError.corrupt("sum tree counts do not reach item \(index)") }
            return try body(raw, Int(k))
        }
    }

    /// How many items sort below `key`.
    public func rank(_ txn: Transaction, below key: TimestampedID) throws -> Int {
        guard let m = try meta(txn) else { return 0 }
        var node: UInt64? = m.root, below = 0, depth = 0
        while let id = node {
            try Self.checkDepth(depth)
            depth += 1
            node = try withNode(txn, id) { raw in
                if raw.isLeaf {
                    var (lo, hi) = (0, raw.count)
                    while lo < hi { let mid = (lo + hi) / 2; if raw.item(mid) < key { lo = mid + 1 } else { hi = mid } }
                    below += lo
                    return nil
                }
                guard let i = (0..<raw.count).last(where: { raw.childFirst($0) < key }) else { return nil }
                for j in 0..<i { below &+= Int(clamping: raw.childCount(j)) }
                return raw.child(i)
            }
        }
        return below
    }

    /// The sum of the ids of the first `k` items.
    public func prefixSum(_ txn: Transaction, _ k: Int) throws -> DigestSum {
        guard k > 0, let m = try meta(txn) else { return DigestSum() }
        var node: UInt64? = m.root, left = UInt64(k), sum = DigestSum(), depth = 0
        while let id = node, left > 0 {
            try Self.checkDepth(depth)
            depth += 1
            node = try withNode(txn, id) { raw in
                if raw.isLeaf {
                    for i in 0..<min(raw.count, Int(left)) { sum = sum + DigestSum(raw.item(i).id) }
                    return nil
                }
                for i in 0..<raw.count {
                    let c = raw.childCount(i)
                    guard left >= c else { return raw.child(i) }
                    sum = sum + raw.childSum(i)
                    left -= c
                    if left == 0 { return nil }
                }
                return nil
            }
        }
        return sum
    }

    /// Calls `body` with the items at `lower ..< upper` and their indices, in order, until it
    /// returns false; one descent a leaf.
    public func forEach(_ txn: Transaction, _ lower: Int, _ upper: Int, _ body: (TimestampedID, Int) throws -> Bool) throws {
        var index = lower
        while index < upper {
            let items = try leaf(txn, holding: index) { raw, at in (at..<raw.count).map(raw.item) }
            for item in items {
                guard index < upper else { return }
                guard try body(item, index) else { return }
                index += 1
            }
        }
    }

    /// A descent past any depth a tree of 2^64 items could reach has met a damaged node that
    /// points back up: said, not followed forever.
    static func checkDepth(_ depth: Int) throws {
        guard depth < 64 else { throw StoreError.corrupt("a sum tree's nodes point back up (deeper than 64 levels)") }
    }
}

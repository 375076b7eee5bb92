import DatanetCrypto
import DatanetRecords

/// Exact queries over a Datanet's span index (schema/spans.md "Queries"): its shards, in intake
/// order, and the contributions to leave out of every answer (withdrawn since indexing, or not
/// in the training set asked about), filtered by document. A pattern never matches 0xFF, so no
/// match crosses a document.
public struct SpanIndex: Sendable {
    public let shards: [SpanShard]
    /// Per shard, per contribution: whether its documents are in the answers (nil: all are).
    let included: [[Bool]?]
    /// Per shard, the text left out, as sorted disjoint ranges: a contribution's documents are
    /// contiguous, so there is one range per excluded contribution at most.
    let gaps: [[Range<Int>]]
    /// Documents in the answers (D of the scoring rules).
    public let documentCount: Int
    /// The contributions left out of the answers.
    public let excluded: Set<RecordID>

    public static let separator: UInt8 = 0xFF

    /// An index over `shards` (in intake order) answering for every indexed contribution except
    /// those in `excluding`.
    public init(shards: [SpanShard], excluding: Set<RecordID> = []) {
        self.shards = shards
        var included = [[Bool]?](), gaps = [[Range<Int>]](), documents = 0
        for s in shards {
            let keep = s.contributions.map { !excluding.contains($0.id) }
            included.append(keep.allSatisfy { $0 } ? nil : keep)
            var out = [Range<Int>]()
            for k in 0..<s.documentCount {
                let c = s.contribution(ofDocument: k)
                if keep[c] { documents += 1; continue }
                let span = s.start(k)..<(s.end(k) + 1)
                if let last = out.last, last.upperBound == span.lowerBound { out[out.count - 1] = last.lowerBound..<span.upperBound } else { out.append(span) }
            }
            gaps.append(out)
        }
        (self.included, self.gaps, documentCount, self.excluded) = (included, gaps, documents, excluding)
    }

    /// An occurrence: its shard, document (in that shard) and byte offset in the document.
    /// Sorted, occurrences follow intake order, then document, then offset.
    public struct Location: Hashable, Sendable, Comparable {
        public var shard: Int, document: Int, offset: Int
        public init(shard: Int, document: Int, offset: Int) { (self.shard, self.document, self.offset) = (shard, document, offset) }
        public static func < (a: Self, b: Self) -> Bool { (a.shard, a.document, a.offset) < (b.shard, b.document, b.offset) }
    }

    /// The contribution (of its shard) a location's document belongs to.
    public func contribution(_ l: Location) -> SpanShard.Contribution {
        shards[l.shard].contributions[shards[l.shard].contribution(ofDocument: l.document)]
    }

    /// Whether document k of shard s is in the answers.
    @inline(__always) func includes(_ s: Int, document k: Int) -> Bool {
        guard let keep = included[s] else { return true }
        return keep[shards[s].contribution(ofDocument: k)]
    }

    /// Whether text position p of shard s lies in a document left out (binary search over the
    /// shard's few gaps, not its documents).
    @inline(__always) func excludes(_ s: Int, position p: Int) -> Bool {
        let g = gaps[s]
        guard !g.isEmpty else { return false }
        var (lo, hi) = (0, g.count)
        while lo < hi { let mid = (lo + hi) / 2; if g[mid].upperBound <= p { lo = mid + 1 } else { hi = mid } }
        return lo < g.count && g[lo].contains(p)
    }

    /// The ranks of shard s whose suffixes start with `pattern` (binary search, comparing the
    /// pattern in full).
    static func range(_ shard: SpanShard, _ pattern: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        let n = shard.textCount, t = shard.text
        guard !pattern.isEmpty else { return 0..<n }
        // -1, 0 or 1: the suffix at p against the pattern over the pattern's length.
        @inline(__always) func compare(_ p: Int) -> Int {
            let limit = min(pattern.count, n - p)
            var i = 0
            while i < limit {
                let a = t[p + i], b = pattern[i]
                if a != b { return a < b ? -1 : 1 }
                i += 1
            }
            return limit == pattern.count ? 0 : -1
        }
        // One search until a match, then the two bounds on either side of it (equal_range): the
        // steps before the first match, each a random read of the mapped shard, are shared.
        var (lo, hi) = (0, n)
        while lo < hi {
            let mid = (lo + hi) / 2
            // Either half comes next: ask for both middles' entries while this one compares.
            shard.prefetchEntry((lo + mid) / 2)
            shard.prefetchEntry((mid + 1 + hi) / 2)
            let c = compare(shard.entry(mid))
            if c < 0 { lo = mid + 1 } else if c > 0 { hi = mid } else {
                var (first, below) = (lo, mid)
                while first < below {
                    let m = (first + below) / 2
                    shard.prefetchEntry((first + m) / 2)
                    shard.prefetchEntry((m + 1 + below) / 2)
                    if compare(shard.entry(m)) < 0 { first = m + 1 } else { below = m }
                }
                var (end, top) = (mid + 1, hi)
                while end < top {
                    let m = (end + top) / 2
                    shard.prefetchEntry((end + m) / 2)
                    shard.prefetchEntry((m + 1 + top) / 2)
                    if compare(shard.entry(m)) <= 0 { end = m + 1 } else { top = m }
                }
                return first..<end
            }
        }
        return lo..<lo
    }

    /// Of `range` (suffixes sharing their first `depth` bytes), the ranks whose next byte is `c`.
    static func narrow(_ shard: SpanShard, _ range: Range<Int>, depth: Int, byte c: UInt8) -> Range<Int> {
        let n = shard.textCount, t = shard.text
        // The byte at depth, or -1 past the end (a shorter suffix sorts first).
        @inline(__always) func at(_ r: Int) -> Int { let p = shard.entry(r) + depth; return p < n ? Int(t[p]) : -1 }
        var (lo, hi) = (range.lowerBound, range.upperBound)
        while lo < hi { let mid = (lo + hi) / 2; if at(mid) < Int(c) { lo = mid + 1 } else { hi = mid } }
        var (end, top) = (lo, range.upperBound)
        while end < top { let mid = (end + top) / 2; if at(mid) <= Int(c) { end = mid + 1 } else { top = mid } }
        return lo..<end
    }

    /// Whether any rank of `range` in shard s lies in a document in the answers.
    func anyIncluded(_ s: Int, _ range: Range<Int>) -> Bool {
        guard included[s] != nil else { return !range.isEmpty }
        let shard = shards[s]
        return range.contains { !excludes(s, position: shard.entry($0)) }
    }

    /// Exact occurrences of `pattern` (overlapping ones counted; 0 for an empty pattern or one
    /// holding 0xFF).
    public func count(_ pattern: [UInt8]) -> Int {
        guard !pattern.isEmpty, !pattern.contains(Self.separator) else { return 0 }
        return pattern.withUnsafeBufferPointer { p in
            shards.indices.reduce(0) { total, s in
                let r = Self.range(shards[s], p)
                guard included[s] != nil else { return total + r.count }
                let shard = shards[s]
                return total + r.reduce(0) { $0 + (excludes(s, position: shard.entry($1)) ? 0 : 1) }
            }
        }
    }

    /// Calls `body` with every occurrence of `pattern`, shard by shard, in suffix order.
    public func forEachOccurrence(_ pattern: [UInt8], _ body: (Location) -> Void) {
        guard !pattern.isEmpty, !pattern.contains(Self.separator) else { return }
        pattern.withUnsafeBufferPointer { p in
            for (s, shard) in shards.enumerated() {
                for r in Self.range(shard, p) {
                    let at = shard.entry(r), k = shard.document(at: at)
                    if includes(s, document: k) { body(Location(shard: s, document: k, offset: at - shard.start(k))) }
                }
            }
        }
    }

    /// Every occurrence of `pattern`, sorted.
    public func occurrences(_ pattern: [UInt8]) -> [Location] {
        var out = [Location]()
        forEachOccurrence(pattern) { out.append($0) }
        return out.sorted()
    }

    /// For each byte position i of `query`, the longest L such that query[i..<i+L] occurs (0
    /// where none does; 0xFF never matches). Uses L[i] ≥ L[i−1] − 1: each position starts from
    /// the last length less one and narrows the suffix range a byte at a time.
    public func longestMatches(_ query: [UInt8]) -> [Int] {
        var out = [Int](repeating: 0, count: query.count)
        query.withUnsafeBufferPointer { q in
            var previous = 0
            for i in 0..<q.count {
                var best = max(0, previous - 1)
                for (s, shard) in shards.enumerated() {
                    // A shard lacking the best length so far cannot beat it.
                    var range = Self.range(shard, UnsafeBufferPointer(rebasing: q[i..<(i + best)]))
                    guard best == 0 ? shard.textCount > 0 : anyIncluded(s, range) else { continue }
                    var length = best
                    while i + length < q.count, q[i + length] != Self.separator {
                        let next = Self.narrow(shard, range, depth: length, byte: q[i + length])
                        guard anyIncluded(s, next) else { break }
                        (range, length) = (next, length + 1)
                    }
                    best = length
                }
                out[i] = best
                previous = best
            }
        }
        return out
    }

    /// The maximal spans of `query` of at least `minimum` bytes: [i, i + L[i]) where L[i] > 0 and
    /// the span is not inside the one starting a byte earlier (i + L[i] > i − 1 + L[i − 1]).
    public func maximalSpans(_ query: [UInt8], minimum: Int = 1) -> [Range<Int>] {
        let l = longestMatches(query)
        return l.indices.compactMap { i in
            guard l[i] > 0, l[i] >= minimum, i == 0 || i + l[i] > i - 1 + l[i - 1] else { return nil }
            return i..<(i + l[i])
        }
    }
}

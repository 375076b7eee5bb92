/// An exact index of a training set's documents for span attribution (the text attribution
/// issue; schema/spans.md is to come): the documents' UTF-8 bytes joined with 0xFF after each
/// (a byte UTF-8 never holds, so no match crosses a document), and their suffix array.
public struct SpanIndex: Sendable {
    public let array: SuffixArray
    /// Where each document starts in the joined text, ascending.
    public let starts: [Int]
    /// Each document's contribution (an index into the caller's list, intake order).
    public let contributions: [Int]

    public static let separator: UInt8 = 0xFF

    /// Indexes `documents` (each with its contribution, in training order).
    public init(_ documents: [(contribution: Int, bytes: [UInt8])]) {
        var text = [UInt8](), starts = [Int]()
        text.reserveCapacity(documents.reduce(0) { $0 + $1.bytes.count + 1 })
        for d in documents { starts.append(text.count); text += d.bytes; text.append(Self.separator) }
        (self.starts, self.contributions) = (starts, documents.map(\.contribution))
        array = SuffixArray(text)
    }

    /// An occurrence: its document (index into the documents given) and byte offset in it.
    public struct Location: Equatable, Sendable, Comparable {
        public var document: Int, offset: Int
        public static func < (a: Self, b: Self) -> Bool { (a.document, a.offset) < (b.document, b.offset) }
    }

    /// The occurrences of `pattern` (overlapping ones included; none for a pattern holding
    /// 0xFF or an empty one), in suffix order.
    public func occurrences(_ pattern: [UInt8]) -> [Location] {
        guard !pattern.isEmpty, !pattern.contains(Self.separator) else { return [] }
        return array.range(of: pattern).map { location(array.positions[$0]) }
    }

    /// The document and offset of position `p` of the joined text.
    func location(_ p: Int) -> Location {
        var (lo, hi) = (0, starts.count)
        while lo + 1 < hi { let mid = (lo + hi) / 2; if starts[mid] <= p { lo = mid } else { hi = mid } }
        return Location(document: lo, offset: p - starts[lo])
    }

    /// For each byte position i of `query`, the longest L such that query[i..<i+L] occurs in
    /// the documents (0 where none does; a 0xFF byte never matches). Uses L[i] ≥ L[i−1] − 1.
    public func longestMatches(_ query: [UInt8]) -> [Int] {
        var out = [Int](repeating: 0, count: query.count)
        var previous = 0
        for i in query.indices {
            var length = max(0, previous - 1)
            while i + length < query.count, query[i + length] != Self.separator,
                  !array.range(of: Array(query[i...(i + length)])).isEmpty {
                length += 1
            }
            out[i] = length
            previous = length
        }
        return out
    }

    /// The maximal spans of `query`: [start, end) where L[start] > 0 and the span is not inside
    /// the one starting a byte earlier (start + L[start] > start − 1 + L[start − 1]).
    public func maximalSpans(_ query: [UInt8]) -> [Range<Int>] {
        let l = longestMatches(query)
        return l.indices.compactMap { i in
            guard l[i] > 0, i == 0 || i + l[i] > i - 1 + l[i - 1] else { return nil }
            return i..<(i + l[i])
        }
    }
}

/// Maximal-span attribution of a text (schema/spans.md "Attribution"): every maximal span of
/// at least `minimum` bytes, its occurrences and the contributions holding it; credit to the
/// earliest of them in intake order; spans of stop words only, or in more than 1% of the
/// documents, earn nothing; a span's score is its length × max(1, ⌊D / d⌋); each credited
/// contribution's weight is its share of the total score in parts per 10^9.
public struct SpanAttribution: Sendable {
    public struct Span: Sendable {
        /// [start, end) byte offsets in the text.
        public var start: Int, end: Int
        /// Occurrences in the training set, and documents holding it (d).
        public var count: Int, documents: Int
        /// The contributions holding it, in intake order.
        public var contributions: [SpanShard.Contribution]
        /// The earliest of them, unless the span earns nothing.
        public var credited: SpanShard.Contribution?
        public var score: UInt64
        public var reason: Reason?
    }

    /// Why a span earns nothing.
    public enum Reason: String, Sendable {
        case stopWords = "only stop words"
        case common = "in more than 1% of documents"
    }

    public var spans = [Span]()
    /// Documents in the training set (D).
    public var documentCount: Int
    /// Each credited contribution (intake order), its total score and weight (parts per 10^9,
    /// summing to exactly 10^9; no entries when nothing earns credit).
    public var weights = [(contribution: SpanShard.Contribution, score: UInt64, weight: UInt64)]()

    /// Attributes `text` against `index`.
    public init(_ index: SpanIndex, text: [UInt8], minimum: Int) {
        documentCount = index.documentCount
        var totals = [UInt64: (SpanShard.Contribution, UInt64)]()
        for range in index.maximalSpans(text, minimum: max(1, minimum)) {
            var count = 0
            var documents = Set<SpanIndex.Location>(), holders = [UInt64: SpanShard.Contribution]()
            index.forEachOccurrence(Array(text[range])) { l in
                count += 1
                documents.insert(SpanIndex.Location(shard: l.shard, document: l.document, offset: 0))
                let c = index.contribution(l)
                holders[c.intake] = c
            }
            let contributions = holders.keys.sorted().map { holders[$0]! }
            let d = documents.count
            var span = Span(start: range.lowerBound, end: range.upperBound, count: count, documents: d,
                            contributions: contributions, credited: nil, score: 0, reason: nil)
            if Self.onlyStopWords(text[range]) {
                span.reason = .stopWords
            } else if d * 100 > documentCount {
                span.reason = .common
            } else if let first = contributions.first {
                span.credited = first
                span.score = UInt64(range.count) * UInt64(max(1, documentCount / max(1, d)))
                let (sum, over) = totals[first.intake, default: (first, 0)].1.addingReportingOverflow(span.score)
                totals[first.intake, default: (first, 0)].1 = over ? .max : sum
            }
            spans.append(span)
        }
        let order = totals.keys.sorted()
        let shares = Weights.split(integers: order.map { totals[$0]!.1 })
        weights = zip(order, shares).map { (totals[$0]!.0, totals[$0]!.1, $1) }
    }

    /// Whether every word of `bytes` (maximal runs of bytes other than space, tab, LF, VT, FF
    /// and CR), lowercased in ASCII, is a stop word; true when it holds no word.
    public static func onlyStopWords(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.split(whereSeparator: { $0 == 0x20 || (0x09...0x0d).contains($0) }).allSatisfy { word in
            stopWords.contains(String(decoding: word.map { (0x41...0x5a).contains($0) ? $0 + 0x20 : $0 }, as: UTF8.self))
        }
    }

    /// English function words (schema/spans.md "Stop words" lists them).
    public static let stopWords: Set<String> = [
        "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at",
        "be", "because", "been", "before", "being", "below", "between", "both", "but", "by",
        "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further",
        "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how",
        "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself",
        "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own",
        "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then",
        "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very",
        "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
        "you", "your", "yours", "yourself", "yourselves",
    ]
}

import DatanetCBOR
import DatanetCrypto

extension SpanAttribution {
    /// What an `attribution` record (method `spans`) names as its output: SHA-256 of the
    /// deterministic CBOR `[* [start, end]]` of the spans found, in order.
    public var outputDigest: Digest {
        SHA256.hash(CBOR.array(spans.map { .array([.unsigned(UInt64($0.start)), .unsigned(UInt64($0.end))]) }).encoded)
    }
}

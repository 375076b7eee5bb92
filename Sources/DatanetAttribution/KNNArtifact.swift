import DatanetCBOR
import DatanetCrypto
import DatanetRecords

/// A kNN model as stored (schema/model.md "kNN artifact"): integers and raw features only —
/// every double the model uses is computed from them at load — in deterministic CBOR, so the
/// same training set and configuration give the same bytes, and so the same artifact id, on
/// every machine. Decoding is strict: anything but the exact encoding this writes is refused.
public struct KNNArtifact: Equatable, Sendable {
    public static let version: UInt64 = 1
    /// The trainer name a `model` record of this artifact carries (its version is `version`).
    public static let trainerName = "datanet-knn"
    /// Bounds a decoder checks: examples, features, the length of a file name or label.
    public static let maximumExamples = 50_000_000, maximumFeatures = 4_096, maximumText = 4_096

    public enum Kind: UInt64, Sendable { case text = 1, numeric = 2 }

    /// One training example: its source (contribution index, file, line), label, and features:
    /// a text document's bucket counts, or a numeric row.
    public struct Example: Equatable, Sendable {
        public var contribution: Int, file: String, line: Int, label: String
        public var counts: [BucketCount], values: [Double]
    }

    public var kind: Kind
    public var k: Int
    public var scale: KNNModel.Scale
    /// Numeric feature names, in order (empty for text).
    public var features: [String]
    /// The training contributions, in intake order: record id and author.
    public var contributions: [(id: RecordID, author: PublicKey)]
    public var examples: [Example]

    public static func == (a: Self, b: Self) -> Bool { a.encoded == b.encoded }

    /// The artifact of a training set's labeled text (`.text`) or numeric examples.
    public init(_ set: TrainingSet, kind: Kind, k: Int, scale: KNNModel.Scale) {
        (self.kind, self.k, self.scale, contributions) = (kind, k, kind == .text ? .none : scale, set.contributions)
        switch kind {
        case .text:
            features = []
            examples = set.labeledTexts.map { Example(contribution: $0.source.contribution, file: $0.source.file, line: $0.source.line,
                                                      label: $0.label, counts: TextFeatures.counts($0.text), values: []) }
        case .numeric:
            features = set.summary.features
            examples = set.numericRows.map { Example(contribution: $0.source.contribution, file: $0.source.file, line: $0.source.line,
                                                     label: $0.label, counts: [], values: $0.values) }
        }
    }

    /// The model this artifact stands for.
    public var model: KNNModel {
        let sources = examples.map { ExampleSource(contribution: $0.contribution, file: $0.file, line: $0.line) }
        let features: KNNModel.Features = kind == .text ? .text(documents: examples.map(\.counts)) : .numeric(rows: examples.map(\.values), scale: scale)
        return KNNModel(k: k, features: features, labels: examples.map(\.label), sources: sources)
    }

    /// `{0: version, 1: kind (1 text, 2 numeric), 2: K, 3: scale (0 none, 1 standard),
    /// 4: [feature name], 5: [[record id, author key]], 6: [[contribution index, file, line,
    /// label, features]]}`; features are bytes: n × (u32 bucket ‖ u32 count) ascending by bucket
    /// for text, the row's doubles as big-endian IEEE 754 bit patterns for numbers.
    public var encoded: [UInt8] {
        var rows = [CBOR]()
        rows.reserveCapacity(examples.count)
        for e in examples {
            var f = [UInt8]()
            if kind == .text {
                f.reserveCapacity(8 * e.counts.count)
                for c in e.counts { f += BigEndian32.bytes(c.bucket) + BigEndian32.bytes(c.count) }
            } else {
                f.reserveCapacity(8 * e.values.count)
                for v in e.values { withUnsafeBytes(of: v.bitPattern.bigEndian) { f.append(contentsOf: $0) } }
            }
            rows.append(.array([.unsigned(UInt64(e.contribution)), .string(e.file), .unsigned(UInt64(e.line)), .string(e.label), .bytes(f)]))
        }
        return CBOR.map([
            .init(.unsigned(0), .unsigned(Self.version)), .init(.unsigned(1), .unsigned(kind.rawValue)), .init(.unsigned(2), .unsigned(UInt64(k))),
            .init(.unsigned(3), .unsigned(scale == .standard ? 1 : 0)), .init(.unsigned(4), .array(features.map { .string($0) })),
            .init(.unsigned(5), .array(contributions.map { .array([.bytes($0.id.bytes), .bytes($0.author.bytes)]) })),
            .init(.unsigned(6), .array(rows)),
        ]).encoded
    }

    /// Decodes an artifact strictly; anything else throws `ArtifactError` naming the problem.
    public init(encoded bytes: [UInt8]) throws(ArtifactError) {
        let root: CBOR
        do { root = try CBOR.decode(bytes) } catch { throw .malformed("not canonical CBOR: \(error)") }
        guard case .map(let m) = root, m.map(\.key) == (0...6).map({ CBOR.unsigned($0) }) else {
            throw .malformed("not a map of fields 0 to 6")
        }
        guard m[0].value == .unsigned(Self.version) else { throw .malformed("artifact version is not \(Self.version)") }
        guard let kindValue = m[1].value.unsignedValue, let kind = Kind(rawValue: kindValue) else { throw .malformed("kind is not 1 (text) or 2 (numeric)") }
        guard let k = m[2].value.unsignedValue, k >= 1, k <= UInt64(Self.maximumExamples) else { throw .malformed("K is not between 1 and \(Self.maximumExamples)") }
        guard let scaleValue = m[3].value.unsignedValue, scaleValue <= 1, kind == .numeric || scaleValue == 0 else { throw .malformed("scale is not 0 or 1 (and 0 for text)") }
        guard let names = m[4].value.arrayValue, names.count <= Self.maximumFeatures, kind == .numeric || names.isEmpty else { throw .malformed("feature names are not a list") }
        let features = try names.map { n throws(ArtifactError) -> String in try Self.text(n, "a feature name") }
        guard let people = m[5].value.arrayValue else { throw .malformed("contributions are not a list") }
        let contributions = try people.map { p throws(ArtifactError) -> (id: RecordID, author: PublicKey) in
            guard let pair = p.arrayValue, pair.count == 2, let id = pair[0].bytesValue.flatMap({ RecordID(bytes: $0) }),
                  let raw = pair[1].bytesValue, let author = try? PublicKey(bytes: raw) else { throw .malformed("a contribution is not [record id, author key]") }
            return (id, author)
        }
        guard let rows = m[6].value.arrayValue, !rows.isEmpty, rows.count <= Self.maximumExamples else { throw .malformed("examples are not a list of 1 to \(Self.maximumExamples)") }
        var examples = [Example]()
        examples.reserveCapacity(rows.count)
        for r in rows {
            guard let e = r.arrayValue, e.count == 5, let c = e[0].unsignedValue, c < UInt64(contributions.count),
                  let line = e[2].unsignedValue, line <= UInt64(Int32.max), let f = e[4].bytesValue else {
                throw .malformed("an example is not [contribution index, file, line, label, features] of a listed contribution")
            }
            let file = try Self.text(e[1], "a file name"), label = try Self.text(e[3], "a label")
            var counts = [BucketCount](), values = [Double]()
            if kind == .text {
                guard f.count % 8 == 0 else { throw .malformed("a document's counts are not whole (bucket, count) pairs") }
                for at in stride(from: 0, to: f.count, by: 8) {
                    let b = BigEndian32.u32(f, at), n = BigEndian32.u32(f, at + 4)
                    guard b < UInt32(TextFeatures.bucketCount), n > 0, counts.last.map({ $0.bucket < b }) ?? true else {
                        throw .malformed("a document's counts are not ascending buckets below 2^18 with counts above 0")
                    }
                    counts.append(BucketCount(bucket: b, count: n))
                }
            } else {
                guard f.count == 8 * features.count else { throw .malformed("a row has not one value for each of the \(features.count) features") }
                for at in stride(from: 0, to: f.count, by: 8) {
                    let v = Double(bitPattern: UInt64(BigEndian32.u32(f, at)) << 32 | UInt64(BigEndian32.u32(f, at + 4)))
                    guard v.isFinite else { throw .malformed("a row holds a value that is not finite") }
                    values.append(v)
                }
            }
            examples.append(Example(contribution: Int(c), file: file, line: Int(line), label: label, counts: counts, values: values))
        }
        (self.kind, self.k, self.scale, self.features, self.contributions, self.examples) = (kind, Int(k), scaleValue == 1 ? .standard : .none, features, contributions, examples)
    }

    private static func text(_ c: CBOR, _ what: String) throws(ArtifactError) -> String {
        guard case .text(let b) = c, b.count <= maximumText else { throw .malformed("\(what) is not text of at most \(maximumText) bytes") }
        return String(decoding: b, as: UTF8.self)
    }
}

/// Why model artifact bytes were refused.
public enum ArtifactError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    public var description: String {
        switch self { case .malformed(let why): "the model artifact is malformed: \(why)" }
    }
}

/// Big-endian 32-bit integers in artifact bytes.
enum BigEndian32 {
    static func bytes(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]) }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// A leaf as listings read it (`log`, `status`, `ls`, the accepted set): intake and decision
/// leaves, all but a few of any log, read field by field straight from the stored bytes,
/// without decoding the envelope an intake carries or checking canonical form; every other
/// leaf, and any leaf not laid out as this build writes it, decoded in full by
/// `Leaf(encoded:)`, whose errors it throws.
///
/// Not a check: for bytes `Leaf(encoded:)` accepts it gives the same values (tests compare
/// the two over whole logs and mutated leaves), but it may read bytes that decoder refuses
/// (a non-canonical head, say). So it reads only leaves this store checked when it stored
/// them, never bytes from outside. With Leaf.swift, this is the only reader of a leaf's
/// CBOR field numbers.
public enum LeafSummary: Sendable {
    /// A contribution taken in, with its record's body decoded (not its signatures).
    case intake(author: PublicKey, record: RecordID, contribution: Contribution)
    /// A decision citing review leaves (how this build writes them).
    case decision(Leaf.Decision)
    /// Any other leaf (a decision embedding its reviews included), decoded in full.
    case other(Leaf)

    /// The decision this leaf records, cited or embedded.
    public var decision: Leaf.Decision? {
        switch self {
        case .decision(let d): d
        case .other(let leaf): leaf.decision
        case .intake: nil
        }
    }

    public init(encoded bytes: UnsafeRawBufferPointer) throws(RecordError) {
        if let read = Self.scanned(bytes) { self = read; return }
        try self.init(try Leaf(encoded: Array(bytes)))
    }

    /// A leaf already decoded, as listings read it.
    public init(_ leaf: Leaf) throws(RecordError) {
        switch leaf.payload {
        case .intake(let i):
            guard case .contribution(let c) = try Record(i.contribution) else {
                throw .malformed("intake leaf carries a \(i.contribution.kind.rawValue) record, not a contribution")
            }
            self = .intake(author: i.author, record: i.record, contribution: c)
        case .decision(let d) where !d.reviews.isEmbedded:
            self = .decision(d)
        default:
            self = .other(leaf)
        }
    }

    public var kind: LeafKind {
        switch self {
        case .intake: .intake
        case .decision: .decision
        case .other(let leaf): leaf.kind
        }
    }

    /// A leaf's kind read from its first two fields alone (nil for any other layout): what a
    /// listing filtered by kind reads of the leaves it leaves out.
    public static func kind(of bytes: UnsafeRawBufferPointer) -> LeafKind? {
        var s = CBOR.Scanner(bytes)
        guard (try? s.mapCount()) != nil, (try? s.unsigned()) == 0, (try? s.bytes())?.count == 32, (try? s.unsigned()) == 1,
              let k = try? s.unsigned() else { return nil }
        return LeafKind(rawValue: k)
    }

    /// What a review leaf's review says — its curator, verdict and reason — read without
    /// decoding the contribution ids it lists (a batch review may list 100,000), or nil for any
    /// other leaf or layout (decode it in full). A listing's reviewer column reads only these.
    public static func reviewVerdict(_ bytes: UnsafeRawBufferPointer) -> (reviewer: PublicKey, accept: Bool, reason: String)? {
        var s = CBOR.Scanner(bytes)
        func key(_ k: UInt64) -> Bool { (try? s.unsigned()) == k }
        // {0: Datanet, 1: kind 7, 2: [policy index, policy leaf hash], 3: {1: review envelope}}
        guard (try? s.mapCount()) == 4, key(0), (try? s.bytes())?.count == 32, key(1), (try? s.unsigned()) == LeafKind.review.rawValue,
              key(2), (try? s.arrayCount()) == 2, (try? s.unsigned()) != nil, (try? s.bytes())?.count == 32, key(3),
              (try? s.mapCount()) == 1, key(1), let envelope = try? s.bytes(), s.isAtEnd,
              let body = Envelope.body(of: envelope, kind: .review) else { return nil }
        // {0: Datanet, 1: reviewer, 2: [contribution ids], 3: verdict, 4: reason, 5?: created-at}
        var b = CBOR.Scanner(body)
        guard let n = try? b.mapCount(), n == 5 || n == 6, (try? b.unsigned()) == 0, (try? b.bytes())?.count == 32,
              (try? b.unsigned()) == 1, let reviewer = (try? b.bytes()).flatMap(PublicKey.init),
              (try? b.unsigned()) == 2, (try? b.skip()) != nil, (try? b.unsigned()) == 3, let verdict = try? b.unsigned(), verdict <= 1,
              (try? b.unsigned()) == 4, let reason = try? b.text(), reason.count <= 4096
        else { return nil }
        if n == 6 { guard (try? b.unsigned()) == 5, (try? b.unsigned()) != nil else { return nil } }
        guard b.isAtEnd else { return nil }
        return (reviewer, verdict == 1, String(decoding: reason, as: UTF8.self))
    }

    /// The fields of an intake or cited-review decision leaf, or nil (decode it in full).
    static func scanned(_ bytes: UnsafeRawBufferPointer) -> LeafSummary? {
        var s = CBOR.Scanner(bytes)
        func key(_ k: UInt64) -> Bool { (try? s.unsigned()) == k }
        func digest() -> Digest? { (try? s.bytes()).flatMap { Digest($0) } }
        func skip32() -> Bool { (try? s.bytes())?.count == 32 }
        // {0: Datanet, 1: kind, 2: [policy index, policy leaf hash], 3: payload}
        guard (try? s.mapCount()) == 4, key(0), skip32(), key(1), let kind = try? s.unsigned(),
              key(2), (try? s.arrayCount()) == 2, (try? s.unsigned()) != nil, skip32(), key(3)
        else { return nil }
        let read: LeafSummary?
        switch LeafKind(rawValue: kind) {
        case .intake?:
            // {1: author, 2: record, 3: content, 4: contribution envelope}
            guard (try? s.mapCount()) == 4, key(1), let author = (try? s.bytes()).flatMap(PublicKey.init), key(2), let record = digest(),
                  key(3), skip32(), key(4), let envelope = try? s.bytes(),
                  let body = Envelope.body(of: envelope, kind: .contribution), let c = Contribution.scanned(body)
            else { return nil }
            read = .intake(author: author, record: RecordID(record), contribution: c)
        case .decision?:
            // {1: contribution, 2: intake, 3: verdict, 4: reason, 6: review leaves}
            guard (try? s.mapCount()) == 5, key(1), let contribution = digest(), key(2), let intake = try? s.unsigned(),
                  key(3), let verdict = try? s.unsigned(), verdict <= 1, key(4), let reason = try? s.text(), reason.count <= Envelope.maximumSize,
                  key(6), let n = try? s.arrayCount()
            else { return nil }
            var reviews = [UInt64]()
            reviews.reserveCapacity(min(n, 1024))
            for _ in 0..<n {
                guard let i = try? s.unsigned(), reviews.last.map({ $0 < i }) ?? true else { return nil }
                reviews.append(i)
            }
            read = .decision(Leaf.Decision(contribution: RecordID(contribution), intake: intake, accepted: verdict == 1,
                                           reason: String(decoding: reason, as: UTF8.self), reviews: .cited(reviews)))
        default:
            return nil
        }
        return s.isAtEnd ? read : nil
    }
}

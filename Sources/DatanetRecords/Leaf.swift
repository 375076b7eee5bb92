import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// What a log leaf records (schema/log.md).
public enum LeafKind: UInt64, Sendable, CustomStringConvertible {
    /// A contribution first taken in: its place is its priority for every "earliest wins" rule.
    case intake = 1
    /// The accept or reject of one contribution, with the reviews that decided it.
    case decision = 2
    /// A policy state coming into force: the genesis (leaf 0) or a `policy` record.
    case policy = 3
    case setSequencer = 4
    case continuation = 5
    /// A contribution withdrawn or taken down: its content and sidecar are to be dropped.
    case tombstone = 6

    public var description: String {
        switch self {
        case .intake: "intake"; case .decision: "decision"; case .policy: "policy"
        case .setSequencer: "set-sequencer"; case .continuation: "continuation"; case .tombstone: "tombstone"
        }
    }
}

extension LeafKind {
    /// For a key handoff leaf at `index`, the first checkpoint size the new key signs
    /// (schema/checkpoint.md): a set-sequencer leaf is still the old key's (size index + 1), a
    /// continuation hands over at once. Nil for other kinds. Saturates: an index near 2^64
    /// (a forged one) hands over at a size no log reaches.
    package func newKeySigns(from index: UInt64) -> UInt64? {
        let step: UInt64
        switch self {
        case .setSequencer: step = 2
        case .continuation: step = 1
        default: return nil
        }
        let (size, overflow) = index.addingReportingOverflow(step)
        return overflow ? .max : size
    }
}

/// One leaf of a Datanet's log: deterministic CBOR {0: Datanet, 1: kind, 2: [index, leaf hash]
/// of the latest policy leaf before it (absent only for leaf 0), 3: payload}.
public struct Leaf: Sendable {
    public var datanet: Digest
    public var kind: LeafKind
    /// The policy in force, cited by the index and leaf hash of its policy leaf.
    public var policy: (index: UInt64, hash: Digest)?
    public var payload: [UInt64: CBOR]

    public init(datanet: Digest, kind: LeafKind, policy: (index: UInt64, hash: Digest)?, payload: [UInt64: CBOR]) {
        self.datanet = datanet; self.kind = kind; self.policy = policy; self.payload = payload
    }

    public var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .unsigned(kind.rawValue))
        if let p = policy { b.set(2, .array([.unsigned(p.index), .bytes(p.hash.bytes)])) }
        b.set(3, .map(payload.map { .init(.unsigned($0.key), $0.value) }))
        return b.encoded
    }

    /// The encoding of a decision leaf, written directly (the sequencer's hot path): the same
    /// bytes as `Leaf(kind: .decision, …).encoded`, without building a CBOR tree. `reviews` are
    /// envelope bytes, already sorted by record id.
    public static func decisionEncoding<Reviews: Collection>(datanet: Digest, policy: (index: UInt64, hash: Digest), contribution: Digest,
                                                          intake: UInt64, accepted: Bool, reason: String, reviews: Reviews) -> [UInt8]
    where Reviews.Element: Collection<UInt8> {
        var out = [UInt8]()
        out.reserveCapacity(160 + reason.utf8.count + reviews.reduce(0) { $0 + $1.count + 3 })
        func bytes(_ b: some Collection<UInt8>) { CBOR.appendHead(2, UInt64(b.count), to: &out); out += b }
        out.append(0xa4)                                   // {0: Datanet, 1: kind, 2: citation, 3: payload}
        out.append(0x00); bytes(datanet.bytes)
        out.append(0x01); CBOR.appendHead(0, LeafKind.decision.rawValue, to: &out)
        out.append(0x02); out.append(0x82); CBOR.appendHead(0, policy.index, to: &out); bytes(policy.hash.bytes)
        out.append(0x03); out.append(0xa5)                 // {1: contribution, 2: intake, 3: verdict, 4: reason, 5: reviews}
        out.append(0x01); bytes(contribution.bytes)
        out.append(0x02); CBOR.appendHead(0, intake, to: &out)
        out.append(0x03); out.append(accepted ? 0x01 : 0x00)
        out.append(0x04); CBOR.appendHead(3, UInt64(reason.utf8.count), to: &out); out += reason.utf8
        out.append(0x05); CBOR.appendHead(4, UInt64(reviews.count), to: &out)
        for r in reviews { bytes(r) }
        return out
    }

    /// RFC 9162 leaf hash of the encoding.
    public var hash: Digest { Merkle.leafHash(encoded) }

    public init(encoded: [UInt8]) throws(RecordError) {
        var f = try BodyFields(encoded, kind: "leaf")
        datanet = try f.digest(0, "datanet")
        guard let k = LeafKind(rawValue: try f.uint(1, "kind")) else { throw .malformed("unknown leaf kind") }
        kind = k
        if let cite = f.optionalItem(2) {
            guard let pair = cite.arrayValue, pair.count == 2, let i = pair[0].unsignedValue,
                  let h = pair[1].bytesValue, let d = Digest(bytes: h) else { throw .malformed("leaf policy citation is not [index, hash]") }
            policy = (i, d)
        }
        guard case .map(let entries) = try f.item(3, "payload") else { throw .malformed("leaf payload is not a map") }
        var p = [UInt64: CBOR]()
        for e in entries {
            guard let key = e.key.unsignedValue else { throw .malformed("leaf payload key is not an integer") }
            p[key] = e.value
        }
        payload = p
        try f.finish()
    }

    /// The envelope bytes a payload field holds, decoded.
    public func envelope(_ field: UInt64) throws(RecordError) -> Envelope {
        guard let b = payload[field]?.bytesValue else { throw .malformed("\(kind) leaf lacks its record") }
        return try Envelope(encoded: b)
    }

    /// The payload fields each kind has, exactly (schema/log.md).
    public static func payloadFields(_ kind: LeafKind) -> Set<UInt64> {
        switch kind {
        case .intake: [1, 2, 3, 4]
        case .decision: [1, 2, 3, 4, 5]
        case .policy, .setSequencer, .continuation: [1]
        case .tombstone: [1, 2, 3]
        }
    }

    /// Fails unless the payload has exactly its kind's fields.
    public func checkPayloadFields() throws(RecordError) {
        guard Set(payload.keys) == Self.payloadFields(kind) else {
            throw .malformed("\(kind) leaf has payload fields \(payload.keys.sorted()), not \(Self.payloadFields(kind).sorted())")
        }
    }

    /// A byte-string payload field.
    public func bytes(_ field: UInt64) throws(RecordError) -> [UInt8] {
        guard let b = payload[field]?.bytesValue else { throw .malformed("\(kind) leaf field \(field) is not a byte string") }
        return b
    }

    /// A 32-byte payload field.
    public func digest(_ field: UInt64) throws(RecordError) -> Digest {
        guard let d = Digest(bytes: try bytes(field)) else { throw .malformed("\(kind) leaf field \(field) is not 32 bytes") }
        return d
    }

    /// An unsigned payload field.
    public func unsigned(_ field: UInt64) throws(RecordError) -> UInt64 {
        guard let n = payload[field]?.unsignedValue else { throw .malformed("\(kind) leaf field \(field) is not an unsigned integer") }
        return n
    }

    /// A text payload field.
    public func text(_ field: UInt64) throws(RecordError) -> String {
        guard case .text(let t) = payload[field] else { throw .malformed("\(kind) leaf field \(field) is not text") }
        return String(decoding: t, as: UTF8.self)
    }

    /// A payload field holding a list of envelopes, decoded.
    public func envelopes(_ field: UInt64) throws(RecordError) -> [Envelope] {
        guard let list = payload[field]?.arrayValue else { throw .malformed("\(kind) leaf field \(field) is not a list") }
        var out = [Envelope]()
        for item in list {
            guard let b = item.bytesValue else { throw .malformed("\(kind) leaf field \(field) holds a non-byte-string") }
            out.append(try Envelope(encoded: b))
        }
        return out
    }
}

extension BodyFields {
    /// An optional field: nil if absent.
    package mutating func optionalItem(_ key: UInt64) -> CBOR? {
        (try? item(key, "")) ?? nil
    }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects

/// What a log leaf records (schema/log.md).
public enum LeafKind: UInt64, Sendable, CaseIterable, CustomStringConvertible {
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
    /// A curator's review, sequenced once however many decisions cite it.
    case review = 7
    /// A model bound to a checkpoint of this log (`model` record), with a consistency proof
    /// from that checkpoint to the log before the leaf.
    case model = 8

    public var description: String {
        switch self {
        case .intake: "intake"; case .decision: "decision"; case .policy: "policy"
        case .setSequencer: "set-sequencer"; case .continuation: "continuation"; case .tombstone: "tombstone"; case .review: "review"
        case .model: "model"
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
///
/// This file is the leaf codec: nothing else reads a leaf's CBOR field numbers but its fast
/// reader for listings, `LeafSummary`. Decoding is
/// strict (every payload field present, of its type, and no other), so `encoded` reproduces
/// the bytes a leaf was decoded from and its hash.
public struct Leaf: Sendable {
    public var datanet: DatanetID
    /// The policy in force, cited by the index and leaf hash of its policy leaf.
    public var policy: (index: UInt64, hash: Digest)?
    public var payload: Payload

    /// What a leaf records, by kind (schema/log.md "Leaves").
    public enum Payload: Sendable {
        case intake(Intake)
        case decision(Decision)
        /// The genesis (leaf 0) or a `policy` record.
        case policy(Envelope)
        case setSequencer(Envelope)
        case continuation(Envelope)
        case tombstone(Tombstone)
        /// A signed `review` record, cited by index from the decisions it settles.
        case review(Envelope)
        case model(Model)

        public var kind: LeafKind {
            switch self {
            case .intake: .intake; case .decision: .decision; case .policy: .policy
            case .setSequencer: .setSequencer; case .continuation: .continuation; case .tombstone: .tombstone
            case .review: .review; case .model: .model
            }
        }
    }

    /// A contribution taken in: its author, record id and content id beside the envelope.
    public struct Intake: Sendable {
        public var author: PublicKey
        public var record: RecordID
        public var content: ObjectID
        public var contribution: Envelope
        public init(author: PublicKey, record: RecordID, content: ObjectID, contribution: Envelope) {
            self.author = author; self.record = record; self.content = content; self.contribution = contribution
        }
    }

    /// The verdict on one contribution and the reviews that settled it (none for a duplicate).
    public struct Decision: Sendable {
        public var contribution: RecordID
        public var intake: UInt64
        public var accepted: Bool
        public var reason: String
        public var reviews: Reviews
        public init(contribution: RecordID, intake: UInt64, accepted: Bool, reason: String, reviews: Reviews) {
            self.contribution = contribution; self.intake = intake; self.accepted = accepted; self.reason = reason; self.reviews = reviews
        }
    }

    /// How a decision leaf shows the reviews that settled it.
    public enum Reviews: Sendable, Equatable {
        /// The indexes of the review leaves it counts, ascending (payload field 6): what this
        /// build writes.
        case cited([UInt64])
        /// The review records themselves, sorted by id (field 5): logs written before review
        /// leaves, still read and verified under the rule they were written with.
        case embedded([Envelope])

        /// Whether the reviews are embedded (a log written before review leaves).
        public var isEmbedded: Bool { if case .embedded = self { true } else { false } }

        /// No review at all (an exact duplicate's rejection).
        public var isEmpty: Bool {
            switch self { case .cited(let i): i.isEmpty; case .embedded(let e): e.isEmpty }
        }
        public var count: Int {
            switch self { case .cited(let i): i.count; case .embedded(let e): e.count }
        }
    }

    /// A contribution withdrawn or taken down.
    public struct Tombstone: Sendable {
        /// The signed `tombstone` record.
        public var record: Envelope
        public var contribution: RecordID
        public var intake: UInt64
        public init(record: Envelope, contribution: RecordID, intake: UInt64) {
            self.record = record; self.contribution = contribution; self.intake = intake
        }
    }

    /// A model registered: its signed `model` record and the consistency proof from the
    /// checkpoint it names to the log before this leaf (RFC 9162 §2.1.4; empty when they are one).
    public struct Model: Sendable {
        public var record: Envelope
        public var proof: [Digest]
        public init(record: Envelope, proof: [Digest]) { (self.record, self.proof) = (record, proof) }
    }

    public init(datanet: DatanetID, policy: (index: UInt64, hash: Digest)?, payload: Payload) {
        self.datanet = datanet; self.policy = policy; self.payload = payload
    }

    public var kind: LeafKind { payload.kind }

    /// The intake fields, if this is an intake leaf.
    public var intake: Intake? { if case .intake(let i) = payload { i } else { nil } }
    /// The decision fields, if this is a decision leaf.
    public var decision: Decision? { if case .decision(let d) = payload { d } else { nil } }
    /// The tombstone fields, if this is a tombstone leaf.
    public var tombstone: Tombstone? { if case .tombstone(let t) = payload { t } else { nil } }
    /// The review record, if this is a review leaf.
    public var review: Envelope? { if case .review(let e) = payload { e } else { nil } }
    /// The model fields, if this is a model leaf.
    public var model: Model? { if case .model(let m) = payload { m } else { nil } }
    /// The record of a policy, set-sequencer or continuation leaf.
    public var governing: Envelope? {
        switch payload {
        case .policy(let e), .setSequencer(let e), .continuation(let e): e
        case .intake, .decision, .tombstone, .review, .model: nil
        }
    }

    /// Every record the leaf carries, in field order.
    public var records: [Envelope] {
        switch payload {
        case .intake(let i): [i.contribution]
        case .decision(let d): if case .embedded(let e) = d.reviews { e } else { [] }
        case .policy(let e), .setSequencer(let e), .continuation(let e), .review(let e): [e]
        case .tombstone(let t): [t.record]
        case .model(let m): [m.record]
        }
    }

    public var encoded: [UInt8] {
        var b = BodyBuilder()
        b.set(0, .bytes(datanet.bytes))
        b.set(1, .unsigned(kind.rawValue))
        if let p = policy { b.set(2, .array([.unsigned(p.index), .bytes(p.hash.bytes)])) }
        let fields: [(UInt64, CBOR)] = switch payload {
        case .intake(let i):
            [(1, .bytes(i.author.bytes)), (2, .bytes(i.record.bytes)), (3, .bytes(i.content.bytes)), (4, .bytes(i.contribution.encoded))]
        case .decision(let d):
            [(1, .bytes(d.contribution.bytes)), (2, .unsigned(d.intake)), (3, .unsigned(d.accepted ? 1 : 0)), (4, .string(d.reason))]
                + { switch d.reviews {
                    case .embedded(let e): [(5, .array(e.map { .bytes($0.encoded) }))]
                    case .cited(let i): [(6, .array(i.map { .unsigned($0) }))]
                } }()
        case .policy(let e), .setSequencer(let e), .continuation(let e), .review(let e): [(1, .bytes(e.encoded))]
        case .tombstone(let t): [(1, .bytes(t.record.encoded)), (2, .bytes(t.contribution.bytes)), (3, .unsigned(t.intake))]
        case .model(let m): [(1, .bytes(m.record.encoded)), (2, .array(m.proof.map { .bytes($0.bytes) }))]
        }
        b.set(3, .map(fields.map { .init(.unsigned($0.0), $0.1) }))
        return b.encoded
    }

    /// The encoding of a decision leaf citing review leaves, written directly (the sequencer's
    /// hot path): the same bytes as `Leaf(payload: .decision(…)).encoded` with `.cited(reviews)`,
    /// without building a CBOR tree. `reviews` ascend.
    public static func decisionEncoding(datanet: DatanetID, policy: (index: UInt64, hash: Digest), contribution: RecordID,
                                        intake: UInt64, accepted: Bool, reason: String, reviews: some Collection<UInt64>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(160 + reason.utf8.count + 9 * reviews.count)
        func bytes(_ b: some Collection<UInt8>) { CBOR.appendHead(2, UInt64(b.count), to: &out); out += b }
        head(&out, datanet, .decision, policy)
        out.append(0xa5)                                   // {1: contribution, 2: intake, 3: verdict, 4: reason, 6: review leaves}
        out.append(0x01); bytes(contribution.bytes)
        out.append(0x02); CBOR.appendHead(0, intake, to: &out)
        out.append(0x03); out.append(accepted ? 0x01 : 0x00)
        out.append(0x04); CBOR.appendHead(3, UInt64(reason.utf8.count), to: &out); out += reason.utf8
        out.append(0x06); CBOR.appendHead(4, UInt64(reviews.count), to: &out)
        for r in reviews { CBOR.appendHead(0, r, to: &out) }
        return out
    }

    /// The encoding of a review leaf carrying `review` (envelope bytes), written directly: the
    /// same bytes as `Leaf(payload: .review(…)).encoded`.
    public static func reviewEncoding(datanet: DatanetID, policy: (index: UInt64, hash: Digest), review: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(100 + review.count)
        head(&out, datanet, .review, policy)
        out.append(0xa1)                                   // {1: review}
        out.append(0x01); CBOR.appendHead(2, UInt64(review.count), to: &out); out += review
        return out
    }

    /// {0: Datanet, 1: kind, 2: citation, 3: — the payload map follows.
    private static func head(_ out: inout [UInt8], _ datanet: DatanetID, _ kind: LeafKind, _ policy: (index: UInt64, hash: Digest)) {
        out.append(0xa4)
        out.append(0x00); CBOR.appendHead(2, 32, to: &out); out += datanet.bytes
        out.append(0x01); CBOR.appendHead(0, kind.rawValue, to: &out)
        out.append(0x02); out.append(0x82); CBOR.appendHead(0, policy.index, to: &out)
        CBOR.appendHead(2, 32, to: &out); out += policy.hash.bytes
        out.append(0x03)
    }

    /// RFC 9162 leaf hash of the encoding.
    public var hash: Digest { Merkle.leafHash(encoded) }

    /// Strictly decodes a leaf. A kind this build does not know is refused by number
    /// (`RecordError.unknownLeafKind`): a newer log is never read as if it were older.
    public init(encoded: [UInt8]) throws(RecordError) {
        var f = try BodyFields(encoded, kind: "leaf")
        datanet = try f.id(0, "datanet")
        let number = try f.uint(1, "kind")
        guard let kind = LeafKind(rawValue: number) else { throw .unknownLeafKind(number) }
        policy = try f.optional(2, wrong: "leaf policy citation is not [index, hash]") { s throws(CBORError) -> (index: UInt64, hash: Digest)? in
            guard try s.arrayCount() == 2 else { return nil }
            let i = try s.unsigned()
            return Digest(try s.bytes()).map { (i, $0) }
        }
        var p = try f.fields(3, "payload", kind: "\(kind) leaf payload")
        switch kind {
        case .intake:
            payload = .intake(Intake(author: try p.publicKey(1, "author"), record: try p.id(2, "record"),
                                     content: try p.id(3, "content"), contribution: try p.envelope(4, "contribution")))
        case .decision:
            let contribution: RecordID = try p.id(1, "contribution"), intake = try p.uint(2, "intake index")
            let verdict = try p.uint(3, "verdict", max: 1)
            let reason = try p.text(4, "reason", maxBytes: Envelope.maximumSize)
            let embedded = try p.optional(5, wrong: "field 5 (reviews) is not a list of byte strings") { s throws(CBORError) -> [[UInt8]]? in
                let n = try s.arrayCount()
                var out = [[UInt8]]()
                for _ in 0..<n { out.append(Array(try s.bytes())) }
                return out
            }
            let reviews: Reviews
            if let embedded {
                var envelopes = [Envelope]()
                envelopes.reserveCapacity(embedded.count)
                for b in embedded { envelopes.append(try Envelope(encoded: b)) }
                reviews = .embedded(envelopes)
            } else {
                reviews = .cited(try p.ascendingIndexes(6, "review leaves"))
            }
            payload = .decision(Decision(contribution: contribution, intake: intake, accepted: verdict == 1, reason: reason, reviews: reviews))
        case .policy: payload = .policy(try p.envelope(1, "record"))
        case .setSequencer: payload = .setSequencer(try p.envelope(1, "record"))
        case .continuation: payload = .continuation(try p.envelope(1, "record"))
        case .review: payload = .review(try p.envelope(1, "record"))
        case .tombstone:
            payload = .tombstone(Tombstone(record: try p.envelope(1, "record"), contribution: try p.id(2, "contribution"),
                                           intake: try p.uint(3, "intake index")))
        case .model:
            let record = try p.envelope(1, "record")
            let proof = try p.field(2, "consistency proof", wrong: { _ in "field 2 (consistency proof) is not a list of at most 128 32-byte hashes" }) {
                s throws(CBORError) -> [Digest]? in
                let n = try s.arrayCount()
                guard n <= 128 else { return nil }
                var out = [Digest]()
                for _ in 0..<n { guard let d = Digest(try s.bytes()) else { return nil }; out.append(d) }
                return out
            }
            payload = .model(Model(record: record, proof: proof))
        }
        try p.finish()
        try f.finish()
    }
}

extension RecordView {
    /// The view of a log leaf, with the records it carries expanded.
    public static func leaf(_ leaf: Leaf) throws -> JSONValue {
        var o: [String: JSONValue] = ["datanet": .string(leaf.datanet.hex), "kind": .string(leaf.kind.description)]
        if let p = leaf.policy { o["policy"] = .object(["index": .int(p.index), "hash": .string(p.hash.hex)]) }
        switch leaf.payload {
        case .intake(let i):
            o["author"] = .string(Hex.encode(i.author.bytes))
            o["record"] = .string(i.record.hex)
            o["content"] = .string(i.content.hex)
            o["contribution"] = try record(i.contribution)
        case .decision(let d):
            o["contribution"] = .string(d.contribution.hex)
            o["intake_index"] = .int(d.intake)
            o["accepted"] = .bool(d.accepted)
            o["reason"] = .string(d.reason)
            switch d.reviews {
            case .embedded(let e): o["reviews"] = .array(try e.map(record))
            case .cited(let i): o["review_leaves"] = .array(i.map { .int($0) })
            }
        case .policy(let e), .setSequencer(let e), .continuation(let e), .review(let e):
            o["record"] = try record(e)
        case .tombstone(let t):
            o["record"] = try record(t.record)
            o["contribution"] = .string(t.contribution.hex)
            o["intake_index"] = .int(t.intake)
        case .model(let m):
            o["record"] = try record(m.record)
            o["consistency_proof"] = .array(m.proof.map { .string($0.hex) })
        }
        return .object(o)
    }
}

extension BodyFields {
    /// A byte-string field holding an envelope, decoded.
    mutating func envelope(_ key: UInt64, _ name: String) throws(RecordError) -> Envelope {
        try Envelope(encoded: try bytes(key, name, wrong: "field \(key) (\(name)) is not a byte string"))
    }

    /// A list of unsigned integers, strictly ascending (so each appears once).
    mutating func ascendingIndexes(_ key: UInt64, _ name: String) throws(RecordError) -> [UInt64] {
        try field(key, name, wrong: { _ in "field \(key) (\(name)) is not a strictly ascending list of unsigned integers" }) {
            s throws(CBORError) -> [UInt64]? in
            let n = try s.arrayCount()
            var out = [UInt64]()
            out.reserveCapacity(min(n, 1024))
            for _ in 0..<n {
                let i = try s.unsigned()
                if let last = out.last, last >= i { return nil }
                out.append(i)
            }
            return out
        }
    }
}

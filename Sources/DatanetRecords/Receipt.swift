import DatanetCrypto
import DatanetObjects
import Foundation

/// A contribution's provenance in one file (schema/receipt.md): the exact leaf bytes that
/// show who contributed it, under which rules, where it sits in the log and what was decided,
/// with their inclusion proofs and the signed checkpoint they lead to.
public struct Receipt: Codable, Sendable, Equatable {
    /// The version this build writes: decisions cite review leaves, carried in `reviews`.
    public static let typeName = "datanet/receipt/v2"
    /// Receipts written before review leaves and handoff proofs: still read and verified.
    public static let legacyTypeName = "datanet/receipt/v1"
    /// Receipts larger than this are refused before parsing: room for the review leaves of a
    /// quorum of five batch reviews at the 4 MiB review bound (each about 12.7 MB here, its
    /// bytes in base64 and its view listing every contribution id).
    public static let maximumSize = 64 << 20

    public var type = Receipt.typeName
    /// The Datanet (its genesis record id), hex.
    public var datanet: String
    /// The contribution record id, hex.
    public var contribution: String
    /// The signed checkpoint every proof leads to.
    public var checkpoint: String
    /// Every policy, set-sequencer and continuation leaf from leaf 0 up to the checkpoint, in
    /// log order: the genesis, each policy in force and every key handoff.
    public var chain: [Entry]
    /// The checkpoint's last leaf, which cites the latest policy leaf (absent when that leaf
    /// is the chain's own last).
    public var last: Entry?
    public var intake: Entry
    /// Absent while the contribution is undecided at the checkpoint.
    public var decision: Entry?
    /// The review leaves the decision cites, in index order (v2; absent when it cites none).
    public var reviews: [Entry]?
    /// For each chain leaf that hands the sequencer key over naming the log it takes over
    /// (a continuation, or a set-sequencer that binds a size and root), the consistency proof
    /// from that size and root to the checkpoint (v2; absent when the chain has none).
    public var handoffs: [Handoff]?
    /// An older checkpoint this receipt was first made for, with the consistency proof from it.
    public var previous: Previous?

    /// One leaf: its index, bytes (base64), inclusion proof (base64 hashes) and JSON view.
    public struct Entry: Codable, Sendable, Equatable {
        public var index: UInt64
        public var leaf: String
        public var proof: [String]
        public var view: JSONValue
        package init(index: UInt64, leaf: String, proof: [String], view: JSONValue) {
            (self.index, self.leaf, self.proof, self.view) = (index, leaf, proof, view)
        }
    }

    /// A consistency proof from the (size, root) a chain leaf at `index` names to the checkpoint.
    public struct Handoff: Codable, Sendable, Equatable {
        public var index: UInt64
        public var consistency: [String]
        package init(index: UInt64, consistency: [String]) { (self.index, self.consistency) = (index, consistency) }
    }

    public struct Previous: Codable, Sendable, Equatable {
        public var checkpoint: String
        public var consistency: [String]
        package init(checkpoint: String, consistency: [String]) { (self.checkpoint, self.consistency) = (checkpoint, consistency) }
    }

    /// The receipt as pretty JSON with sorted keys.
    public var json: Data {
        get throws {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return try e.encode(self) + Data("\n".utf8)
        }
    }

    /// Parses receipt JSON (shape only; `verify` judges the content).
    public init(json: Data) throws(RecordError) {
        guard json.count <= Self.maximumSize else { throw .malformed("receipt of \(json.count) bytes exceeds \(Self.maximumSize)") }
        try StrictJSON.check(json)
        do { self = try JSONDecoder().decode(Receipt.self, from: json) } catch {
            throw .malformed("not a receipt: \(Self.describe(error))")
        }
        // Strict like the CBOR decoder: a field this version does not know is refused, not
        // ignored (a misspelt "decision" must not pass as a receipt without one).
        guard let top = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { throw .malformed("not a JSON object") }
        guard type == Self.typeName || type == Self.legacyTypeName else {
            throw .malformed("type is \"\(type)\", not \"\(Self.typeName)\" (or \"\(Self.legacyTypeName)\")")
        }
        var known: Set<String> = ["type", "datanet", "contribution", "checkpoint", "chain", "last", "intake", "decision", "previous"]
        if type == Self.typeName { known.formUnion(["reviews", "handoffs"]) }
        if let extra = Set(top.keys).subtracting(known).sorted().first { throw .malformed("unknown \(type) field \"\(extra)\"") }
        var entries = (top["chain"] as? [Any] ?? []) + [top["intake"] as Any] + (top["reviews"] as? [Any] ?? [])
        for key in ["last", "decision"] where top[key] != nil { entries.append(top[key] as Any) }
        for h in top["handoffs"] as? [Any] ?? [] {
            guard let fields = h as? [String: Any], Set(fields.keys) == ["index", "consistency"] else {
                throw .malformed("a handoff entry has other fields than index and consistency")
            }
        }
        for e in entries {
            guard let fields = e as? [String: Any], Set(fields.keys) == ["index", "leaf", "proof", "view"] else {
                throw .malformed("a receipt leaf entry has other fields than index, leaf, proof and view")
            }
        }
        if let p = top["previous"] as? [String: Any], Set(p.keys) != ["checkpoint", "consistency"] {
            throw .malformed("previous has other fields than checkpoint and consistency")
        }
    }

    package init(datanet: String, contribution: String, checkpoint: String, chain: [Entry], last: Entry?, intake: Entry, decision: Entry?,
                 reviews: [Entry]? = nil, handoffs: [Handoff]? = nil) {
        (self.datanet, self.contribution, self.checkpoint, self.chain) = (datanet, contribution, checkpoint, chain)
        (self.last, self.intake, self.decision, self.reviews, self.handoffs) = (last, intake, decision, reviews, handoffs)
    }

    /// A one-line account of a JSON decoding error (any Codable format, not only receipts).
    public static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let k, _): "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let c): "invalid JSON (\(c.debugDescription))"
        default: "\(error)"
        }
    }
}

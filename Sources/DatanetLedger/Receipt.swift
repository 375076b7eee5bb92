import DatanetCrypto
import DatanetStore
import Foundation

/// A contribution's provenance in one file (schema/receipt.md): the exact leaf bytes that
/// show who contributed it, under which rules, where it sits in the log and what was decided,
/// with their inclusion proofs and the signed checkpoint they lead to.
public struct Receipt: Codable, Sendable, Equatable {
    public static let typeName = "datanet/receipt/v1"
    /// Receipts larger than this are refused before parsing.
    public static let maximumSize = 16 << 20

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
    /// An older checkpoint this receipt was first made for, with the consistency proof from it.
    public var previous: Previous?

    /// One leaf: its index, bytes (base64), inclusion proof (base64 hashes) and JSON view.
    public struct Entry: Codable, Sendable, Equatable {
        public var index: UInt64
        public var leaf: String
        public var proof: [String]
        public var view: JSONValue
    }

    public struct Previous: Codable, Sendable, Equatable {
        public var checkpoint: String
        public var consistency: [String]
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
        let known: Set<String> = ["type", "datanet", "contribution", "checkpoint", "chain", "last", "intake", "decision", "previous"]
        if let extra = Set(top.keys).subtracting(known).sorted().first { throw .malformed("unknown receipt field \"\(extra)\"") }
        var entries = (top["chain"] as? [Any] ?? []) + [top["intake"] as Any]
        for key in ["last", "decision"] where top[key] != nil { entries.append(top[key] as Any) }
        for e in entries {
            guard let fields = e as? [String: Any], Set(fields.keys) == ["index", "leaf", "proof", "view"] else {
                throw .malformed("a receipt leaf entry has other fields than index, leaf, proof and view")
            }
        }
        if let p = top["previous"] as? [String: Any], Set(p.keys) != ["checkpoint", "consistency"] {
            throw .malformed("previous has other fields than checkpoint and consistency")
        }
        guard type == Self.typeName else { throw .malformed("type is \"\(type)\", not \"\(Self.typeName)\"") }
    }

    init(datanet: String, contribution: String, checkpoint: String, chain: [Entry], last: Entry?, intake: Entry, decision: Entry?) {
        (self.datanet, self.contribution, self.checkpoint, self.chain) = (datanet, contribution, checkpoint, chain)
        (self.last, self.intake, self.decision) = (last, intake, decision)
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

extension Ledger {
    /// A receipt for a contribution in this store's log, against the newest checkpoint held.
    public func receipt(for contribution: Digest) throws -> Receipt {
        guard let (d, intakeIndex) = try placement(contribution) else {
            throw LedgerRefusal.notAllowed("contribution \(contribution.hex) is not in a log here (still pending?)")
        }
        guard let note = try latestCheckpoint(d) else { throw LedgerRefusal.notAllowed("no checkpoint of \(d.hex) is held here") }
        let size = try Checkpoint.unverified(note: note).size
        let log = try MerkleLog(env: env, id: d, create: false)
        let table = try leavesTable(d, create: false)
        return try env.read { txn in
            func entry(_ index: UInt64) throws -> Receipt.Entry {
                guard let bytes = try txn.get(table, Self.u64Bytes(index)) else { throw LedgerRefusal.notAllowed("leaf \(index) is missing") }
                let proof = try log.inclusionProof(txn, index: index, size: size)
                return Receipt.Entry(index: index, leaf: Data(bytes).base64EncodedString(), proof: proof.map { Data($0.bytes).base64EncodedString() },
                                     view: try RecordView.leaf(try Leaf(encoded: bytes)))
            }
            func leaf(_ index: UInt64) throws -> Leaf {
                guard let bytes = try txn.get(table, Self.u64Bytes(index)) else { throw LedgerRefusal.notAllowed("leaf \(index) is missing") }
                return try Leaf(encoded: bytes)
            }
            guard intakeIndex < size, try leaf(intakeIndex).kind == .intake else {
                throw LedgerRefusal.notAllowed("record \(contribution.hex) is not a contribution taken into the log")
            }
            // The policy chain, walked back from the last leaf through the citations.
            var chainIndexes = [UInt64]()
            let lastLeaf = try leaf(size - 1)
            var at: UInt64? = [.policy, .setSequencer, .continuation].contains(lastLeaf.kind) ? size - 1 : lastLeaf.policy?.index
            while let i = at {
                chainIndexes.append(i)
                at = try leaf(i).policy?.index
                if let next = at, next >= i { throw LedgerRefusal.notAllowed("leaf \(i) cites a later policy leaf \(next)") }
            }
            let decision = try self.decision(txn, contribution).flatMap { $0 < size ? $0 : nil }
            return Receipt(datanet: d.hex, contribution: contribution.hex, checkpoint: note,
                           chain: try chainIndexes.reversed().map(entry),
                           last: chainIndexes.first == size - 1 ? nil : try entry(size - 1),
                           intake: try entry(intakeIndex), decision: try decision.map(entry))
        }
    }

    /// The receipt remade against the newest checkpoint held here, keeping the checkpoint it
    /// was made for as `previous` with a consistency proof to the new one.
    public func refreshed(_ old: Receipt) throws -> Receipt {
        guard let id = Digest(hex: old.contribution) else { throw LedgerRefusal.notAllowed("receipt names no valid contribution id") }
        var fresh = try receipt(for: id)
        let before = try Checkpoint.unverified(note: old.checkpoint)
        let after = try Checkpoint.unverified(note: fresh.checkpoint)
        guard before.size <= after.size else { throw LedgerRefusal.notAllowed("the receipt's checkpoint (size \(before.size)) is newer than this store's (\(after.size))") }
        guard before.size < after.size else { return old }
        let log = try MerkleLog(env: env, id: Digest(hex: fresh.datanet)!, create: false)
        let proof = try env.read { txn in try log.consistencyProof(txn, size1: before.size, size2: after.size) }
        fresh.previous = Receipt.Previous(checkpoint: old.checkpoint, consistency: proof.map { Data($0.bytes).base64EncodedString() })
        return fresh
    }
}

import DatanetCBOR
import DatanetCrypto
import DatanetObjects
import Foundation

/// A JSON value with exact integers: the readable view of records and leaves in receipts,
/// compared as values (so key order and spacing do not matter, every value does).
public indirect enum JSONValue: Codable, Equatable, Sendable {
    case null, bool(Bool), int(UInt64), string(String), array([JSONValue]), object([String: JSONValue])
    /// A negative integer (a valuation's fixed-point value); non-negative ones are `int`.
    case negative(Int64)

    /// An integer of either sign, as the cases above hold it.
    public static func signed(_ n: Int64) -> JSONValue { n >= 0 ? .int(UInt64(n)) : .negative(n) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(UInt64.self) { self = .int(n) }
        else if let n = try? c.decode(Int64.self) { self = .negative(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let n): try c.encode(n)
        case .negative(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// The JSON view of records and leaves, derived from their bytes only.
public enum RecordView {
    package static func keys(_ list: [PublicKey]) -> JSONValue { .array(list.map { .string($0.description) }) }
    package static func keys(_ list: [PublicKey]?) -> JSONValue { list.map(keys) ?? .null }

    /// The view of a policy state.
    public static func policy(_ p: PolicyState) -> JSONValue {
        var o: [String: JSONValue] = ["name": .string(p.name), "owner": .string(p.owner.description), "sequencer": .string(p.sequencer.description),
                                      "curators": keys(p.curators), "quorum": .int(p.quorum), "contributors": keys(p.contributors),
                                      "readers": keys(p.readers), "max_pending_proposals": .int(p.maxPendingProposals),
                                      "max_pending_bytes": .int(p.maxPendingBytes)]
        // Only when named, as the encoding has field 10 only then (views of older states unchanged).
        if !p.builders.isEmpty { o["builders"] = keys(p.builders) }
        return .object(o)
    }

    static func pairs(_ p: [(key: String, value: String)]) -> JSONValue {
        .object(Dictionary(p.map { ($0.key, JSONValue.string($0.value)) }, uniquingKeysWith: { a, _ in a }))
    }

    /// Credits held inline as `[{contribution, amount}]`; in a blob as `{blob, count}`.
    static func credits(_ c: Credits) -> JSONValue {
        switch c {
        case .inline(let l): .array(l.entries.map { .object(["contribution": .string($0.contribution.hex), "amount": .signed($0.amount)]) })
        case .blob(let id, let n): .object(["blob": .string(id.hex), "count": .int(n)])
        }
    }

    /// The view of a signed record: id, kind, signers and its typed body.
    public static func record(_ e: Envelope) throws -> JSONValue {
        let body: [String: JSONValue]
        switch try Record(e) {
        case .genesis(let g):
            body = ["policy": policy(g.policy), "created_at": .int(g.createdAt), "nonce": .string(Hex.encode(g.nonce))]
        case .contribution(let c):
            body = ["datanet": .string(c.datanet.hex), "author": .string(c.author.description), "content": .string(c.content.hex),
                    "content_kind": .string(c.contentKind == .blob ? "blob" : "tree"), "size": .int(c.size),
                    "media_type": .string(c.mediaType), "license": .string(c.license),
                    "sidecar": .string(c.sidecar.hex), "created_at": .int(c.createdAt)]
        case .review(let r):
            body = ["datanet": .string(r.datanet.hex), "reviewer": .string(r.reviewer.description),
                    "contributions": .array(r.contributions.map { .string($0.hex) }), "accept": .bool(r.accept), "reason": .string(r.reason)]
        case .policy(let p):
            body = ["datanet": .string(p.datanet.hex), "previous": .string(p.previous.hex), "state": policy(p.state), "summary": .string(p.summary)]
        case .setSequencer(let s):
            body = ["datanet": .string(s.datanet.hex), "previous": .string(s.previous.hex), "sequencer": .string(s.sequencer.description)]
        case .continuation(let c):
            body = ["datanet": .string(c.datanet.hex), "size": .int(c.size), "root": .string(c.root.hex), "sequencer": .string(c.sequencer.description)]
        case .tombstone(let t):
            body = ["datanet": .string(t.datanet.hex), "contribution": .string(t.contribution.hex), "takedown": .bool(t.takedown),
                    "reason": .string(t.reason)]
        case .model(let m):
            body = ["datanet": .string(m.datanet.hex), "builder": .string(m.builder.description), "name": .string(m.name),
                    "checkpoint": .object(["size": .int(m.checkpointSize), "root": .string(m.checkpointRoot.hex)]),
                    "trainer": .string(m.trainer), "trainer_version": .string(m.trainerVersion),
                    "configuration": pairs(m.configuration),
                    "artifact": .object(["blob": .string(m.artifact.hex), "size": .int(m.artifactSize)]),
                    "training": .object(["contributions": .int(m.training.contributions), "examples": .int(m.training.examples),
                                         "bytes": .int(m.training.bytes), "licenses": .array(m.training.licenses.map { .string($0) }),
                                         "tombstones_before": .int(m.training.tombstonesBefore)]),
                    "created_at": .int(m.createdAt), "base": m.base.map { .string($0.hex) } ?? .null]
        case .attribution(let a):
            body = ["datanet": .string(a.datanet.hex), "signer": .string(a.signer.description), "method": .string(a.method),
                    "parameters": pairs(a.parameters), "input": .string(a.input.hex), "output": .string(a.output.hex),
                    "model": a.model.map { .string($0.hex) } ?? .null, "credits": credits(a.credits), "created_at": .int(a.createdAt)]
        case .valuation(let v):
            body = ["datanet": .string(v.datanet.hex), "signer": .string(v.signer.description), "model": .string(v.model.hex),
                    "method": .string(v.method), "parameters": pairs(v.parameters), "test_set": .string(v.testSet.hex),
                    "values": credits(v.values), "created_at": .int(v.createdAt)]
        }
        return .object(["id": .string(e.id.hex), "kind": .string(e.kind.rawValue), "signers": keys(e.signatures.map(\.key)),
                        "body": .object(body)])
    }
}

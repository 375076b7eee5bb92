import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Testing

/// The leaf codec (Leaf.swift) is the only reader of leaf field numbers: it must reproduce
/// every stored leaf byte for byte, refuse a kind it does not know by number, and refuse any
/// payload that is not exactly its kind's fields.
@Suite struct LeafCodecTests {
    /// Every kind a real log writes decodes and re-encodes to the stored bytes.
    @Test func everyStoredLeafRoundTrips() throws {
        let log = try EveryKindLog()
        let stored = try log.leafBytes()
        var kinds = Set<LeafKind>()
        for (i, bytes) in stored.enumerated() {
            let leaf = try Leaf(encoded: bytes)
            #expect(leaf.encoded == bytes, "leaf \(i) (\(leaf.kind)) re-encodes differently")
            #expect(leaf.hash == Merkle.leafHash(bytes))
            kinds.insert(leaf.kind)
        }
        #expect(kinds == Set(LeafKind.allCases))
    }

    /// A kind from a newer node is refused by number, with a message saying what to do.
    @Test func unknownKindIsRefusedByNumber() throws {
        let bytes = try #require(try EveryKindLog().leafBytes().last)
        for number in [UInt64(0), 9, 10, 1000, .max] {
            let mutated = try Self.edit(bytes) { top in top[1] = .unsigned(number) }
            #expect(throws: RecordError.unknownLeafKind(number)) { try Leaf(encoded: mutated) }
            #expect("\(RecordError.unknownLeafKind(number))".contains("leaf kind \(number) is unknown"))
        }
    }

    /// Missing, extra and mistyped payload fields, a verdict other than 0 or 1, a payload of
    /// another kind's shape, and truncations: each refused as malformed or as CBOR, none traps.
    @Test func malformedPayloadsAreRefused() throws {
        let stored = try EveryKindLog().leafBytes()
        var tried = 0
        for bytes in stored {
            let leaf = try Leaf(encoded: bytes)
            guard case .map(let payload) = try Self.top(bytes)[3] else { Issue.record("payload is not a map"); continue }
            var variants = [(String, [UInt8])]()
            for (k, field) in payload.enumerated() {
                variants.append(("drop field \(k)", try Self.edit(bytes) { $0[3] = .map(payload.enumerated().filter { $0.offset != k }.map(\.element)) }))
                let wrong: CBOR = field.value.bytesValue == nil ? .bytes([1]) : .unsigned(1)
                variants.append(("retype field \(k)", try Self.edit(bytes) { top in
                    var p = payload; p[k] = .init(field.key, wrong); top[3] = .map(p)
                }))
            }
            variants.append(("extra field", try Self.edit(bytes) { $0[3] = .map(payload + [.init(.unsigned(9), .unsigned(0))]) }))
            if leaf.kind == .decision {
                variants.append(("verdict 2", try Self.edit(bytes) { top in
                    top[3] = .map(payload.map { $0.key == .unsigned(3) ? .init($0.key, .unsigned(2)) : $0 })
                }))
            }
            let sameShape: Set<LeafKind> = [.policy, .setSequencer, .continuation, .review]
            for other in LeafKind.allCases where other != leaf.kind
                && !(sameShape.contains(other) && sameShape.contains(leaf.kind)) {
                variants.append(("as \(other)", try Self.edit(bytes) { $0[1] = .unsigned(other.rawValue) }))
            }
            for cut in [1, bytes.count / 2, bytes.count - 1] { variants.append(("cut at \(cut)", Array(bytes.prefix(cut)))) }
            for (what, mutated) in variants {
                tried += 1
                do {
                    _ = try Leaf(encoded: mutated)
                    Issue.record("\(leaf.kind) leaf with \(what) decoded")
                } catch {
                    switch error {
                    case .malformed, .cbor: break
                    default: Issue.record("\(leaf.kind) leaf with \(what): unexpected \(error)")
                    }
                }
            }
        }
        #expect(tried > 200)
    }

    /// The leaf, envelope and body decoders read from the buffer without a CBOR tree: whatever
    /// they accept is canonical CBOR that re-encodes to the same bytes, and malformed CBOR is
    /// refused with the decoder's own error, over seeded mutations of every kind of stored leaf.
    @Test func bufferDecodersAcceptOnlyCanonicalInput() throws {
        let stored = try EveryKindLog().leafBytes()
        var rng = SplitMix64(seed: 0x1EAF)
        var (accepted, refusedAsCBOR, recordsDecoded) = (0, 0, 0)
        for i in 0..<20_000 {
            var b = stored[i % stored.count]
            rng.mutate(&b, maxEdits: 2)
            let tree = Result { () throws(CBORError) in try CBOR.decode(b) }
            do {
                let leaf = try Leaf(encoded: b)
                accepted += 1
                #expect(leaf.encoded == b, "a mutated leaf decoded but re-encodes differently")
                for e in leaf.records {
                    #expect(e.encoded.count > e.body.count)
                    if let record = try? Record(e) { recordsDecoded += 1; #expect(Self.reencoded(record) == e.body) }
                }
            } catch {
                if case .failure(let c) = tree {
                    #expect(error == .cbor(c), "leaf refused with \(error), the decoder says \(c)")
                    refusedAsCBOR += 1
                }
            }
        }
        #expect(accepted > 100 && refusedAsCBOR > 1_000 && recordsDecoded > 100)
    }

    static func reencoded(_ r: Record) -> [UInt8] {
        switch r {
        case .genesis(let g): g.body
        case .contribution(let c): c.body
        case .review(let v): v.body
        case .policy(let p): p.body
        case .setSequencer(let s): s.body
        case .continuation(let c): c.body
        case .tombstone(let t): t.body
        case .model(let m): m.body
        case .attribution(let a): a.body
        case .valuation(let v): v.body
        }
    }

    static func top(_ bytes: [UInt8]) throws -> [UInt64: CBOR] {
        guard case .map(let entries) = try CBOR.decode(bytes) else { throw RecordError.malformed("not a map") }
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.key.unsignedValue!, $0.value) })
    }

    /// The leaf's top-level map, edited and re-encoded canonically.
    static func edit(_ bytes: [UInt8], _ change: (inout [UInt64: CBOR]) -> Void) throws -> [UInt8] {
        var top = try top(bytes)
        change(&top)
        var b = BodyBuilder()
        for (k, v) in top.sorted(by: { $0.key < $1.key }) { b.set(k, v) }
        return b.encoded
    }
}

import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
@testable import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Foundation
import Testing

/// Golden envelopes (schema/vectors/records.json), rebuilt byte for byte from fixed keys, and
/// invalid ones that must each fail with the named error. `DATANET_WRITE_GOLDENS=1 swift test
/// --filter RecordTests` rewrites the file after a deliberate format change.
@Suite struct RecordTests {
    static let goldenURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("schema/vectors/records.json")

    /// The error's case, as the golden file names it ("cbor/trailingBytes", "badSignature", …).
    static func code(_ e: RecordError) -> String {
        switch e {
        case .cbor(let c): "cbor/\(c.code)"
        case .malformed: "malformed"
        case .unsupportedVersion: "unsupportedVersion"
        case .unknownKind: "unknownKind"
        case .unknownLeafKind: "unknownLeafKind"
        case .badSignature: "badSignature"
        case .missingSignature: "missingSignature"
        }
    }

    static func check(_ bytes: [UInt8]) -> String {
        do throws(RecordError) {
            _ = try Record.verified(try Envelope(encoded: bytes))
            return "valid"
        } catch {
            return code(error)
        }
    }

    /// A JSON view of a CBOR item: integer keys as strings, bytes as "h'…'".
    static func view(_ item: CBOR) -> Any {
        switch item {
        case .unsigned(let v): return v
        case .negative(let v): return -1 - Int64(v)
        case .bytes(let b): return "h'\(Hex.encode(b))'"
        case .text(let t): return String(decoding: t, as: UTF8.self)
        case .array(let a): return a.map(view)
        case .map(let m): return Dictionary(uniqueKeysWithValues: m.map { ("\(view($0.key))", view($0.value)) })
        case .bool(let b): return b
        case .null: return NSNull()
        }
    }

    /// Envelope bytes with the parts given, for building invalid cases.
    static func raw(_ version: CBOR = .unsigned(1), kind: String, body: [UInt8], sigs: [CBOR]) -> [UInt8] {
        CBOR.array([version, .string(kind), .bytes(body), .array(sigs)]).encoded
    }

    static func invalidCases(_ valid: [(String, Envelope)], keys: [SigningKey]) -> [(String, [UInt8], String)] {
        let c = valid[1].1, author = keys[3], curator = keys[2]
        func signed(_ kind: String, _ body: [UInt8], _ signers: [SigningKey]) -> [CBOR] {
            let message = Array("datanet/v1/".utf8) + Array(kind.utf8) + [0] + body
            return signers.sorted { $0.publicKey.bytes.lexicographicallyPrecedes($1.publicKey.bytes) }
                .map { .array([.bytes($0.publicKey.bytes), .bytes(try! $0.sign(message).bytes)]) }
        }
        var cases = [(String, [UInt8], String)]()
        cases.append(("trailing byte after the envelope", c.encoded + [0], "cbor/trailingBytes"))
        cases.append(("truncated envelope (the last signature is short)", Array(c.encoded.dropLast()), "cbor/lengthTooLarge"))
        cases.append(("version 2", raw(.unsigned(2), kind: "contribution", body: c.body, sigs: signed("contribution", c.body, [author])), "unsupportedVersion"))
        cases.append(("unknown kind", raw(kind: "comment", body: c.body, sigs: []), "unknownKind"))
        // The body's first two fields swapped: canonical CBOR requires sorted keys.
        let fields = try! CBOR.decode(c.body)
        guard case .map(let entries) = fields else { fatalError("golden body is a map") }
        var unsorted: [UInt8] = [0xa0 | UInt8(entries.count)]
        for e in [entries[1], entries[0]] + entries[2...] { unsorted += e.key.encoded + e.value.encoded }
        cases.append(("body map keys out of order", raw(kind: "contribution", body: unsorted, sigs: signed("contribution", unsorted, [author])), "cbor/unsortedMapKeys"))
        var badSig = c.encoded
        badSig[badSig.count - 1] ^= 1
        cases.append(("signature altered", badSig, "badSignature"))
        cases.append(("unsigned contribution", raw(kind: "contribution", body: c.body, sigs: []), "missingSignature"))
        cases.append(("contribution signed by someone else", raw(kind: "contribution", body: c.body, sigs: signed("contribution", c.body, [curator])), "missingSignature"))
        let extra = CBOR.map(entries + [.init(.unsigned(10), .unsigned(1))]).encoded
        cases.append(("unknown body field 10", raw(kind: "contribution", body: extra, sigs: signed("contribution", extra, [author])), "malformed"))
        var pairs = signed("set-sequencer", valid[4].1.body, [keys[2], keys[4]])
        pairs.reverse()
        cases.append(("signatures not sorted by key", raw(kind: "set-sequencer", body: valid[4].1.body, sigs: pairs), "malformed"))
        let float = CBOR.map([.init(.unsigned(0), .unsigned(1))]).encoded.dropLast() + [0xfa, 0x3f, 0x80, 0, 0]
        cases.append(("float in a body", raw(kind: "review", body: Array(float), sigs: []), "cbor/floatNotAllowed"))
        let sigOnBody = signed("contribution", c.body, [author])
        cases.append(("signature made for another kind", raw(kind: "review", body: c.body, sigs: sigOnBody), "malformed"))
        return cases
    }

    @Test func goldensRebuildAndCheck() throws {
        let keys = RecordSamples.fixedKeys()
        let valid = RecordSamples.make(keys: keys)
        let invalid = Self.invalidCases(valid, keys: keys)
        if ProcessInfo.processInfo.environment["DATANET_WRITE_GOLDENS"] != nil {
            let roles = ["owner", "sequencer", "curator", "author", "curator 2"]
            let doc: [String: Any] = [
                "format": "datanet golden records v1 (schema/records.md, schema/records.cddl)",
                "keys": zip(roles, keys).map { ["role": $0, "seed": Hex.encode($1.seed), "public": $1.publicKey.description] },
                "valid": valid.map { ["name": $0.0, "kind": $0.1.kind.rawValue, "id": $0.1.id.hex, "hex": Hex.encode($0.1.encoded),
                                      "body": Self.view(try! CBOR.decode($0.1.body))] as [String: Any] },
                "invalid": invalid.map { ["desc": $0.0, "hex": Hex.encode($0.1), "expect": $0.2] },
            ]
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try data.write(to: Self.goldenURL)
        }
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.goldenURL)) as! [String: Any]
        let goldValid = golden["valid"] as! [[String: Any]]
        // Every kind once, the set-sequencer again in the form that binds a log, the review
        // again with its created-at, a model with a base, a policy naming a builder, and
        // attributions with their credits in a blob and with none.
        #expect(goldValid.count == RecordKind.allCases.count + 6)
        #expect(Set(goldValid.compactMap { $0["kind"] as? String }) == Set(RecordKind.allCases.map(\.rawValue)))
        for (g, (name, e)) in zip(goldValid, valid) {
            #expect(g["name"] as? String == name)
            #expect(g["hex"] as? String == Hex.encode(e.encoded), "\(name) bytes changed")
            #expect(g["id"] as? String == e.id.hex)
            let bytes = Hex.decode(g["hex"] as! String)!
            #expect(Self.check(bytes) == "valid", "\(name)")
            let decoded = try Envelope(encoded: bytes)
            #expect(decoded.encoded == bytes)
            #expect(Self.view(try CBOR.decode(decoded.body)) as? NSDictionary == g["body"] as? NSDictionary, "\(name) JSON view")
        }
        var failures = [String]()
        let goldInvalid = golden["invalid"] as! [[String: Any]]
        #expect(goldInvalid.count == invalid.count)
        for g in goldInvalid {
            let got = Self.check(Hex.decode(g["hex"] as! String)!)
            if got != g["expect"] as! String { failures.append("\(g["desc"]!): got \(got)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(goldInvalid.count) failed: \(failures)")
    }

    /// schema/records.md carries every golden (hex and id); tools/gen/records_md.py rewrites it.
    @Test func recordsDocumentCarriesEveryGolden() throws {
        let doc = try String(contentsOf: Self.goldenURL.deletingLastPathComponent().appendingPathComponent("../records.md").standardized,
                             encoding: .utf8)
        // Hex blocks are wrapped: compare with the line breaks inside them removed.
        let joined = doc.components(separatedBy: "```hex\n").dropFirst()
            .map { $0.components(separatedBy: "```").first!.replacingOccurrences(of: "\n", with: "") }
        let golden = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.goldenURL)) as! [String: Any]
        let all = (golden["valid"] as! [[String: Any]]) + (golden["invalid"] as! [[String: Any]])
        #expect(joined.count == all.count, "run tools/gen/records_md.py")
        for g in all {
            #expect(joined.contains(g["hex"] as! String), "schema/records.md lacks \(g["name"] ?? g["desc"] ?? "?"): run tools/gen/records_md.py")
        }
    }

    @Test func idIgnoresSignaturesAndSignaturesCoverKindAndBody() throws {
        let keys = RecordSamples.fixedKeys()
        var e = RecordSamples.make(keys: keys)[2].1
        let id = e.id
        try e.sign(with: keys[4])
        #expect(e.id == id)
        #expect(e.signatures.count == 2)
        #expect(try e.verifiedSigners().count == 2)
        // Every kind has its own context: the same body under another kind is another record.
        let other = Envelope(kind: .contribution, body: e.body)
        #expect(other.id != id)
        #expect(other.signedMessage != e.signedMessage)
    }

    @Test func everyProperPrefixOfEachGoldenFails() {
        for (name, e) in RecordSamples.make(keys: RecordSamples.fixedKeys()) {
            let bytes = e.encoded
            for n in 0..<bytes.count {
                // A cut item is a CBOR error (truncated or a length past the end), never a decoded envelope.
                #expect("\(name) prefix \(n)", performing: { try Envelope(encoded: Array(bytes.prefix(n))) }, throws: { e in
                    if case .cbor(let c)? = e as? RecordError { [.truncated, .lengthTooLarge].contains(c.code) } else { false }
                })
            }
        }
    }

    /// A key that could sign for anyone (small order: `01 00…00`, with R = identity and S = 0,
    /// satisfies RFC 8032's equation for every message) or is not canonical is refused wherever
    /// a genesis, policy, set-sequencer or continuation record names it, for every role; the
    /// check runs where records enter a store (`checkKeysUsable`), not in the body decoders.
    @Test func governingRecordsRefuseUnusableKeys() throws {
        let k = RecordSamples.fixedKeys()
        let small = try PublicKey(bytes: [1] + [UInt8](repeating: 0, count: 31))
        let nonCanonical = try PublicKey(bytes: [UInt8](repeating: 0xff, count: 31) + [0x7f]) // y ≥ p
        let d = DatanetID(SHA256.hash([1]))
        let good = PolicyState(name: "n", owner: k[0].publicKey, sequencer: k[1].publicKey, curators: [k[2].publicKey], quorum: 1,
                               contributors: [k[3].publicKey], readers: [k[4].publicKey])
        try Record.genesis(try Genesis(body: Genesis(policy: good, createdAt: 1, nonce: [UInt8](repeating: 0, count: 16)).body)).checkKeysUsable()
        for bad in [small, nonCanonical] {
            #expect(!bad.isUsable)
            var variants = [(String, PolicyState)]()
            for role in ["owner", "sequencer", "curator", "contributor", "reader"] {
                var st = good
                switch role {
                case "owner": st.owner = bad
                case "sequencer": st.sequencer = bad
                case "curator": st.curators = [bad, k[2].publicKey].sortedByBytes()
                case "contributor": st.contributors = [bad]
                default: st.readers = [k[4].publicKey, bad].sortedByBytes()
                }
                variants.append((role, st))
            }
            for (role, st) in variants {
                let genesis = try Genesis(body: Genesis(policy: st, createdAt: 1, nonce: [UInt8](repeating: 0, count: 16)).body)
                #expect(throws: RecordError.malformed("genesis names \(role) key \(bad), which is of small order or not canonical")) {
                    try Record.genesis(genesis).checkKeysUsable()
                }
                let change = try PolicyChange(body: PolicyChange(datanet: d, previous: RecordID(SHA256.hash([2])), state: st, summary: "s").body)
                #expect(throws: RecordError.malformed("policy names \(role) key \(bad), which is of small order or not canonical")) {
                    try Record.policy(change).checkKeysUsable()
                }
            }
            #expect(throws: RecordError.malformed("set-sequencer names key \(bad), which is of small order or not canonical")) {
                try Record.setSequencer(SetSequencer(datanet: d, previous: RecordID(SHA256.hash([2])), sequencer: bad, takesOver: nil)).checkKeysUsable()
            }
            #expect(throws: RecordError.malformed("continuation names key \(bad), which is of small order or not canonical")) {
                try Record.continuation(Continuation(datanet: d, size: 1, root: SHA256.hash([3]), sequencer: bad)).checkKeysUsable()
            }
        }
    }

    /// Where such a record enters: a proposal is refused, and the replay of audit and import
    /// flags a log that carries one.
    @Test func unusableKeysAreRefusedWhereRecordsEnter() throws {
        let w = try LedgerTests.World(quorum: 1)
        let small = try PublicKey(bytes: [1] + [UInt8](repeating: 0, count: 31))
        let change = try w.policyChange("add a small-order curator", signedBy: [w.owner]) { $0.curators = ($0.curators + [small]).sortedByBytes() }
        #expect(throws: RecordError.malformed("policy names curator key \(small), which is of small order or not canonical")) {
            try w.ledger.propose(change)
        }
        let leaves = try w.ledger.reader.leaves(w.datanet).map(\.leaf)
        var auditor = LogAuditor(datanet: w.datanet)
        for (i, leaf) in leaves.enumerated() { auditor.add(CheckedLeaf(index: UInt64(i), bytes: leaf.encoded)) }
        let forged = Leaf(datanet: w.datanet, policy: (0, leaves[0].hash), payload: .policy(change))
        auditor.add(CheckedLeaf(index: UInt64(leaves.count), bytes: forged.encoded))
        #expect(auditor.violations.map(\.rule) == ["records name only usable keys"])
    }

    @Test func seededMutationsNeverCrashOrVerify() {
        var rng = SplitMix64(seed: 77)
        let goldens = RecordSamples.make(keys: RecordSamples.fixedKeys()).map { $0.1.encoded }
        var verified = 0
        for i in 0..<20_000 {
            var b = goldens[i % goldens.count]
            let pos = Int(rng.next() % UInt64(b.count))
            b[pos] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
            if Self.check(b) == "valid" { verified += 1 }
        }
        // A flipped bit in the kind, body or a signature must never leave a valid record; only
        // flips inside a signature entry of a multi-signed record could, and those fail too.
        #expect(verified == 0)
    }
}

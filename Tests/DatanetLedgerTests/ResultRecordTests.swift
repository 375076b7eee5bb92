import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Foundation
import Testing

/// Attribution and valuation records (records.md, valuation.md "Records"): credit lists held
/// inline or in a blob, shares summing to exactly 10^9, fixed-point values, strict decoding
/// under mutation, and results kept (never proposed) in the store that made them.
@Suite struct ResultRecordTests {
    static let a = RecordID(SHA256.hash([1])), b = RecordID(SHA256.hash([2]))

    @Test func fixedPointRoundsHalfToEvenAndRefusesWhatDoesNotFit() {
        #expect(ValuationRecord.fixedPoint(0.25) == 250_000_000_000)
        #expect(ValuationRecord.fixedPoint(-0.25) == -250_000_000_000)
        // 2.5e-12 × 10^12 and its neighbours are exact halves in float64.
        #expect(ValuationRecord.fixedPoint(2.5e-12) == 2 && ValuationRecord.fixedPoint(3.5e-12) == 4)
        #expect(ValuationRecord.fixedPoint(0.5e-12) == 0 && ValuationRecord.fixedPoint(-2.5e-12) == -2)
        #expect(ValuationRecord.fixedPoint(1e7) == nil && ValuationRecord.fixedPoint(-1e7) == nil)
        #expect(ValuationRecord.fixedPoint(.nan) == nil && ValuationRecord.fixedPoint(.infinity) == nil)
    }

    @Test func creditListsDecodeStrictly() throws {
        let shares = CreditList([(Self.a, 600_000_000), (Self.b, 400_000_000)])
        #expect(try CreditList(encoded: shares.encoded, shares: true) == shares)
        let values = CreditList([(Self.a, -5), (Self.b, Int64.min), (RecordID(SHA256.hash([3])), Int64.max)])
        #expect(try CreditList(encoded: values.encoded, shares: false) == values)
        #expect(try CreditList(encoded: CreditList([]).encoded, shares: true).entries.isEmpty)
        let refused: [(String, [UInt8], Bool)] = [
            ("shares short of 10^9", CreditList([(Self.a, 600_000_000), (Self.b, 399_999_999)]).encoded, true),
            ("a negative share", CreditList([(Self.a, 1_000_000_001), (Self.b, -1)]).encoded, true),
            ("an id twice", CreditList([(Self.a, 500_000_000), (Self.a, 500_000_000)]).encoded, true),
            ("trailing bytes", shares.encoded + [0], true),
            ("a short id", CBOR.array([.array([.bytes([1, 2]), .unsigned(1)])]).encoded, false),
            ("an integer past Int64", CBOR.array([.array([.bytes(Self.a.bytes), .unsigned(UInt64(Int64.max) + 1)])]).encoded, false),
            ("a non-canonical head", [0x98, 0x00], false),
            ("not a list", CBOR.unsigned(1).encoded, false),
        ]
        for (what, bytes, asShares) in refused {
            #expect(throws: RecordError.self, "\(what)") { try CreditList(encoded: bytes, shares: asShares) }
        }
    }

    /// Exactly one of the inline and blob fields; a blob reference and an inline list both decode
    /// to what was encoded.
    @Test func recordsHoldCreditsInExactlyOnePlace() throws {
        let d = DatanetID(SHA256.hash([9])), key = try SigningKey().publicKey
        func attribution(_ credits: Credits) -> AttributionRecord {
            AttributionRecord(datanet: d, signer: key, method: "knn", parameters: [("k", "3")], input: SHA256.hash([1]), output: SHA256.hash([2]),
                              model: nil, credits: credits, createdAt: 1)
        }
        for credits in [Credits.inline(CreditList([(Self.a, 1_000_000_000)])), .blob(ObjectID(SHA256.hash([4])), count: 20_000)] {
            let r = attribution(credits)
            #expect(try AttributionRecord(body: r.body) == r)
        }
        let good = attribution(.inline(CreditList([(Self.a, 1_000_000_000)])))
        guard case .map(let entries) = try CBOR.decode(good.body) else { Issue.record("not a map"); return }
        let both = CBOR.map(entries + [.init(.unsigned(8), .array([.bytes(Self.b.bytes), .unsigned(1)]))]).encoded
        let neither = CBOR.map(entries.filter { $0.key != .unsigned(7) }).encoded
        #expect(throws: RecordError.malformed("a record holds its credits in exactly one of fields 7 and 8")) { try AttributionRecord(body: both) }
        #expect(throws: RecordError.malformed("a record holds its credits in exactly one of fields 7 and 8")) { try AttributionRecord(body: neither) }
        let short = attribution(.inline(CreditList([(Self.a, 999_999_999)])))
        #expect(throws: RecordError.malformed("shares sum to 999999999 parts per 10^9, not 10^9")) { try AttributionRecord(body: short.body) }
        let v = ValuationRecord(datanet: d, signer: key, model: Self.b, method: "knn-shapley", parameters: [], testSet: SHA256.hash([5]),
                                values: .inline(CreditList([(Self.a, -7)])), createdAt: 2)
        #expect(try ValuationRecord(body: v.body) == v)
    }

    /// Seeded mutations of the golden attribution and valuation envelopes: refused or decoded,
    /// never a trap, and what decodes re-encodes to the same body.
    @Test func mutatedResultRecordsNeverTrap() throws {
        let goldens = RecordSamples.make(keys: RecordSamples.fixedKeys()).map(\.1).filter { $0.kind == .attribution || $0.kind == .valuation }
        #expect(goldens.count == 4)
        var rng = SplitMix64(seed: 0xA771)
        var decoded = 0
        for i in 0..<8_000 {
            var body = goldens[i % goldens.count].body
            rng.mutate(&body, maxEdits: 2)
            do {
                switch goldens[i % goldens.count].kind {
                case .attribution: #expect(try AttributionRecord(body: body).body == body)
                default: #expect(try ValuationRecord(body: body).body == body)
                }
                decoded += 1
            } catch {}
        }
        #expect(decoded > 100)
    }

    /// Results are kept, not proposed; for a Datanet held here, signed by their signer.
    @Test func resultsAreKeptNotProposed() throws {
        let w = try LedgerTests.World(quorum: 1)
        var e = Envelope(kind: .valuation, body: ValuationRecord(
            datanet: w.datanet, signer: w.outsider.publicKey, model: Self.b, method: "knn-shapley", parameters: [], testSet: SHA256.hash([5]),
            values: .inline(CreditList([(Self.a, 12)])), createdAt: 3).body)
        try e.sign(with: w.outsider)
        #expect(throws: LedgerRefusal.notProposable("valuation records are kept where they are made (`keep`), not sequenced")) { try w.ledger.propose(e) }
        try w.ledger.keep(result: e)
        try w.ledger.keep(result: e) // again: nothing changes
        #expect(try w.ledger.reader.record(e.id)?.encoded == e.encoded)
        #expect(try w.ledger.reader.pendingRecords(w.datanet).isEmpty)
        // Signed by another key than the one it names: refused.
        var forged = Envelope(kind: .valuation, body: e.body)
        try forged.sign(with: w.author)
        #expect(throws: (any Error).self) { try w.ledger.keep(result: forged) }
        // A Datanet not held here: refused.
        var elsewhere = Envelope(kind: .attribution, body: AttributionRecord(
            datanet: DatanetID(SHA256.hash([7])), signer: w.outsider.publicKey, method: "knn", parameters: [], input: SHA256.hash([1]),
            output: SHA256.hash([2]), model: nil, credits: .inline(CreditList([])), createdAt: 4).body)
        try elsewhere.sign(with: w.outsider)
        #expect(throws: (any Error).self) { try w.ledger.keep(result: elsewhere) }
        // Other kinds do not go this way.
        #expect(throws: (any Error).self) { try w.ledger.keep(result: try w.contribution("x")) }
    }
}

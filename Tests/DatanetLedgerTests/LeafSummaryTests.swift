import DatanetCBOR
import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Testing

/// The listings' fast readers (`LeafSummary`, `Contribution.scanned`, `Sidecar.scanned`) skip
/// the strict decoders' checks, so they must give exactly the strict decoders' values for
/// every input those accept, and never trap on any input.
@Suite struct LeafSummaryTests {
    /// A summary as comparable text: every field a listing may read.
    static func fields(_ s: LeafSummary) -> String {
        switch s {
        case .intake(let a, let r, let c): "intake \(a) \(r) \(c)"
        case .decision(let d): "decision \(d.contribution) \(d.intake) \(d.accepted) \(d.reason) \(d.reviews)"
        case .other(let leaf): "other \(leaf.encoded)"
        }
    }

    /// Every leaf of a log using every kind reads the same both ways, and intakes and
    /// decisions (nearly every leaf of a real log) take the fast path.
    @Test func storedLeavesReadAsTheStrictDecoderReadsThem() throws {
        var fast = Set<LeafKind>()
        for bytes in try EveryKindLog().leafBytes() {
            let strict = try LeafSummary(try Leaf(encoded: bytes))
            let read = try bytes.withUnsafeBytes { try LeafSummary(encoded: $0) }
            #expect(Self.fields(read) == Self.fields(strict))
            #expect(bytes.withUnsafeBytes(LeafSummary.kind) == strict.kind, "the kind a filter peeks")
            if let scanned = bytes.withUnsafeBytes(LeafSummary.scanned) {
                #expect(Self.fields(scanned) == Self.fields(strict))
                fast.insert(scanned.kind)
            }
            let verdict = bytes.withUnsafeBytes(LeafSummary.reviewVerdict)
            let strictVerdict = try (try Leaf(encoded: bytes)).review.map { Self.verdict(try Self.review($0)) }
            #expect(verdict.map(Self.verdict) == strictVerdict)
            if verdict != nil { fast.insert(.review) }
        }
        #expect(fast == [.intake, .decision, .review])
    }

    /// A review's verdict as comparable text, and the review a record is.
    static func verdict(_ v: (reviewer: PublicKey, accept: Bool, reason: String)) -> String { "\(v.reviewer) \(v.accept) \(v.reason)" }
    static func verdict(_ r: Review) -> String { verdict((r.reviewer, r.accept, r.reason)) }
    static func review(_ e: Envelope) throws -> Review {
        guard case .review(let r) = try Record(e) else { throw RecordError.malformed("not a review") }
        return r
    }

    /// Mutated leaves: each is read without a trap, and wherever the strict decoder accepts
    /// one, the summary agrees with it.
    @Test func mutatedLeavesNeverDisagreeWithTheStrictDecoder() throws {
        var rng = SplitMix64(seed: 0x1eaf)
        var accepted = 0
        for original in try EveryKindLog().leafBytes() {
            for _ in 0..<400 {
                var bytes = original
                rng.mutate(&bytes)
                let read = bytes.withUnsafeBytes { try? LeafSummary(encoded: $0) }
                guard let leaf = try? Leaf(encoded: bytes), let strict = try? LeafSummary(leaf) else { continue }
                accepted += 1
                #expect(read.map(Self.fields) == Self.fields(strict), "mutated leaf \(Hex.encode(bytes))")
                #expect(bytes.withUnsafeBytes(LeafSummary.kind).map { $0 == leaf.kind } ?? true)
                if let fast = bytes.withUnsafeBytes(LeafSummary.reviewVerdict), let e = leaf.review, let r = try? Self.review(e) {
                    #expect(Self.verdict(fast) == Self.verdict(r), "mutated review leaf \(Hex.encode(bytes))")
                }
            }
        }
        #expect(accepted > 0)
    }

    /// A contribution body: the fast reader agrees with `init(body:)` on the real body and on
    /// every mutation that decoder accepts, and refuses any other layout.
    @Test func contributionBodiesReadAsTheStrictDecoderReadsThem() throws {
        let bodies = try EveryKindLog().contributions.map(\.body)
        var rng = SplitMix64(seed: 0xc0b)
        for original in bodies {
            #expect(original.withUnsafeBytes(Contribution.scanned) == (try Contribution(body: original)))
            for _ in 0..<2000 {
                var body = original
                rng.mutate(&body)
                let fast = body.withUnsafeBytes(Contribution.scanned)
                if let strict = try? Contribution(body: body) { #expect(fast == strict) }
            }
        }
        // Fields out of order or one missing: another layout, left to the strict decoder.
        guard case .map(var entries) = try CBOR.decode(try #require(bodies.first)) else { Issue.record("body is not a map"); return }
        entries.append(.init(.unsigned(9), .unsigned(0)))
        #expect(CBOR.map(entries).encoded.withUnsafeBytes(Contribution.scanned) == nil)
        entries.removeLast(2)
        #expect(CBOR.map(entries).encoded.withUnsafeBytes(Contribution.scanned) == nil)
    }

    /// Sidecars, with and without metadata and non-ASCII names, read the same both ways.
    @Test func sidecarsReadAsTheStrictDecoderReadsThem() throws {
        let samples = [Sidecar(label: "", fileName: "a.txt", metadata: [:]),
                       Sidecar(label: "Überschrift ✓", fileName: "dir/naïve.csv", metadata: ["k": "v", "source": "field notes"])]
        var rng = SplitMix64(seed: 0x51de)
        for s in samples {
            #expect(s.encoded.withUnsafeBytes(Sidecar.scanned) == s)
            for _ in 0..<2000 {
                var bytes = s.encoded
                rng.mutate(&bytes)
                let fast = bytes.withUnsafeBytes(Sidecar.scanned)
                if let strict = try? Sidecar(encoded: bytes) { #expect(fast == strict) }
            }
        }
    }
}

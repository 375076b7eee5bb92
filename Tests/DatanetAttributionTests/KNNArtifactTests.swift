import DatanetCrypto
@testable import DatanetAttribution
import DatanetRecords
import DatanetTestSupport
import Testing

/// The kNN artifact (schema/model.md): the same training set and configuration give the same
/// bytes; it decodes to a model that answers as the one trained; any other bytes are refused
/// or decode to exactly themselves (the decoder is strict and canonical), never a trap.
@Suite struct KNNArtifactTests {
    static func trainingSet() throws -> TrainingSet {
        let a = try SigningKey().publicKey, b = try SigningKey().publicKey
        let inputs = [
            TrainingInput(id: RecordID(SHA256.hash([1])), author: a, license: "CC0-1.0", files: [
                ("films.jsonl", Array("{\"text\": \"a fine and moving film\", \"label\": \"pos\"}\n{\"text\": \"dull and long\", \"label\": \"neg\"}\n".utf8)),
                ("scores.csv", Array("len,label,year\n90,pos,1999\n120.5,neg,2004\n".utf8)),
            ]),
            TrainingInput(id: RecordID(SHA256.hash([2])), author: b, license: "CC0-1.0", files: [
                ("more.jsonl", Array("{\"text\": \"moving and fine\", \"label\": \"pos\"}\n{\"text\": \"long, so dull\", \"label\": 0}\n".utf8)),
                ("more.csv", Array("len,label,year\n95,pos,2001\n-3e2,neg,1950\n".utf8)),
            ]),
        ]
        return TrainingSet(inputs)
    }

    @Test func trainingTwiceGivesTheSameBytesAndTheDecodedModelAnswersAlike() throws {
        let set = try Self.trainingSet()
        for (kind, scale) in [(KNNArtifact.Kind.text, KNNModel.Scale.none), (.numeric, .standard), (.numeric, .none)] {
            let one = KNNArtifact(set, kind: kind, k: 3, scale: scale), two = KNNArtifact(set, kind: kind, k: 3, scale: scale)
            #expect(one.encoded == two.encoded)
            let back = try KNNArtifact(encoded: one.encoded)
            #expect(back.encoded == one.encoded && back.examples.count == (kind == .text ? 4 : 4))
            let query: KNNModel.Query = kind == .text ? .text("fine film") : .numeric([100, 2000])
            let (l1, n1) = try one.model.predict(query), (l2, n2) = try back.model.predict(query)
            #expect(l1 == l2 && n1.map(\.index) == n2.map(\.index) && n1.map(\.distance) == n2.map(\.distance))
            #expect(back.contributions.map(\.id) == set.contributions.map(\.id))
        }
        #expect(KNNArtifact(set, kind: .numeric, k: 3, scale: .standard).encoded != KNNArtifact(set, kind: .numeric, k: 3, scale: .none).encoded)
        #expect(KNNArtifact(set, kind: .text, k: 3, scale: .none).encoded != KNNArtifact(set, kind: .text, k: 5, scale: .none).encoded)
    }

    @Test func mutatedArtifactsAreRefusedOrCanonical() throws {
        let set = try Self.trainingSet()
        var rng = SplitMix64(seed: 0xa471)
        var refused = 0
        for kind in [KNNArtifact.Kind.text, .numeric] {
            let good = KNNArtifact(set, kind: kind, k: 2, scale: .standard).encoded
            for round in 0..<3_000 {
                var b = good
                switch round % 4 {
                case 0: b = Array(b.prefix(rng.below(b.count)))
                case 1: b[rng.below(b.count)] ^= UInt8(1 + rng.below(255))
                case 2: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: rng.below(b.count + 1))
                default: for _ in 0..<3 { b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                }
                do {
                    let a = try KNNArtifact(encoded: b)
                    #expect(a.encoded == b, "a mutation decoded to other bytes")
                    _ = a.model
                } catch {
                    refused += 1
                }
            }
        }
        #expect(refused > 3_000, "most mutations are refused (a changed byte inside a label or value may still decode, to itself)")
        #expect(throws: ArtifactError.self) { try KNNArtifact(encoded: []) }
    }
}

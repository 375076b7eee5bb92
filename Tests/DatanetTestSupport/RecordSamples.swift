import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords

/// Records of every kind, built from fixed keys (the RFC 8032 §7.1 test seeds) and fixed
/// values, so the golden envelopes in schema/vectors/records.json can be rebuilt byte for
/// byte; and the same shapes with fresh random keys for the CDDL interop check.
public enum RecordSamples {
    /// The keys: owner (RFC 8032 TEST 1), sequencer (TEST 2), curator (TEST 3), and an author
    /// and second curator from fixed seeds.
    public static func fixedKeys() -> [SigningKey] {
        let seeds = [
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            String(repeating: "01", count: 32), String(repeating: "02", count: 32),
        ]
        return seeds.map { try! SigningKey(seed: Hex.decode($0)!) }
    }

    /// One signed envelope of each kind, named, from the given keys (owner, sequencer,
    /// curator, author, curator 2).
    public static func make(keys k: [SigningKey], nonce: [UInt8] = [UInt8](repeating: 7, count: 16)) -> [(String, Envelope)] {
        let (owner, sequencer, curator, author, curator2) = (k[0], k[1], k[2], k[3], k[4])
        let state = PolicyState(name: "birdsong", owner: owner.publicKey, sequencer: sequencer.publicKey,
                                curators: [curator.publicKey, curator2.publicKey], quorum: 2,
                                contributors: nil, readers: nil, maxPendingProposals: 50, maxPendingBytes: 1 << 32)
        var out = [(String, Envelope)]()
        func add(_ name: String, _ kind: RecordKind, _ body: [UInt8], _ signers: [SigningKey]) -> Envelope {
            var e = Envelope(kind: kind, body: body)
            for s in signers { try! e.sign(with: s) }
            out.append((name, e))
            return e
        }
        let genesis = add("genesis", .genesis, Genesis(policy: state, createdAt: 1_790_000_000_000, nonce: nonce).body, [owner])
        let datanet = DatanetID(genesis: genesis.id)
        let contribution = add("contribution", .contribution, Contribution(
            datanet: datanet, author: author.publicKey, content: ObjectID(SHA256.hash(Array("recording-1.flac".utf8))),
            contentKind: .blob, size: 4_194_304, mediaType: "audio/flac", license: "CC-BY-4.0",
            sidecar: SHA256.hash(Array("sidecar".utf8)), createdAt: 1_790_000_100_000).body, [author])
        _ = add("review", .review, Review(datanet: datanet, reviewer: curator.publicKey, contributions: [contribution.id],
                                          accept: true, reason: "clean recording").body, [curator])
        _ = add("review with created-at", .review, Review(datanet: datanet, reviewer: curator.publicKey, contributions: [contribution.id],
                                                          accept: false, reason: "on second listen: clipped", createdAt: 1_790_000_200_000).body, [curator])
        var next = state
        next.curators = [curator.publicKey]
        next.quorum = 1
        _ = add("policy", .policy, PolicyChange(datanet: datanet, previous: genesis.id, state: next,
                                                summary: "remove curator \(curator2.publicKey)").body, [owner])
        _ = add("set-sequencer", .setSequencer, SetSequencer(datanet: datanet, previous: genesis.id,
                                                             sequencer: curator2.publicKey, takesOver: nil).body, [curator, curator2])
        _ = add("continuation", .continuation, Continuation(datanet: datanet, size: 42, root: SHA256.hash([42]),
                                                            sequencer: author.publicKey).body, [owner])
        _ = add("tombstone", .tombstone, Tombstone(datanet: datanet, contribution: contribution.id, takedown: false,
                                                   reason: "withdrawn by its author").body, [author])
        // A handoff as this build writes it: binding the log it takes over (size and root).
        _ = add("set-sequencer binding a log", .setSequencer, SetSequencer(datanet: datanet, previous: genesis.id, sequencer: curator2.publicKey,
                                                                           takesOver: (7, SHA256.hash([7]))).body, [owner])
        let training = ModelRecord.TrainingCounts(contributions: 12, examples: 480, bytes: 96_000, licenses: ["CC0-1.0", "CC-BY-4.0"], tombstonesBefore: 31)
        let model = add("model", .model, ModelRecord(
            datanet: datanet, builder: owner.publicKey, name: "birdsong-calls", checkpointSize: 30, checkpointRoot: SHA256.hash([30]),
            trainer: "datanet-knn", trainerVersion: "1", configuration: [("kind", "knn"), ("features", "text"), ("k", "5"), ("scale", "none")],
            artifact: ObjectID(SHA256.hash(Array("artifact".utf8))), artifactSize: 123_456, training: training, createdAt: 1_790_000_300_000).body, [owner])
        // A builder's import of a variant trained elsewhere, naming the model it derives from.
        _ = add("model with a base", .model, ModelRecord(
            datanet: datanet, builder: author.publicKey, name: "birdsong-llm", checkpointSize: 30, checkpointRoot: SHA256.hash([30]),
            trainer: "imported", trainerVersion: "unknown", configuration: [], artifact: ObjectID(SHA256.hash(Array("weights".utf8))),
            artifactSize: 7 << 30, training: training, createdAt: 1_790_000_400_000, base: model.id).body, [author])
        var withBuilder = state
        withBuilder.builders = [author.publicKey]
        _ = add("policy adding a builder", .policy, PolicyChange(datanet: datanet, previous: genesis.id, state: withBuilder,
                                                                 summary: "add-builder \(author.publicKey)").body, [owner])
        let second = RecordID(SHA256.hash(Array("contribution-2".utf8)))
        _ = add("attribution", .attribution, AttributionRecord(
            datanet: datanet, signer: curator.publicKey, method: "knn", parameters: [("k", "5"), ("features", "text")],
            input: SHA256.hash(Array("a deep hoot".utf8)), output: SHA256.hash(Array("owl".utf8)), model: model.id,
            credits: .inline(CreditList([(contribution.id, 666_666_667), (second, 333_333_333)])), createdAt: 1_790_000_500_000).body, [curator])
        // A long list kept as a blob the record names; and no credit at all (an empty list).
        _ = add("attribution with its credits in a blob", .attribution, AttributionRecord(
            datanet: datanet, signer: author.publicKey, method: "spans", parameters: [("min_span", "20")],
            input: SHA256.hash(Array("text".utf8)), output: SHA256.hash(Array("text".utf8)), model: nil,
            credits: .blob(ObjectID(SHA256.hash(Array("credits".utf8))), count: 25_000), createdAt: 1_790_000_600_000).body, [author])
        _ = add("attribution crediting nothing", .attribution, AttributionRecord(
            datanet: datanet, signer: author.publicKey, method: "knn", parameters: [], input: SHA256.hash([1]), output: SHA256.hash([2]),
            model: model.id, credits: .inline(CreditList([])), createdAt: 1_790_000_700_000).body, [author])
        _ = add("valuation", .valuation, ValuationRecord(
            datanet: datanet, signer: owner.publicKey, model: model.id, method: "knn-shapley", parameters: [("k", "5"), ("test_examples", "200")],
            testSet: SHA256.hash(Array("test.jsonl".utf8)), values: .inline(CreditList([(contribution.id, 412_500_000_000), (second, -37_500_000_000)])),
            createdAt: 1_790_000_800_000).body, [owner])
        return out
    }
}

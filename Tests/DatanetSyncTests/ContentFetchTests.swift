import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
@testable import DatanetSync
import DatanetTestSupport
import Foundation
import Testing

/// On-demand content over loopback TCP (schema/protocol.md `fetch`, `objects`): windows of
/// requests naming objects across contributions, resumption, refusals, objects shared between
/// contributions, a model's artifact, and servers that lie. The nodes and helpers are
/// SyncSessionTests'.
extension SyncSessionTests {
    /// After a records-only pull, content comes on demand: a large file in windows of
    /// requests, each object hashed; a cut fetch resumes with only what is still missing; a
    /// non-reader is told nothing of a private Datanet's content, and objects outside the
    /// contribution asked about are refused.
    @Test func contentComesOnDemandAfterARecordsOnlyPull() throws {
        let server = try Node(), client = try Node(), outsider = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let secret = try Self.datanet(on: server, owner: owner, readers: [client.identity.publicKey], name: "secret")
        var rng = SplitMix64(seed: 77)
        let big = rng.bytes(12 << 20)
        let bigFile = server.dir + "-big.bin"
        #expect(FileManager.default.createFile(atPath: bigFile, contents: Data(big)))
        defer { unlink(bigFile) }
        let blob = try Ingest(store: server.ledger.store).add(paths: [bigFile])[0].id
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: d, author: owner.publicKey, content: blob, contentKind: .blob, size: UInt64(big.count),
            mediaType: "application/octet-stream", license: "CC0-1.0", sidecar: try server.ledger.storeSidecar(Sidecar(label: "big", fileName: "big.bin", metadata: [:])),
            createdAt: 3).body)
        try e.sign(with: owner)
        let bigID = try server.ledger.propose(e)
        let small = try server.contribute(d, "a small one", by: owner)
        let hidden = try server.contribute(secret, "hidden", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try server.ledger.sequence(secret, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(server, listener, sessions: 3)

        let c = try Self.connect(client, listener)
        _ = try c.pull(d, since: 0, recordsOnly: true, into: client.ledger)
        let bigC = try #require(try client.ledger.reader.contribution(bigID, in: d))
        #expect(try !client.ledger.reader.holdsContent(bigC))
        // Half the chunks arrive, then the fetch is cut (here: they are stored by hand).
        let manifest = try #require(try server.ledger.store.blob(blob))
        let half = try manifest.chunks.prefix(manifest.chunks.count / 2).map { (ObjectKind.chunk, $0.id, try #require(try server.ledger.store.chunk($0.id))) }
        try client.ledger.store.keep(half)
        var reports = 0
        let got = try c.fetch(d, contribution: bigID, kind: .blob, root: blob, into: client.ledger, window: 2) { _ in reports += 1 }
        #expect(got.objects == manifest.chunks.count - half.count + 1, "only what was still missing: \(got.objects)")
        #expect(reports >= 2)
        #expect(try client.ledger.reader.holdsContent(bigC))
        #expect(try client.ledger.store.blobBytes(blob, limit: 1 << 30) == big)
        // Nothing left to fetch: no object moves.
        #expect(try c.fetch(d, contribution: bigID, kind: .blob, root: blob, into: client.ledger).objects == 0)
        // An object of another contribution, asked for under this one, is refused.
        let smallC = try #require(try client.ledger.reader.contribution(small, in: d))
        #expect(throws: SyncError.self) {
            try c.fetch(d, contribution: bigID, kind: .blob, root: smallC.content, into: client.ledger)
        }
        #expect(try !client.ledger.reader.holdsContent(smallC))
        _ = try c.fetch(d, contribution: small, kind: .blob, root: smallC.content, into: client.ledger)
        #expect(try client.ledger.reader.holdsContent(smallC))
        try c.bye()

        // A non-reader asking for the private Datanet's content hears what it hears for any
        // Datanet not served to it.
        let o = try Self.connect(outsider, listener)
        let hiddenContent = try #require(try server.ledger.reader.contribution(hidden, in: secret)).content
        #expect(performing: { try o.fetch(secret, contribution: hidden, kind: .blob, root: hiddenContent, into: outsider.ledger) }, throws: { error in
            "\(error)".contains("unknown-datanet")
        })
        #expect(performing: { try o.fetch(d, contribution: hidden, kind: .blob, root: hiddenContent, into: outsider.ledger) }, throws: { error in
            "\(error)".contains("unknown-contribution")
        })
        try o.bye()

        // The answer's byte bound defers what does not fit (neither sent nor refused).
        let refs = manifest.chunks.prefix(8).map { SyncMessage.ObjectRef(.chunk, $0.id) }
        let reach = try #require(try server.ledger.reader.servableContent(d, contribution: bigID))
        let firstTwo = try refs.prefix(2).map { try #require(try server.ledger.store.chunk($0.id)).count }.reduce(0, +)
        let wanted = refs.map { ($0, allowed: reach.contains($0.id)) }
        let (sent, refused) = try server.ledger.store.env.read { txn in
            let (sent, refused) = try ContentReach.select(server.ledger, wanted, in: txn, limit: firstTwo)
            return (sent.count, refused.count)
        }
        #expect(sent == 2 && refused == 0, "\(sent) sent")
        let one = try server.ledger.store.env.read { txn in try ContentReach.select(server.ledger, wanted, in: txn, limit: 1).sent.count }
        #expect(one == 1, "at least one object goes, whatever the bound")
        let third = try Self.connect(try Node(), listener)
        try third.bye()
        #expect(try served.wait() == ["bye", "bye", "bye"])
    }

    /// A model leaf replicates like any leaf (a peer that replays only kinds 1–7 is told, not
    /// sent it); its artifact comes on demand by `fetch` naming the model record, only under
    /// its Datanet, and the model then verifies on the peer.
    @Test func aModelReplicatesAndItsArtifactComesOnDemand() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        _ = try server.contribute(d, "a song", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        var rng = SplitMix64(seed: 8)
        let weights = rng.bytes(3 << 20)
        let file = server.dir + "-weights.bin"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(weights)))
        defer { unlink(file) }
        let artifact = try Ingest(store: server.ledger.store).add(paths: [file])[0]
        let st = try server.ledger.reader.state(of: d)
        let root = try Checkpoint.unverified(note: try #require(try server.ledger.reader.latestCheckpoint(d))).root
        let model = try server.ledger.registerModel(ModelRecord(
            datanet: d, builder: owner.publicKey, name: "weights", checkpointSize: st.size, checkpointRoot: root, trainer: "imported",
            trainerVersion: "1", configuration: [], artifact: artifact.id, artifactSize: artifact.size,
            training: .init(contributions: 1, examples: 1, bytes: 6, licenses: ["CC0-1.0"], tombstonesBefore: st.size), createdAt: 9), by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        let modelLeaf = try #require(try server.ledger.reader.firstLeaf(d, kind: .model))
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(server, listener, sessions: 2)
        // A build that replays kinds 1–7 only is told which leaf it cannot take.
        let old = try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator, identity: client.identity, now: Self.now)
        try old.send(SyncMessage(1, .hello(versions: SyncMessage.versions, kinds: [1, 2, 3, 4, 5, 6, 7])).encoded)
        _ = try old.receive()
        try old.send(SyncMessage(2, .pull(d, since: 0, recordsOnly: true, held: [], wanted: [], allPending: false)).encoded)
        guard case .error("kinds", let why) = try SyncMessage(decoding: try old.receive()).body else { Issue.record("a model leaf was sent"); return }
        #expect(why.contains("leaf \(modelLeaf)") && why.contains("model"), "\(why)")
        old.socket.shutdownWrite()
        // This build: the leaf comes with a records-only pull; the artifact does not.
        let c = try Self.connect(client, listener)
        _ = try c.pull(d, since: 0, recordsOnly: true, into: client.ledger)
        let held = try #require(try client.ledger.reader.model(model.id))
        let heldBefore = try client.ledger.reader.holdsObject(artifact.id, kind: .blob)
        #expect(held.leaf == modelLeaf && !heldBefore)
        // Asked under another Datanet, refused as unknown; under its own, it comes whole.
        let other = try Self.datanet(on: client, owner: owner, name: "other")
        #expect(throws: (any Error).self) { try c.fetch(other, contribution: model.id, kind: .blob, root: artifact.id, into: client.ledger) }
        let got = try c.fetch(d, contribution: model.id, kind: .blob, root: artifact.id, into: client.ledger)
        let bytes = try client.ledger.store.blobBytes(artifact.id, limit: 1 << 30)
        #expect(got.objects > 1 && bytes == weights)
        #expect(try client.ledger.verifyModel(held).checks.allSatisfy(\.holds))
        #expect(try client.ledger.audit(d).holds)
        try c.bye()
        _ = try served.wait()
    }

    /// Many contributions' content in one fetch, requests in flight across them; one the peer
    /// does not serve in that Datanet is named as failed while all the others arrive.
    @Test func manyContributionsFetchTogether() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let other = try Self.datanet(on: server, owner: owner, name: "other")
        let ids = try (0..<30).map { try server.contribute(d, "piece \($0)", by: owner) }
        let elsewhere = try server.contribute(other, "elsewhere", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try server.ledger.sequence(other, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1)
        let c = try Self.connect(client, listener)
        _ = try c.pull(d, since: 0, recordsOnly: true, into: client.ledger)
        var items = try ids.map { id in
            let k = try #require(try client.ledger.reader.contribution(id, in: d))
            return FetchItem(contribution: id, kind: .blob, root: k.content)
        }
        let stray = try #require(try server.ledger.reader.contribution(elsewhere, in: other))
        items.insert(FetchItem(contribution: elsewhere, kind: .blob, root: stray.content), at: 10)
        let got = try c.fetch(d, items, into: client.ledger, window: 8)
        // Asked about among others, a contribution not served here has its objects refused.
        #expect(Set(got.failed.keys) == [elsewhere] && "\(got.failed[elsewhere]!)".contains("does not serve"))
        #expect(got.objects == 60, "a blob and a chunk each: \(got.objects)")
        for id in ids { #expect(try client.ledger.reader.holdsContent(try #require(try client.ledger.reader.contribution(id, in: d)))) }
        try c.bye()
        #expect(try served.wait() == ["bye"])
    }

    /// Two contributions whose content shares chunks, the first asked for not served: the
    /// shared chunks, asked for under it and refused, come under the second (before, the
    /// second stayed incomplete without being named as failed).
    @Test func objectsSharedWithAFailedContributionStillCome() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let other = try Self.datanet(on: server, owner: owner, name: "other")
        var rng = SplitMix64(seed: 0x5a4e)
        let shared = (0..<60_000).map { _ in "w\(rng.next() % 5_000)" }.joined(separator: " ")
        let mine = try server.contribute(d, shared + " mine", by: owner, label: "mine")
        let elsewhere = try server.contribute(other, shared + " elsewhere", by: owner, label: "elsewhere")
        _ = try server.ledger.sequence(d, key: owner)
        _ = try server.ledger.sequence(other, key: owner)
        let mineContent = try #require(try server.ledger.reader.contribution(mine, in: d)).content
        let strayContent = try #require(try server.ledger.reader.contribution(elsewhere, in: other)).content
        let a = try #require(try server.ledger.store.blob(mineContent)), b = try #require(try server.ledger.store.blob(strayContent))
        try #require(!Set(a.chunks.map(\.id)).isDisjoint(with: b.chunks.map(\.id)), "the two contents share chunks")
        // The client already holds the first one's manifest (an earlier fetch cut short), so
        // its chunks, the shared ones among them, are asked for under it from the start.
        let manifest = try #require(try server.ledger.store.env.read { try server.ledger.store.objectBytes(.blob, strayContent, in: $0) })
        try client.ledger.store.keep([(.blob, strayContent, manifest)])
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1)
        let c = try Self.connect(client, listener)
        _ = try c.pull(d, since: 0, recordsOnly: true, into: client.ledger)
        let got = try c.fetch(d, [FetchItem(contribution: elsewhere, kind: .blob, root: strayContent),
                                  FetchItem(contribution: mine, kind: .blob, root: mineContent)], into: client.ledger)
        #expect(Set(got.failed.keys) == [elsewhere])
        #expect(try client.ledger.reader.holdsContent(try #require(try client.ledger.reader.contribution(mine, in: d))))
        try c.bye()
        #expect(try served.wait() == ["bye"])
    }

    /// Many small contributions fetch in few requests, each naming up to 256 objects across
    /// contributions: 60 of them (a blob and a chunk each) fit one request, so a server that
    /// allows 10 requests at once and 5 a second serves them all (one request per contribution
    /// went past that limit and was cut off). The wire form of such a fetch round-trips.
    @Test func smallContributionsFetchInFewRequests() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let ids = try (0..<60).map { try server.contribute(d, "small piece \($0)", by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1, rate: (perSecond: 5, burst: 10))
        let c = try Self.connect(client, listener)
        _ = try c.pull(d, since: 0, recordsOnly: true, into: client.ledger)
        let items = try ids.map { id in
            FetchItem(contribution: id, kind: .blob, root: try #require(try client.ledger.reader.contribution(id, in: d)).content)
        }
        let got = try c.fetch(d, items, into: client.ledger)
        #expect(got.failed.isEmpty && got.objects == 120, "\(got.objects) objects, \(got.failed.count) failed")
        for id in ids { #expect(try client.ledger.reader.holdsContent(try #require(try client.ledger.reader.contribution(id, in: d)))) }
        try c.bye()
        #expect(try served.wait() == ["bye"])
    }

    /// A fetch of several contributions: bounds on its objects in all, and on naming an object
    /// or a contribution twice.
    @Test func aFetchOfSeveralContributionsIsBounded() throws {
        let d = DatanetID(SHA256.hash([1]))
        func refs(_ n: Int, from: Int) -> [SyncMessage.ObjectRef] { (from..<from + n).map { .init(.chunk, ObjectID(SHA256.hash(Array("\($0)".utf8)))) } }
        func part(_ c: UInt8, _ r: [SyncMessage.ObjectRef]) -> SyncMessage.FetchPart { .init(RecordID(SHA256.hash([c])), r) }
        let fine = SyncMessage(3, .fetch(d, parts: [part(1, refs(200, from: 0)), part(2, refs(56, from: 200))]))
        #expect(try SyncMessage(decoding: fine.encoded) == fine)
        let cases: [(SyncMessage, String)] = [
            (SyncMessage(3, .fetch(d, parts: [part(1, refs(200, from: 0)), part(2, refs(57, from: 200))])), "objects in all"),
            (SyncMessage(3, .fetch(d, parts: [part(1, refs(2, from: 0)), part(2, refs(2, from: 1))])), "object twice"),
            (SyncMessage(3, .fetch(d, parts: [part(1, refs(2, from: 0)), part(1, refs(2, from: 5))])), "contribution twice"),
            (SyncMessage(3, .fetch(d, parts: [part(1, refs(2, from: 0)), part(2, [])])), "each naming 1 to 256 objects"),
            (SyncMessage(3, .fetch(d, parts: [part(1, []), part(2, refs(2, from: 0))])), "names no object"),
        ]
        for (m, why) in cases {
            #expect(performing: { try SyncMessage(decoding: m.encoded) }, throws: { "\($0)".contains(why) })
        }
    }

    /// A lying server: it answers a fetch with an object nobody asked for (bytes under no
    /// requested id), then with a chunk whose bytes were altered, then with nothing at all (no
    /// object, no refusal: asked again, forever). The client refuses each and stores nothing.
    @Test func aServerThatSendsObjectsNotAskedForIsRefused() throws {
        let client = try Node(), liar = try SigningKey()
        let listener = try TCPListener(port: 0)
        var rng = SplitMix64(seed: 0x11a2)
        let real = rng.bytes(40_000), planted = rng.bytes(30_000)
        let realID = ObjectID(SHA256.hash(real))
        var altered = real
        altered[7] ^= 0x20
        let served = Parallel.start { () throws -> Int in
            var answered = 0
            for reply in [[planted], [altered], []] {
                let c = try PeerConnection.open(try listener.accept(timeout: 10), role: .responder, identity: liar, now: Self.now)
                let hello = try SyncMessage(decoding: try c.receive())
                try c.send(SyncMessage(hello.request, .hello(versions: SyncMessage.versions, kinds: LeafKind.allCases.map(\.rawValue))).encoded)
                let fetch = try SyncMessage(decoding: try c.receive())
                try c.send(SyncMessage(fetch.request, .objects(sent: reply.map { .init(.chunk, $0) }, refused: [])).encoded)
                answered += 1
                _ = try? c.receive()
            }
            return answered
        }
        let d = DatanetID(SHA256.hash([9])), r = RecordID(SHA256.hash([10]))
        for why in ["not asked for", "not asked for", "no object and no refusal"] {
            let c = try Self.connect(client, listener)
            #expect(performing: { try c.fetch(d, contribution: r, kind: .chunk, root: realID, into: client.ledger) }, throws: {
                "\($0)".contains(why)
            })
            c.connection.socket.shutdownWrite()
        }
        #expect(try served.wait() == 3)
        #expect(try client.ledger.store.chunk(realID) == nil && client.ledger.store.chunk(ObjectID(SHA256.hash(planted))) == nil)
        #expect(try client.ledger.store.chunk(ObjectID(SHA256.hash(altered))) == nil)
    }

    /// A server that answers the first of two requests in flight, then hangs up: the chunks of
    /// the answer that arrived whole are checked and kept (a fetch resumes after them), those
    /// of the unanswered request are not there, and the fetch ends with the connection's error.
    @Test func whatArrivedWholeBeforeACutIsKept() throws {
        let client = try Node(), server = try SigningKey()
        let listener = try TCPListener(port: 0)
        var rng = SplitMix64(seed: 0xc07)
        // One chunk a contribution: 300 of them are two requests (256 objects, then 44).
        let chunks = (0..<300).map { _ in rng.bytes(200) }
        let byID = Dictionary(uniqueKeysWithValues: chunks.map { (ObjectID(SHA256.hash($0)), $0) })
        let items = chunks.enumerated().map { i, b in
            FetchItem(contribution: RecordID(SHA256.hash(Array("c\(i)".utf8))), kind: .chunk, root: ObjectID(SHA256.hash(b)))
        }
        let served = Parallel.start { () throws -> [ObjectID] in
            let c = try PeerConnection.open(try listener.accept(timeout: 10), role: .responder, identity: server, now: Self.now)
            let hello = try SyncMessage(decoding: try c.receive())
            try c.send(SyncMessage(hello.request, .hello(versions: SyncMessage.versions, kinds: LeafKind.allCases.map(\.rawValue))).encoded)
            let first = try SyncMessage(decoding: try c.receive()), second = try SyncMessage(decoding: try c.receive())
            guard case .fetch(_, let parts) = first.body, case .fetch = second.body else { return [] }
            let asked = parts.flatMap(\.wanted).map(\.id)
            try c.send(SyncMessage(first.request, .objects(sent: asked.map { .init(.chunk, byID[$0]!) }, refused: [])).encoded)
            c.socket.shutdownWrite()
            return asked
        }
        let c = try Self.connect(client, listener)
        #expect(throws: (any Error).self) { try c.fetch(DatanetID(SHA256.hash([1])), items, into: client.ledger) }
        let answered = try served.wait()
        #expect(answered.count == SyncMessage.maximumFetch)
        let kept = try items.filter { try client.ledger.store.chunk($0.root) != nil }.map(\.root)
        let keptAreAnswered = Set(kept) == Set(answered)
        #expect(keptAreAnswered, "\(kept.count) kept of \(answered.count) answered")
    }
}

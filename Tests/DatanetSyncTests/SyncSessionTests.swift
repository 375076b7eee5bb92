import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
@testable import DatanetSync
import DatanetTestSupport
import Foundation
import Synchronization
import Testing

/// Peers replicating over loopback TCP with `SyncServer` and `SyncClient`: a clone and a delta
/// converge to the same log-derived tables, proposals made offline reach the sequencer, a
/// private Datanet stays invisible to non-readers, and a hostile peer is refused without
/// changing the store or stopping the server.
@Suite struct SyncSessionTests {
    /// A store in a temporary directory.
    final class Node: @unchecked Sendable {  // lets only; a ledger is shared across threads
        let dir: String
        let ledger: Ledger
        let identity: SigningKey
        init() throws {
            dir = NSTemporaryDirectory() + "datanet-sync-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            ledger = try Ledger(store: try ObjectStore(directory: dir, create: true))
            identity = try SigningKey()
        }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// Signs and queues a contribution of `text` by `key` (its content and sidecar stored here).
        func contribute(_ d: DatanetID, _ text: String, by key: SigningKey, label: String? = nil) throws -> RecordID {
            let file = dir + "-\(UInt32.random(in: 0...UInt32.max)).txt"
            #expect(FileManager.default.createFile(atPath: file, contents: Data(text.utf8)))
            defer { unlink(file) }
            let blob = try Ingest(store: ledger.store).add(paths: [file])[0].id
            let sidecar = try ledger.storeSidecar(Sidecar(label: label ?? text, fileName: "\(label ?? text).txt", metadata: [:]))
            var e = Envelope(kind: .contribution, body: Contribution(
                datanet: d, author: key.publicKey, content: blob, contentKind: .blob, size: UInt64(text.utf8.count),
                mediaType: "text/plain", license: "CC0-1.0", sidecar: sidecar, createdAt: 2).body)
            try e.sign(with: key)
            return try ledger.propose(e)
        }

        func tables(_ d: DatanetID) throws -> [LogTable: [([UInt8], [UInt8])]] {
            try ledger.env.read { txn in try ledger.logTables(txn, d) }
        }
    }

    /// A Datanet on `node`, owned and sequenced by `owner`; private to `readers` when given.
    static func datanet(on node: Node, owner: SigningKey, readers: [PublicKey]? = nil, contributors: [PublicKey]? = nil, name: String = "songs") throws -> DatanetID {
        let policy = PolicyState(name: name, owner: owner.publicKey, sequencer: owner.publicKey, curators: [owner.publicKey], quorum: 1,
                                 contributors: contributors, readers: readers, maxPendingProposals: 100, maxPendingBytes: 1 << 30)
        var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 1, nonce: (0..<16).map { _ in UInt8.random(in: 0...255) }).body)
        try g.sign(with: owner)
        return try node.ledger.create(genesis: g, sequencerKey: owner)
    }

    static func expectSame(_ a: [LogTable: [([UInt8], [UInt8])]], _ b: [LogTable: [([UInt8], [UInt8])]], _ what: String) {
        for t in LogTable.allCases {
            let x = (a[t] ?? []).map { $0.0 + [0xff] + $0.1 }, y = (b[t] ?? []).map { $0.0 + [0xff] + $0.1 }
            #expect(x == y, "\(what): \(t.rawValue) differs (\(x.count) entries here, \(y.count) there)")
        }
    }

    static let now = UInt64(Date().timeIntervalSince1970)

    /// Serves `sessions` connections on `listener`, one after another; returns each session's
    /// outcome ("bye" or the error that ended it).
    static func serve(_ node: Node, _ listener: TCPListener, sessions: Int, rate: (perSecond: Double, burst: Double) = (1_000, 2_000),
                      maximumPush: UInt64 = BundleTransfer.defaultMaximum, inlineContent: UInt64 = 64 << 20) -> Parallel.Running<[String]> {
        Parallel.start {
            var outcomes = [String]()
            for _ in 0..<sessions {
                do {
                    let c = try PeerConnection.open(try listener.accept(timeout: 20), role: .responder, identity: node.identity, now: Self.now)
                    try SyncServer(ledger: node.ledger, requestsPerSecond: rate.perSecond, burst: rate.burst, maximumPush: maximumPush,
                                   inlineContent: inlineContent).serve(c) { _ in }
                    outcomes.append("bye")
                } catch {
                    print("SERVER ERROR: \(error)")
                    outcomes.append("\(error)")
                }
            }
            return outcomes
        }
    }

    /// Serves `sessions` connections on `listener` at once, a thread each (as `datanet serve`
    /// does); returns each session's outcome once all have ended.
    static func serveConcurrently(_ node: Node, _ listener: TCPListener, sessions: Int) -> Parallel.Running<[String]> {
        Parallel.start {
            let outcomes = Mutex([String]())
            let group = DispatchGroup()
            for _ in 0..<sessions {
                guard let socket = try? listener.accept(timeout: 30) else { outcomes.withLock { $0.append("no connection") }; continue }
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let outcome: String
                    do {
                        let c = try PeerConnection.open(socket, role: .responder, identity: node.identity, now: Self.now)
                        try SyncServer(ledger: node.ledger).serve(c) { _ in }
                        outcome = "bye"
                    } catch { outcome = "\(error)" }
                    outcomes.withLock { $0.append(outcome) }
                }
            }
            group.wait()
            return outcomes.withLock { $0 }
        }
    }

    /// One `datanet sync` of `d`: reconcile, pull, then push only what the peer lacks.
    @discardableResult
    static func sync(_ node: Node, _ d: DatanetID, with listener: TCPListener) throws -> DatanetExchange {
        let c = try Self.connect(node, listener)
        let listed = try #require(try c.list().first { $0.id == d })
        let x = try c.exchange(d, peerSize: listed.size, in: node.ledger)
        try c.bye()
        return x
    }

    static func connect(_ node: Node, _ listener: TCPListener, offering versions: ClosedRange<UInt64> = SyncMessage.versions) throws -> SyncClient {
        let c = SyncClient(try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator,
                                                   identity: node.identity, now: Self.now))
        c.offered = versions
        try c.hello()
        return c
    }

    @Test func aCloneAndADeltaConverge() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        for i in 0..<3 { _ = try server.contribute(d, "song \(i)", by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)

        var c = try Self.connect(client, listener)
        let listed = try c.list()
        #expect(listed.map(\.id) == [d] && listed[0].name == "songs" && listed[0].size == 4)
        #expect(listed[0].checkpoint == (try server.ledger.reader.latestCheckpoint(d)), "the newest checkpoint comes with the list")
        let (clone, _, _) = try c.pull(d, since: 0, recordsOnly: false, into: client.ledger)
        #expect(clone.newLeaves == 4)
        Self.expectSame(try server.tables(d), try client.tables(d), "after the clone")
        for s in try client.ledger.reader.statuses(d) {
            #expect(try client.ledger.store.blob(s.contribution.content) != nil, "content of \(s.id.hex) arrived")
        }
        try c.bye()

        // Two more on the server: the delta brings exactly them.
        for i in 3..<5 { _ = try server.contribute(d, "song \(i)", by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        c = try Self.connect(client, listener)
        let size = try client.ledger.reader.state(of: d).size
        let (delta, _, _) = try c.pull(d, since: size, recordsOnly: false, into: client.ledger)
        #expect(delta.newLeaves == 2)
        Self.expectSame(try server.tables(d), try client.tables(d), "after the delta")
        try c.bye()
        #expect(try served.wait() == ["bye", "bye"])
    }

    @Test func proposalsMadeOfflineReachTheSequencerAndTheirIntakeComesBack() throws {
        let server = try Node(), contributor = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)
        var c = try Self.connect(contributor, listener)
        _ = try c.pull(d, since: 0, recordsOnly: false, into: contributor.ledger)
        try c.bye()

        // Offline: a contribution queued in the contributor's own store.
        let id = try contributor.contribute(d, "a new verse", by: contributor.identity)
        c = try Self.connect(contributor, listener)
        let pushed = try #require(try c.exchange(d, peerSize: try contributor.ledger.reader.state(of: d).size, in: contributor.ledger, pull: false).pushed)
        #expect(pushed.records == 1 && pushed.leaves == 0)
        #expect(try server.ledger.reader.pendingRecords(d).map(\.id) == [id])
        _ = try server.ledger.sequence(d, key: owner)
        let (back, _, _) = try c.pull(d, since: try contributor.ledger.reader.state(of: d).size, recordsOnly: false, into: contributor.ledger)
        #expect(back.newLeaves == 1)
        #expect(try contributor.ledger.reader.status(of: id)?.state == .awaitingReview)
        Self.expectSame(try server.tables(d), try contributor.tables(d), "after the round trip")
        try c.bye()
        #expect(try served.wait() == ["bye", "bye"])
    }

    @Test func aPrivateDatanetIsInvisibleToNonReaders() throws {
        let server = try Node(), outsider = try Node(), reader = try Node()
        let owner = try SigningKey()
        let open = try Self.datanet(on: server, owner: owner, name: "open")
        let secret = try Self.datanet(on: server, owner: owner, readers: [reader.identity.publicKey], contributors: [reader.identity.publicKey], name: "secret")
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)

        let c = try Self.connect(outsider, listener)
        #expect(try c.list().map(\.id) == [open])
        // Asking by id is answered exactly as for an id nobody holds.
        func refusal(_ d: DatanetID) -> String {
            do { _ = try c.pull(d, since: 0, recordsOnly: true, into: outsider.ledger); return "pulled" } catch {
                return "\(error)".replacingOccurrences(of: d.hex, with: "ID")
            }
        }
        let unknown = refusal(DatanetID(SHA256.hash([7])))
        #expect(unknown.contains("unknown-datanet"))
        #expect(refusal(secret) == unknown)
        #expect(throws: SyncError.self) { try c.push(secret, since: 0, recordsOnly: true, from: server.ledger) }
        #expect(performing: { try c.reconcile(secret, in: server.ledger) }, throws: { "\($0)".replacingOccurrences(of: secret.hex, with: "ID") == unknown })
        #expect(throws: (any Error).self) { try outsider.ledger.reader.state(of: secret) }
        try c.bye()

        let r = try Self.connect(reader, listener)
        #expect(Set(try r.list().map(\.id)) == [open, secret])
        try r.bye()
        #expect(try served.wait() == ["bye", "bye"])
    }

    /// Thousands of pending records on each side, fifty apart: reconciliation finds exactly the
    /// difference in a few rounds and far fewer bytes than the ids, and after one sync both
    /// sides hold the same set.
    @Test func largePendingSetsReconcileByTheirDifference() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)
        try Self.sync(client, d, with: listener)
        func review(_ n: Int) throws -> Envelope {
            var e = Envelope(kind: .review, body: Review(datanet: d, reviewer: owner.publicKey, contributions: [RecordID(SHA256.hash(Array("c\(n)".utf8)))],
                                                         accept: true, reason: "").body)
            try e.sign(with: owner)
            return e
        }
        let all = try (0..<3_050).map(review)
        try server.ledger.propose(all: Array(all[..<3_025]))
        try client.ledger.propose(all: Array(all[..<3_000]) + Array(all[3_025...]))
        let x = try Self.sync(client, d, with: listener)
        #expect(Set(x.reconciled.need) == Set(all[3_000..<3_025].map(\.id)) && Set(x.reconciled.have) == Set(all[3_025...].map(\.id)))
        #expect(x.reconciled.rounds >= 2 && x.reconciled.bytesSent + x.reconciled.bytesReceived < 3_050 * 32 / 2, "\(x.reconciled)")
        #expect(x.pulled?.summary.records == 25 && x.pushed?.records == 25)
        #expect(Set(try server.ledger.reader.pendingRecords(d).map(\.id)) == Set(all.map(\.id)))
        #expect(Set(try client.ledger.reader.pendingRecords(d).map(\.id)) == Set(all.map(\.id)))
        #expect(try served.wait() == ["bye", "bye"])
    }

    /// A contributor who may not read a private Datanet reconciles only the pending records it
    /// signed (no id of another's reaches it), pushes those, and may push nothing else.
    @Test func aContributorWhoMayNotReadReconcilesOnlyItsOwnRecords() throws {
        let server = try Node(), writer = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner, readers: [], contributors: [owner.publicKey, writer.identity.publicKey], name: "secret")
        // The writer holds the Datanet (as from a sealed bundle), and a proposal of its own.
        try BundleTransfer.withTemporaryFile(in: writer.dir) { fd in
            _ = try server.ledger.exportBundle(d, recordsOnly: true, to: fd)
            lseek(fd, 0, SEEK_SET)
            _ = try writer.ledger.importBundle(from: fd)
        }
        let others = try server.contribute(d, "the owner's draft", by: owner)
        let mine = try writer.contribute(d, "a verse for a closed book", by: writer.identity)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1)
        let c = try Self.connect(writer, listener)
        #expect(try c.list().isEmpty)
        let sets = try c.reconcile(d, in: writer.ledger, signedBy: writer.identity.publicKey)
        #expect(sets.have == [mine] && sets.need.isEmpty, "\(sets)")
        let pushed = try c.push(d, since: 0, recordsOnly: false, have: sets.have, signer: writer.identity.publicKey, from: writer.ledger)
        #expect(pushed.records == 1 && pushed.leaves == 0)
        #expect(Set(try server.ledger.reader.pendingRecords(d).map(\.id)) == [others, mine])
        let again = try c.reconcile(d, in: writer.ledger, signedBy: writer.identity.publicKey)
        #expect(again.rounds == 1 && again.have.isEmpty && again.need.isEmpty)
        // Its reconciliation rounds never carried the other record's id.
        var server2 = try Negentropy(NegentropyItems(try server.ledger.pendingItems(d, signedBy: writer.identity.publicKey)))
        var have = [Digest](), need = [Digest]()
        var probe = try Negentropy(NegentropyItems([]))
        _ = try server2.reconcile(try probe.initiate(), have: &have, need: &need).map { reply in
            #expect(!Hex.encode(reply).contains(others.hex) && Hex.encode(reply).contains(mine.hex))
        }
        // Reading stays closed, and a record another key signed is refused with nothing kept.
        #expect(throws: SyncError.self) { try c.pull(d, since: 0, recordsOnly: true, into: writer.ledger) }
        let foreign = try BundleTransfer.withTemporaryFile(in: server.dir) { fd -> [UInt8] in
            _ = try server.ledger.exportBundle(d, signer: owner.publicKey, to: fd)
            lseek(fd, 0, SEEK_SET)
            return Array(try FileHandle(fileDescriptor: fd, closeOnDealloc: false).readToEnd() ?? Data())
        }
        try c.connection.send(SyncMessage(90, .push(d)).encoded)
        #expect(try SyncMessage(decoding: try c.connection.receive()).body == .ready(held: []))
        try c.connection.send(SyncMessage(90, .size(UInt64(foreign.count))).encoded)
        try c.connection.send(SyncMessage(90, .part(foreign)).encoded)
        try c.connection.send(SyncMessage(90, .end(UInt64(foreign.count), held: [])).encoded)
        guard case .error("refused", let why) = try SyncMessage(decoding: try c.connection.receive()).body else { Issue.record("a foreign record was taken"); return }
        #expect(why.contains("only pending records it signed"), "\(why)")
        try c.bye()
        #expect(try served.wait() == ["bye"])
    }

    @Test func hostilePeersAreRefusedAndTheServerKeepsServing() throws {
        let server = try Node(), peer = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        _ = try server.contribute(d, "kept", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        let before = try server.tables(d)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 4)
        func raw() throws -> PeerConnection {
            try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator, identity: peer.identity, now: Self.now)
        }
        // Garbage where hello belongs; then a message type nobody knows after a good hello.
        var c = try raw()
        try c.send([0xff, 0x00, 0x13])
        guard case .error("protocol", let why) = try SyncMessage(decoding: try c.receive()).body else { Issue.record("garbage was not refused"); return }
        #expect(why.contains("malformed"), "\(why)")
        c = try raw()
        try c.send(SyncMessage(1, .hello(versions: SyncMessage.versions, kinds: [1])).encoded)
        _ = try c.receive()
        try c.send([0xa2, 0x00, 0x18, 0x63, 0x01, 0x02])
        let answer = try SyncMessage(decoding: try c.receive())
        guard case .error(let code, let message) = answer.body else { Issue.record("not refused: \(answer)"); return }
        #expect(code == "protocol" && message.contains("99"), "\(message)")

        // A pushed bundle with a byte changed is refused whole; the session goes on.
        let client = try Self.connect(peer, listener)
        _ = try client.pull(d, since: 0, recordsOnly: false, into: peer.ledger)
        _ = try peer.contribute(d, "forged", by: peer.identity)
        let bundle = try BundleTransfer.withTemporaryFile(in: peer.dir) { fd -> [UInt8] in
            _ = try peer.ledger.exportBundle(d, since: 0, to: fd)
            lseek(fd, 0, SEEK_SET)
            return Array(try FileHandle(fileDescriptor: fd, closeOnDealloc: false).readToEnd() ?? Data())
        }
        var forged = bundle
        forged[forged.count - 40] ^= 0x01
        try client.connection.send(SyncMessage(90, .push(d)).encoded)
        #expect(try SyncMessage(decoding: try client.connection.receive()).body == .ready(held: []))
        try client.connection.send(SyncMessage(90, .size(UInt64(forged.count))).encoded)
        try client.connection.send(SyncMessage(90, .part(forged)).encoded)
        try client.connection.send(SyncMessage(90, .end(UInt64(forged.count), held: [])).encoded)
        guard case .error(let refused, _) = try SyncMessage(decoding: try client.connection.receive()).body else { Issue.record("a forged bundle was taken"); return }
        #expect(refused == "refused")
        Self.expectSame(before, try server.tables(d), "after the forged push")
        #expect(try server.ledger.reader.pendingRecords(d).isEmpty)
        #expect(try client.list().map(\.id) == [d], "the session goes on")
        // Parts past the size the pusher stated end the session before anything is imported.
        try client.connection.send(SyncMessage(91, .push(d)).encoded)
        _ = try client.connection.receive()
        try client.connection.send(SyncMessage(91, .size(4)).encoded)
        try client.connection.send(SyncMessage(91, .part([1, 2, 3, 4, 5])).encoded)
        guard case .error("protocol", let past) = try SyncMessage(decoding: try client.connection.receive()).body else { Issue.record("parts past the size were taken"); return }
        #expect(past.contains("pass the 4 bytes it stated"), "\(past)")

        // And another peer is served as before.
        let next = try Self.connect(try Node(), listener)
        #expect(try next.list().map(\.id) == [d])
        try next.bye()
        let outcomes = try served.wait()
        #expect(outcomes.count == 4 && outcomes[3] == "bye" && !outcomes[0...2].contains("bye"), "\(outcomes)")
    }

    /// A handoff moves a peer's pin only when the log proves it for a Datanet that peer serves
    /// and that the pinned key really sequenced (a checkpoint it signed is held here).
    @Test func aHandoffProvesAKeyChangeOnlyForWhatThePinnedKeySequenced() throws {
        let node = try Node()
        let owner = try SigningKey(), next = try SigningKey(), stranger = try SigningKey()
        let d = try Self.datanet(on: node, owner: owner)
        _ = try node.ledger.proposeSequencer(d, key: next.publicKey, by: owner)
        _ = try node.ledger.sequence(d, key: owner)
        let handoff = try #require(try node.ledger.sequencerHandoff(from: owner.publicKey, to: next.publicKey, among: [d]))
        #expect(handoff.datanet == d && handoff.leaf > 0)
        #expect(try node.ledger.sequencerKeys(d).map(\.key) == [owner.publicKey, next.publicKey])
        #expect(try node.ledger.sequencerHandoff(from: owner.publicKey, to: next.publicKey, among: []) == nil, "a Datanet the peer does not serve")
        #expect(try node.ledger.sequencerHandoff(from: next.publicKey, to: owner.publicKey, among: [d]) == nil, "backwards")
        #expect(try node.ledger.sequencerHandoff(from: stranger.publicKey, to: next.publicKey, among: [d]) == nil, "a key that never sequenced it")
    }

    /// A pusher that stalls before its first bundle holds no write lock on the server's store:
    /// other writes go through meanwhile (the transaction opens only once a bundle is here).
    @Test func aStalledPushHoldsNoWriteLock() throws {
        let server = try Node(), peer = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1)
        let c = try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator, identity: peer.identity, now: Self.now)
        try c.send(SyncMessage(1, .hello(versions: SyncMessage.versions, kinds: LeafKind.allCases.map(\.rawValue))).encoded)
        _ = try c.receive()
        try c.send(SyncMessage(2, .push(d)).encoded)
        guard case .ready = try SyncMessage(decoding: try c.receive()).body else { Issue.record("no ready"); return }
        usleep(200_000)
        let start = ContinuousClock.now
        _ = try server.contribute(d, "written while a push stalls", by: owner)
        #expect(ContinuousClock.now - start < .seconds(2), "a write waited for the stalled push")
        c.socket.shutdownWrite()
        _ = try served.wait()
    }

    /// A peer never receives a leaf kind it cannot replay: a client whose hello lists no
    /// review leaves is told which leaf it lacks the kind for, and given nothing; the session
    /// goes on.
    @Test func leavesOfKindsAPeerCannotReplayAreNotSent() throws {
        let server = try Node(), peer = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let id = try server.contribute(d, "reviewed", by: owner)
        var review = Envelope(kind: .review, body: Review(datanet: d, reviewer: owner.publicKey, contributions: [id], accept: true, reason: "", createdAt: 5).body)
        try review.sign(with: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try server.ledger.propose(review)
        _ = try server.ledger.sequence(d, key: owner)
        let reviewLeaf = try #require(try server.ledger.reader.firstLeaf(d, kind: .review))
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1)
        let c = try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator, identity: peer.identity, now: Self.now)
        try c.send(SyncMessage(1, .hello(versions: SyncMessage.versions, kinds: [1, 2, 3, 4, 5, 6])).encoded)
        _ = try c.receive()
        try c.send(SyncMessage(2, .pull(d, since: 0, recordsOnly: false, held: [], wanted: [], allPending: false)).encoded)
        guard case .error("kinds", let why) = try SyncMessage(decoding: try c.receive()).body else { Issue.record("leaves of an unknown kind were sent"); return }
        #expect(why.contains("leaf \(reviewLeaf)") && why.contains("review"), "\(why)")
        // From past the review leaf, there is nothing it cannot replay.
        try c.send(SyncMessage(3, .pull(d, since: reviewLeaf + 1, recordsOnly: false, held: [], wanted: [], allPending: false)).encoded)
        switch try SyncMessage(decoding: try c.receive()).body {
        case .size, .batch: break
        default: Issue.record("no bundle")
        }
        c.socket.shutdownWrite()
        _ = try served.wait()
    }

    /// Forwards one connection from `listener` to the server at `port`, passing only the
    /// first `cut` bytes the server sends, then ending the client's stream (the server's bytes
    /// are drained, so it is never left blocked).
    static func cuttingProxy(_ listener: TCPListener, to port: UInt16, cut: Int) -> Parallel.Running<Int> {
        Parallel.start {
            let client = try listener.accept(timeout: 10)
            let server = try TCPSocket.connect(host: "127.0.0.1", port: port)
            let up = Parallel.start {
                while let b = try? client.receive(), !b.isEmpty { guard (try? server.send(b)) != nil else { break } }
                server.shutdownWrite()
            }
            var passed = 0
            while let b = try? server.receive(), !b.isEmpty {
                let n = min(b.count, cut - passed)
                if n > 0 { try? client.send(Array(b.prefix(n))); passed += n }
                if passed >= cut { client.shutdownWrite() }
            }
            client.shutdownWrite()
            try up.wait()
            return passed
        }
    }

    /// A connection cut at random byte offsets of a clone or of a delta leaves the client
    /// holding a prefix of the server's log, every batch of it proven and replayed (its audit
    /// holds); the next sync resumes from there and reaches the same final state as an uncut one.
    @Test func connectionsCutAtRandomOffsetsResumeFromTheLastCommittedBatch() throws {
        let server = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        for i in 0..<12 { _ = try server.contribute(d, "verse \(i) " + String(repeating: "la ", count: 300), by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0), proxy = try TCPListener(port: 0)
        var rng = SplitMix64(seed: 0xc07)
        let cuts = 10
        let served = Self.serveConcurrently(server, listener, sessions: 3 * cuts + 1)
        func leaves(_ node: Node) throws -> [[UInt8]] {
            guard (try? node.ledger.reader.state(of: d)) != nil else { return [] }
            let table = try node.ledger.leafTable(d)
            return try node.ledger.env.read { txn in
                var out = [[UInt8]]()
                try table.scan(txn) { _, v in out.append(Array(v)); return true }
                return out
            }
        }
        // Cuts fall anywhere in the run of bundles (about as long as the whole bundle).
        let length = try BundleTransfer.withTemporaryFile(in: server.dir) { fd in try server.ledger.exportBundle(d, to: fd).bytes }
        func cutSync(_ client: Node, _ limit: Int) throws -> Int {
            let forwarded = Self.cuttingProxy(proxy, to: listener.port, cut: limit)
            let before = try leaves(client).count
            do {
                let c = try Self.connect(client, proxy)
                let size = (try? client.ledger.reader.state(of: d))?.size ?? 0
                _ = try c.pull(d, since: size, recordsOnly: false, into: client.ledger, commitEvery: .zero)
            } catch {}
            _ = try forwarded.wait()
            let held = try leaves(client), all = try leaves(server)
            #expect(held.count >= before && held.count <= all.count && Array(all.prefix(held.count)) == held, "cut after \(limit) bytes")
            if !held.isEmpty { #expect(try client.ledger.audit(d).holds) }
            return held.count
        }
        var partial = 0
        for _ in 0..<cuts {
            let client = try Node()
            let size = try cutSync(client, 200 + Int(rng.next() % UInt64(length)))
            let whole = try leaves(server).count
            if size > 0 && size < whole { partial += 1 }
            try Self.sync(client, d, with: listener)
            Self.expectSame(try server.tables(d), try client.tables(d), "after a clone resumed from \(size) leaves")
        }
        #expect(partial > 0, "no cut fell after a committed batch")
        // Deltas cut anywhere on one store, then finished.
        let client = try Node()
        try Self.sync(client, d, with: listener)
        for i in 12..<20 { _ = try server.contribute(d, "verse \(i) " + String(repeating: "la ", count: 300), by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        for _ in 0..<(cuts - 1) { _ = try cutSync(client, 200 + Int(rng.next() % UInt64(length / 2))) }
        try Self.sync(client, d, with: listener)
        Self.expectSame(try server.tables(d), try client.tables(d), "after the delta")
        #expect(try served.wait().filter { $0 == "bye" }.count == cuts + 2)
    }

    /// Two stores whose sequencer signed different logs of one size (the key used in both): the
    /// server's listed checkpoint is checked before anything moves, the fork is kept as evidence,
    /// and nothing of that Datanet is pulled.
    @Test func aForkIsKeptAsEvidenceBeforeAnythingMoves() throws {
        let server = try Node(), client = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        _ = try server.contribute(d, "shared", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)
        try Self.sync(client, d, with: listener)
        // Each store now sequences a contribution of its own under the same key: one size, two roots.
        _ = try server.contribute(d, "server's", by: owner)
        _ = try server.ledger.sequence(d, key: owner)
        _ = try client.contribute(d, "client's", by: owner)
        _ = try client.ledger.sequence(d, key: owner)
        let before = try client.tables(d)
        let c = try Self.connect(client, listener)
        let listed = try #require(try c.list().first)
        guard case .fork(let evidence)? = try SyncClient.observe(listed, in: client.ledger) else { Issue.record("no fork seen"); return }
        #expect(evidence.contains(d.hex))
        #expect(try client.ledger.reader.forkEvidence(d).count == 1)
        Self.expectSame(before, try client.tables(d), "nothing of the forked log was taken")
        try c.bye()
        _ = try served.wait()
    }

    /// A push larger than the server's bound is refused before any of it is written; the
    /// server's store is unchanged.
    @Test func aPushPastTheServersBoundIsRefused() throws {
        let server = try Node(), peer = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 1, maximumPush: 2_000)
        let c = try Self.connect(peer, listener)
        _ = try c.pull(d, since: 0, recordsOnly: false, into: peer.ledger)
        let long = try peer.contribute(d, String(repeating: "long verse ", count: 400), by: peer.identity)
        #expect(performing: { try c.push(d, since: 1, recordsOnly: false, have: [long], from: peer.ledger) }, throws: { "\($0)".contains("passes the bound of 2000") })
        #expect(try server.ledger.reader.pendingRecords(d).isEmpty)
        let outcomes = try served.wait()
        #expect(outcomes.count == 1 && outcomes[0].contains("bound"), "\(outcomes)")
    }

    /// A peer past the request rate is told so (`error` `rate`) and the session ends; the next
    /// peer is served.
    @Test func aPeerPastTheRequestRateIsCutOff() throws {
        let server = try Node()
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2, rate: (perSecond: 1, burst: 5))
        let c = try Self.connect(try Node(), listener)
        var listed = 0, refusal = ""
        for _ in 0..<20 {
            do { _ = try c.list(); listed += 1 } catch { refusal = "\(error)"; break }
        }
        #expect(listed >= 4 && listed <= 6, "\(listed) lists answered")
        #expect(refusal.contains("(rate)") && refusal.contains("requests"), "\(refusal)")
        let next = try Self.connect(try Node(), listener)
        #expect(try next.list().isEmpty)
        try next.bye()
        let outcomes = try served.wait()
        #expect(outcomes.count == 2 && outcomes[0].contains("limit") && outcomes[1] == "bye", "\(outcomes)")
    }

    /// A chain: a contributor who only ever talks to an intermediate peer gets a proposal
    /// made offline to the sequencer through it, and the intake promise and a receipt that
    /// verifies come back the same way; all three end with byte-identical log tables.
    @Test func aProposalReachesTheSequencerThroughAPeerAndItsPromiseComesBack() throws {
        let hub = try Node(), relay = try Node(), contributor = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: hub, owner: owner)
        _ = try hub.contribute(d, "first", by: owner)
        _ = try hub.ledger.sequence(d, key: owner)
        let hubListener = try TCPListener(port: 0), relayListener = try TCPListener(port: 0)
        let hubServed = Self.serveConcurrently(hub, hubListener, sessions: 3)
        let relayServed = Self.serveConcurrently(relay, relayListener, sessions: 2)

        try Self.sync(relay, d, with: hubListener)                  // the relay clones from the hub
        try Self.sync(contributor, d, with: relayListener)          // the contributor from the relay
        let id = try contributor.contribute(d, "made offline", by: contributor.identity)
        try Self.sync(contributor, d, with: relayListener)          // pushed to the relay
        #expect(try relay.ledger.reader.pendingRecords(d).map(\.id) == [id])
        try Self.sync(relay, d, with: hubListener)                  // and on to the hub
        #expect(try hub.ledger.reader.pendingRecords(d).map(\.id) == [id])
        _ = try hub.ledger.sequence(d, key: owner)
        try Self.sync(relay, d, with: hubListener)                  // the intake comes back
        #expect(try relay.ledger.reader.promise(id) != nil, "the relay keeps the promise for what it relayed")

        // The contributor reaches the relay again: a third session on it.
        let again = Self.serveConcurrently(relay, relayListener, sessions: 1)
        try Self.sync(contributor, d, with: relayListener)
        let promise = try #require(try contributor.ledger.reader.promise(id), "the promise reached the contributor through the relay")
        #expect(promise.isValid && promise.sequencer == owner.publicKey)
        #expect(try contributor.ledger.reader.status(of: id)?.state == .awaitingReview)
        let receipt = try contributor.ledger.provenance.receipt(for: id)
        #expect(try Node().ledger.provenance.verify(receipt, anchor: d).holds, "a fresh store verifies the receipt offline")
        Self.expectSame(try hub.tables(d), try relay.tables(d), "hub and relay")
        Self.expectSame(try hub.tables(d), try contributor.tables(d), "hub and contributor")
        #expect(try hubServed.wait() == ["bye", "bye", "bye"])
        #expect(try relayServed.wait() == ["bye", "bye"])
        #expect(try again.wait() == ["bye"])
    }

    /// A star: three peers each add a contribution offline and sync with the centre, which
    /// sequences; after a second round every store holds byte-identical log tables.
    @Test func aStarOfPeersConverges() throws {
        let centre = try Node(), peers = [try Node(), try Node(), try Node()]
        let owner = try SigningKey()
        let d = try Self.datanet(on: centre, owner: owner)
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(centre, listener, sessions: 3 * peers.count)
        for p in peers { try Self.sync(p, d, with: listener) }
        for (k, p) in peers.enumerated() { _ = try p.contribute(d, "from peer \(k)", by: p.identity) }
        for p in peers { try Self.sync(p, d, with: listener) }
        #expect(try centre.ledger.reader.pendingRecords(d).count == 3)
        _ = try centre.ledger.sequence(d, key: owner)
        for p in peers { try Self.sync(p, d, with: listener) }
        for (k, p) in peers.enumerated() {
            Self.expectSame(try centre.tables(d), try p.tables(d), "centre and peer \(k)")
            #expect(try p.ledger.reader.pendingRecords(d).isEmpty)
        }
        #expect(try served.wait() == Array(repeating: "bye", count: 9))
    }

    /// 64 clients clone from one server at once, each on its own connection and thread; all
    /// converge to the server's tables.
    @Test func sixtyFourClientsAtOnceConverge() throws {
        let server = try Node()
        let owner = try SigningKey()
        let d = try Self.datanet(on: server, owner: owner)
        for i in 0..<5 { _ = try server.contribute(d, "verse \(i)", by: owner) }
        _ = try server.ledger.sequence(d, key: owner)
        let expected = try server.tables(d)
        let listener = try TCPListener(port: 0)
        let served = Self.serveConcurrently(server, listener, sessions: 64)
        let clients = try (0..<64).map { _ in try Node() }
        let failures = Mutex([String]())
        DispatchQueue.concurrentPerform(iterations: clients.count) { k in
            do {
                try Self.sync(clients[k], d, with: listener)
                let tables = try clients[k].tables(d)
                for t in LogTable.allCases where (tables[t] ?? []).map({ $0.0 + $0.1 }) != (expected[t] ?? []).map({ $0.0 + $0.1 }) {
                    failures.withLock { $0.append("client \(k): \(t.rawValue) differs") }
                }
            } catch { failures.withLock { $0.append("client \(k): \(error)") } }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 }.prefix(5))")
        #expect(try served.wait() == Array(repeating: "bye", count: 64))
    }

    /// Every message type round-trips; thousands of mutations of each never trap, and whatever
    /// decodes re-encodes to the same bytes (the decoder accepts only canonical messages).
    @Test func messagesDecodeStrictly() throws {
        let d = DatanetID(SHA256.hash([1]))
        let samples: [SyncMessage] = [
            .init(1, .hello(versions: 2...2, kinds: [1, 2, 3, 4, 5, 6, 7])), .init(2, .list),
            .init(2, .datanets([.init(id: d, name: "songs", size: 9, checkpoint: "datanet/x\n9\nroot\n\n— sig\n"), .init(id: DatanetID(SHA256.hash([2])), name: "", size: 0)])),
            .init(3, .pull(d, since: 7, recordsOnly: true, held: [], wanted: [], allPending: true)),
            .init(3, .pull(d, since: 0, recordsOnly: false, held: Self.marks, wanted: Self.marks.map(\.id), allPending: false)),
            .init(9, .reconcile(d, [0x61, 0x00, 0x02, 0x00])),
            .init(4, .push(d)), .init(4, .ready(held: [])), .init(4, .ready(held: Self.marks)), .init(4, .size(3)), .init(4, .part([1, 2, 3])),
            .init(4, .end(3, held: [])), .init(4, .end(3, held: Self.marks)), .init(4, .pushed(leaves: 2, records: 5)),
            .init(7, .fetch(d, parts: [.init(RecordID(SHA256.hash([5])), [.init(.blob, ObjectID(SHA256.hash([6]))), .init(.chunk, ObjectID(SHA256.hash([7])))])])),
            .init(7, .fetch(d, parts: [.init(RecordID(SHA256.hash([5])), [.init(.blob, ObjectID(SHA256.hash([6])))]),
                                       .init(RecordID(SHA256.hash([9])), [.init(.chunk, ObjectID(SHA256.hash([7]))), .init(.tree, ObjectID(SHA256.hash([10])))])])),
            .init(7, .objects(sent: [.init(.chunk, [1, 2]), .init(.tree, [])], refused: [.init(.tree, ObjectID(SHA256.hash([8])))])), .init(5, .error(code: "x", message: "y")), .init(6, .bye),
            .init(8, .batch(start: 4, end: 8, checkpoint: "datanet/x\n9\nroot\n\n— sig\n", proof: [SHA256.hash([9]), SHA256.hash([10])], consistency: [])),
            .init(8, .batch(start: 0, end: 1, checkpoint: "", proof: [], consistency: [SHA256.hash([11])])),
        ]
        var rng = SplitMix64(seed: 11)
        var decoded = 0, refused = 0
        for m in samples {
            #expect(try SyncMessage(decoding: m.encoded) == m)
            for _ in 0..<3_000 {
                var b = m.encoded
                for _ in 0..<(1 + Int(rng.next() % 3)) where !b.isEmpty {
                    let at = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 4 {
                    case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    case 2: b.remove(at: at)
                    default: b = Array(b[0..<at])
                    }
                }
                if let x = try? SyncMessage(decoding: b) { #expect(x.encoded == b); decoded += 1 } else { refused += 1 }
            }
        }
        #expect(decoded > 0 && refused > 0)
        // Bounds: a part one byte too long, a list of too many kinds.
        #expect(throws: SyncError.self) { try SyncMessage(decoding: SyncMessage(1, .part([UInt8](repeating: 0, count: SyncMessage.maximumPart + 1))).encoded) }
        #expect(throws: SyncError.self) { try SyncMessage(decoding: SyncMessage(1, .hello(versions: 2...2, kinds: Array(0...64))).encoded) }
        // A batch of no leaves; a proof past its bound.
        #expect(throws: SyncError.self) { try SyncMessage(decoding: SyncMessage(1, .batch(start: 3, end: 3, checkpoint: "", proof: [], consistency: [])).encoded) }
        #expect(throws: SyncError.self) {
            try SyncMessage(decoding: SyncMessage(1, .batch(start: 0, end: 1, checkpoint: "", proof: Array(repeating: SHA256.hash([1]), count: SyncMessage.maximumProof + 1), consistency: [])).encoded)
        }
        // A held record listed twice.
        #expect(throws: SyncError.self) { try SyncMessage(decoding: SyncMessage(1, .ready(held: Self.marks + Self.marks)).encoded) }
    }

    static let marks = [PendingMark(id: RecordID(SHA256.hash([3])), signers: 9), PendingMark(id: RecordID(SHA256.hash([4])), signers: 1 << 63)]

    /// Pending records travel by what each side lacks: a second sync with nothing new sends
    /// none either way, and a record signed by different keys in two stores (a policy change
    /// needing two curators) is sent again and its signatures merged, so the quorum gathered
    /// across the stores reaches the sequencer.
    @Test func pendingRecordsTravelByWhatEachSideLacksAndSignaturesMerge() throws {
        let server = try Node(), curatorStore = try Node()
        let owner = try SigningKey(), curatorA = try SigningKey(), curatorB = try SigningKey()
        let policy = PolicyState(name: "two", owner: owner.publicKey, sequencer: owner.publicKey, curators: [curatorA.publicKey, curatorB.publicKey],
                                 quorum: 2, contributors: nil, readers: nil, maxPendingProposals: 100, maxPendingBytes: 1 << 30)
        var g = Envelope(kind: .genesis, body: Genesis(policy: policy, createdAt: 1, nonce: [UInt8](repeating: 5, count: 16)).body)
        try g.sign(with: owner)
        let d = try server.ledger.create(genesis: g, sequencerKey: owner)
        for i in 0..<2 { _ = try server.contribute(d, "held \(i)", by: owner) }
        let listener = try TCPListener(port: 0)
        let served = Self.serve(server, listener, sessions: 2)

        // The first sync (this store holds none of the Datanet) takes all pending records
        // without reconciling; the second reconciles equal sets in one round and moves none.
        var c = try Self.connect(curatorStore, listener)
        let first = try c.exchange(d, peerSize: 0, in: curatorStore.ledger, push: false)
        #expect(first.pulled?.summary.records == 2 && first.reconciled.rounds == 0)
        let again = try c.exchange(d, peerSize: try server.ledger.reader.state(of: d).size, in: curatorStore.ledger)
        #expect(again.pulled?.summary.records == 0 && again.pulled?.summary.newLeaves == 0 && again.pushed == nil, "\(again)")
        #expect(again.reconciled.rounds == 1 && again.reconciled.have.isEmpty && again.reconciled.need.isEmpty)
        #expect(again.pulled!.bytes < 2_000, "an up-to-date pull is small: \(again.pulled!.bytes) bytes")
        try c.bye()

        // A policy change signed by curator A on the server and by curator B in the other store;
        // a contribution only the server holds and one only the other store holds.
        let change = PolicyState(name: "two", owner: owner.publicKey, sequencer: owner.publicKey, curators: [curatorA.publicKey, curatorB.publicKey],
                                 quorum: 1, contributors: nil, readers: nil, maxPendingProposals: 100, maxPendingBytes: 1 << 30)
        let previous = try server.ledger.reader.state(of: d).policyRecord
        let body = PolicyChange(datanet: d, previous: previous, state: change, summary: "quorum 1").body
        var a = Envelope(kind: .policy, body: body), b = Envelope(kind: .policy, body: body)
        try a.sign(with: curatorA)
        try b.sign(with: curatorB)
        _ = try server.ledger.propose(a)
        _ = try curatorStore.ledger.propose(b)
        let onServer = try server.contribute(d, "only on the server", by: owner)
        let here = try curatorStore.contribute(d, "only here", by: curatorB)
        c = try Self.connect(curatorStore, listener)
        let x = try c.exchange(d, peerSize: try server.ledger.reader.state(of: d).size, in: curatorStore.ledger)
        // Reconciliation compares ids: the policy change is on both sides; the contributions differ.
        #expect(Set(x.reconciled.need) == [onServer] && Set(x.reconciled.have) == [here], "\(x.reconciled)")
        #expect(x.pulled?.summary.records == 1 && x.pulled?.summary.signatures == 1, "the server's contribution and A's signature come, nothing else")
        #expect(x.pushed?.records ?? 0 >= 1, "the contribution only here goes, with B's signature")
        #expect(try server.ledger.reader.pendingRecords(d).contains { $0.id == here })
        let merged = try #require(try server.ledger.reader.pendingRecords(d).first { $0.kind == .policy })
        #expect(Set(merged.signatures.map(\.key)) == [curatorA.publicKey, curatorB.publicKey])
        try c.bye()
        _ = try server.ledger.sequence(d, key: owner)
        #expect(try server.ledger.reader.state(of: d).policy.quorum == 1, "the quorum gathered across two stores took effect")
        #expect(try served.wait() == ["bye", "bye"])
    }
}

extension LedgerReader {
    /// The index of `d`'s first leaf of `kind`, if any.
    func firstLeaf(_ d: DatanetID, kind: LeafKind) throws -> UInt64? {
        var found: UInt64?
        try forEachLeafSummary(d, kinds: [kind]) { i, _ in found = i; return false }
        return found
    }
}

/// schema/vectors/protocol/transcript.txt: a fixed session, one message per line (direction,
/// type, hex), as this build encodes and decodes it. Another implementation can replay it.
@Suite struct ProtocolTranscriptTests {
    static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("schema/vectors/protocol/transcript.txt")

    static func session() throws -> [(String, SyncMessage)] {
        let d = DatanetID(SHA256.hash(Array("datanet/v1 transcript".utf8)))
        // A real reconciliation: the client holds one pending record, the server that and another.
        let a = NegentropyItem(timestamp: 1_700_000_000, id: SHA256.hash([7])), b = NegentropyItem(timestamp: 0, id: SHA256.hash([8]))
        var client = try Negentropy(NegentropyItems([a]), frameSizeLimit: Reconciliation.frameSizeLimit)
        var server = try Negentropy(NegentropyItems([a, b]), frameSizeLimit: Reconciliation.frameSizeLimit)
        var have = [Digest](), need = [Digest]()
        let ask = try client.initiate()
        let reply = try #require(try server.reconcile(ask, have: &have, need: &need))
        #expect(try client.reconcile(reply, have: &have, need: &need) == nil && need == [b.id] && have.isEmpty)
        func mark(_ n: UInt8) -> PendingMark { PendingMark(id: RecordID(SHA256.hash([n])), signers: UInt64(n) << 56 | 0xabcdef) }
        let kinds = LeafKind.allCases.map(\.rawValue)
        return [
            ("C", .init(1, .hello(versions: 3...4, kinds: kinds))), ("S", .init(1, .hello(versions: 3...4, kinds: kinds))),
            ("C", .init(2, .list)), ("S", .init(2, .datanets([.init(id: d, name: "songs", size: 3)]))),
            ("C", .init(3, .reconcile(d, ask))), ("S", .init(3, .reconcile(d, reply))),
            ("C", .init(4, .pull(d, since: 1, recordsOnly: false, held: [mark(1)], wanted: [RecordID(b.id)], allPending: false))),
            ("S", .init(4, .batch(start: 1, end: 2, checkpoint: "datanet/\(d.hex)\n3\n" + Data(SHA256.hash([3]).bytes).base64EncodedString() + "\n\n— sig\n",
                                  proof: [SHA256.hash([4]), SHA256.hash([5])], consistency: [SHA256.hash([6])]))),
            ("S", .init(4, .size(2))), ("S", .init(4, .part(Array("DN".utf8)))), ("S", .init(4, .end(2, held: []))),
            ("S", .init(4, .size(3))), ("S", .init(4, .part(Array("DNB".utf8)))),
            ("S", .init(4, .end(3, held: [mark(1), mark(2)]))),
            ("C", .init(5, .push(d))), ("S", .init(5, .ready(held: [mark(1), mark(2)]))), ("C", .init(5, .size(2))), ("C", .init(5, .part([0x01, 0x02]))),
            ("C", .init(5, .end(2, held: []))), ("S", .init(5, .error(code: "refused", message: "the bundle is truncated"))),
            ("C", .init(6, .push(d))), ("S", .init(6, .ready(held: []))), ("C", .init(6, .size(0))), ("C", .init(6, .part([]))), ("C", .init(6, .end(0, held: []))),
            ("S", .init(6, .pushed(leaves: 0, records: 1))),
            // A fetch naming two contributions; one object sent, one refused, one left for later.
            ("C", .init(7, .fetch(d, parts: [.init(RecordID(SHA256.hash([9])), [.init(.blob, ObjectID(SHA256.hash([10])))]),
                                            .init(RecordID(SHA256.hash([11])), [.init(.chunk, ObjectID(SHA256.hash(Array("DN".utf8)))), .init(.chunk, ObjectID(SHA256.hash([12])))])]))),
            ("S", .init(7, .objects(sent: [.init(.chunk, Array("DN".utf8))], refused: [.init(.blob, ObjectID(SHA256.hash([10])))]))),
            ("C", .init(8, .bye)),
        ]
    }

    @Test func theTranscriptIsWhatThisBuildSpeaks() throws {
        let session = try Self.session()
        let lines = session.map { "\($0.0) \($0.1.typeName) \(Hex.encode($0.1.encoded))" }
        if ProcessInfo.processInfo.environment["DATANET_WRITE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (lines.joined(separator: "\n") + "\n").write(to: Self.file, atomically: true, encoding: .utf8)
        }
        let stored = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(stored == lines)
        for (line, (_, m)) in zip(stored, session) {
            let hex = try #require(line.split(separator: " ").last)
            #expect(try SyncMessage(decoding: try #require(Hex.decode(String(hex)))) == m, "\(line)")
        }
    }
}

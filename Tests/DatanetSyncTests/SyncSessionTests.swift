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
            FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
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
    static func serve(_ node: Node, _ listener: TCPListener, sessions: Int, rate: (perSecond: Double, burst: Double) = (100, 400),
                      maximumPush: UInt64 = BundleTransfer.defaultMaximum) -> Parallel.Running<[String]> {
        Parallel.start {
            var outcomes = [String]()
            for _ in 0..<sessions {
                do {
                    let c = try PeerConnection.open(try listener.accept(timeout: 20), role: .responder, identity: node.identity, now: Self.now)
                    try SyncServer(ledger: node.ledger, requestsPerSecond: rate.perSecond, burst: rate.burst, maximumPush: maximumPush).serve(c) { _ in }
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

    static func connect(_ node: Node, _ listener: TCPListener) throws -> SyncClient {
        let c = SyncClient(try PeerConnection.open(try TCPSocket.connect(host: "127.0.0.1", port: listener.port), role: .initiator,
                                                   identity: node.identity, now: Self.now))
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
        FileManager.default.createFile(atPath: bigFile, contents: Data(big))
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
        guard case .objects(let sent, let refused) = try ContentReach.answer(server.ledger, refs.map { ($0, reach.contains($0.id)) }, limit: firstTwo) else {
            Issue.record("not an objects answer"); return
        }
        #expect(sent.count == 2 && refused.isEmpty, "\(sent.count) sent")
        guard case .objects(let one, _) = try ContentReach.answer(server.ledger, refs.map { ($0, reach.contains($0.id)) }, limit: 1) else { return }
        #expect(one.count == 1, "at least one object goes, whatever the bound")
        let third = try Self.connect(try Node(), listener)
        try third.bye()
        #expect(try served.wait() == ["bye", "bye", "bye"])
    }

    /// Many contributions' content in one fetch, requests in flight across them; one the peer
    /// does not serve in that Datanet is named as failed while all the others arrive.
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
        FileManager.default.createFile(atPath: file, contents: Data(weights))
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
            (SyncMessage(3, .fetch(d, parts: [part(1, refs(2, from: 0)), part(2, [])])), "objects in all"),
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
            ("C", .init(1, .hello(versions: 3...3, kinds: kinds))), ("S", .init(1, .hello(versions: 3...3, kinds: kinds))),
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

import DatanetSync
import Foundation
import Testing

/// `datanet serve` and `datanet sync` as separate processes on loopback: a contributor works
/// offline then syncs, the serving sequencer takes the proposal in, a curator reviews through
/// sync, the decision and the receipt flow back, a fresh peer clones and verifies; SIGTERM
/// stops the server cleanly.
@Suite struct SyncCLITests {
    typealias Session = LedgerCLITests.Session

    /// A `datanet serve --json` process on an ephemeral port of `s`'s store, writing its
    /// events to a file (a pipe nobody drains would stall it).
    final class Server {
        let process = Process()
        let log: String
        var address = ""

        init(_ s: Session, _ extra: [String] = [], listen: String = "127.0.0.1:0") throws {
            log = s.dir.file("serve.log")
            #expect(FileManager.default.createFile(atPath: log, contents: nil))
            var env = ProcessInfo.processInfo.environment
            env["DATANET_DIR"] = s.store
            process.environment = env
            process.executableURL = URL(fileURLWithPath: datanetBinary)
            process.arguments = ["serve", "--listen", listen, "--json"] + extra
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<200 where address.isEmpty {
                address = events().first { $0["event"] as? String == "listening" }?["address"] as? String ?? ""
                if address.isEmpty { usleep(50_000) }
            }
            try #require(!address.isEmpty, "serve printed no address")
        }

        /// The events written so far.
        func events() -> [[String: Any]] {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        /// Sends SIGTERM; returns the exit status and every event's name.
        func stop() -> (Int32, [String]) {
            process.terminate()
            process.waitUntilExit()
            return (process.terminationStatus, events().compactMap { $0["event"] as? String })
        }
    }

    static func identity(_ s: Session, _ name: String) throws -> String {
        try s.ok(["init"])
        try s.ok(["id", "new", name])
        try s.ok(["config", "identity", name])
        return try #require((try s.json(["id", "show", name]) as? [String: Any])?["ed25519"] as? String)
    }

    @Test func contributorsAndCuratorsWorkThroughASequencerThatServes() throws {
        let owner = Session(), alice = Session(), curator = Session(), fresh = Session()
        _ = try Self.identity(owner, "owner")
        let curatorKey = try Self.identity(curator, "carol")
        try owner.ok(["id", "import", curatorKey, "--name", "carol"])
        try owner.ok(["create", "poems", "--curator", "carol"])
        let server = try Server(owner, ["--sequence-every", "0.2"])

        // Alice clones, contributes offline, syncs: the proposal goes out.
        _ = try Self.identity(alice, "alice")
        try alice.ok(["peer", "add", "hub", server.address])
        #expect(try alice.ok(["sync", "hub"]).contains("in 1 leaves"))
        let file = alice.dir.file("ode.txt")
        try "an ode to the sea".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try alice.ok(["status", "poems"]).contains("peer hub: in sync as of the last sync"))
        try alice.ok(["contribute", "poems", file])
        #expect(try alice.ok(["status", "poems"]).contains("peer hub: 1 queued record not yet sent"))
        let pushed = try #require(try alice.json(["sync", "hub"]) as? [String: Any])
        #expect(try alice.ok(["status", "poems"]).contains("peer hub: in sync as of the last sync"))
        #expect(((pushed["datanets"] as? [[String: Any]])?.first?["records_out"] as? Int) == 1, "\(pushed)")
        // hello, list, one reconciliation round, pull, push (ready, pushed).
        #expect((pushed["round_trips"] as? Int ?? 99) <= 6 && (pushed["bytes_sent"] as? Int ?? 0) > 0, "\(pushed)")
        #expect((pushed["reconcile_rounds"] as? Int) == 1 && (pushed["reconcile_bytes_sent"] as? Int ?? 0) > 0, "\(pushed)")

        // The server sequences it; the curator syncs, reviews, syncs; the decision comes back.
        func waitFor(_ s: Session, _ state: String) throws -> Bool {
            for _ in 0..<50 {
                try s.ok(["sync", "hub"])
                let rows = try s.json(["status", "poems"]) as? [[String: Any]] ?? []
                if rows.contains(where: { $0["state"] as? String == state }) { return true }
                usleep(200_000)
            }
            return false
        }
        try curator.ok(["peer", "add", "hub", server.address])
        #expect(try waitFor(curator, "awaiting-review"))
        let id = try #require((try curator.json(["status", "poems"]) as? [[String: Any]])?.first?["id"] as? String)
        try curator.ok(["review", "poems", String(id.prefix(12)), "--accept", "--reason", "lovely"])
        #expect(try waitFor(curator, "accepted"))
        #expect(try waitFor(alice, "accepted"))
        try alice.ok(["receipt", String(id.prefix(12)), "-o", alice.dir.file("r.json")])

        // A fresh peer clones everything and checks the receipt offline.
        _ = try Self.identity(fresh, "dave")
        try fresh.ok(["sync", server.address])
        try fresh.ok(["verify", alice.dir.file("r.json"), "--datanet", "poems"])
        #expect(try fresh.ok(["cat", String(id.prefix(12))]) == "an ode to the sea")

        // A peer pinned to another key is refused before anything moves.
        let other = Session()
        _ = try Self.identity(other, "eve")
        try other.ok(["peer", "add", "hub", server.address, "--key", curatorKey])
        try other.refused(["sync", "hub"], "pinned")
        for bad in ["soon", "0", "-5d", "99999999d"] {
            let r = try alice.run(["sync", "hub", "--proposal-max-age", bad])
            #expect(r.status == 2 && r.stderr.contains("--proposal-max-age takes a duration"), "\(bad): \(r.stderr)")
        }

        let (status, events) = server.stop()
        // (A session still closing — eve's, refused on her side — may log after "stopping".)
        #expect(status == 0 && events.last == "stopped" && events.contains("stopping"), "\(status) \(events.suffix(3))")
        #expect(events.contains("sequenced") && events.contains("push") && events.contains("pull"))
    }

    /// A store synced with --records-only holds no content: `cat --offline` says so, `cat`
    /// fetches the one file from the peer, `export` fetches what it needs, and `fetch` the rest
    /// (by name prefix, then all), each then "here already".
    @Test func contentComesOnDemandAfterARecordsOnlySync() throws {
        let owner = Session(), reader = Session()
        _ = try Self.identity(owner, "owner")
        try owner.ok(["create", "notes"])
        var files = [String]()
        for (i, text) in ["alpha notes", "beta notes", "gamma notes"].enumerated() {
            files.append(owner.dir.file("n\(i).txt"))
            try text.write(toFile: files[i], atomically: true, encoding: .utf8)
        }
        try owner.ok(["contribute", "notes"] + files)
        try owner.ok(["sequence", "notes"])
        let ids = try #require(try owner.json(["status", "notes"]) as? [[String: Any]]).compactMap { $0["id"] as? String }
        try owner.ok(["review", "notes", "--accept"] + ids.map { String($0.prefix(12)) })
        try owner.ok(["sequence", "notes"])
        let server = try Server(owner)

        _ = try Self.identity(reader, "rita")
        try reader.ok(["peer", "add", "hub", server.address])
        try reader.ok(["sync", "hub", "--records-only"])
        let first = String(ids[0].prefix(12))
        try reader.refused(["cat", first, "--offline"], "not in this store")
        #expect(try reader.ok(["cat", first]) == "alpha notes")
        #expect(try reader.ok(["cat", first, "--offline"]) == "alpha notes", "kept once fetched")
        #expect(try reader.ok(["fetch", "notes", "n1"]).contains("fetched the content of 1 contribution(s)"))
        try reader.ok(["export", "notes", reader.dir.file("out")])
        #expect(try String(contentsOfFile: reader.dir.file("out/MANIFEST.jsonl"), encoding: .utf8).contains("n2.txt"))
        #expect(try reader.ok(["fetch", "notes"]).contains("here already"))
        try reader.ok(["verify", "--manifest", reader.dir.file("out")])
        let (status, _) = server.stop()
        #expect(status == 0)
        #expect(try reader.run(["fetch", "notes", "zzz"]).status == 1)
    }

    /// The same sequencer key signing two different logs of one size (a restored backup used
    /// in a second store): `sync` sees the fork in the peer's listed checkpoint, keeps the
    /// evidence, exchanges nothing and exits 1; `audit` then reports the fork.
    @Test func aForkSeenBySyncIsKeptAndReported() throws {
        let hub = Session(), copy = Session()
        _ = try Self.identity(hub, "owner")
        try hub.ok(["create", "tales", "--sequencer", "owner"])
        let pw = hub.dir.file("pw")
        writeFile(pw, Array("a long passphrase\n".utf8))
        try hub.ok(["id", "backup", "owner", "-o", hub.dir.file("owner.bak"), "--passphrase-file", pw])
        try copy.ok(["init"])
        try copy.ok(["id", "restore", hub.dir.file("owner.bak"), "--passphrase-file", pw])
        try copy.ok(["config", "identity", "owner"])
        let server = try Server(hub)
        try copy.ok(["sync", server.address])
        for (s, text) in [(hub, "the hub's tale"), (copy, "the copy's tale")] {
            let file = s.dir.file("tale.txt")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            try s.ok(["contribute", "tales", file])
            try s.ok(["sequence", "tales"])
        }
        let before = fileDigest(copy.store + "/data.mdb")
        let r = try copy.run(["sync", server.address])
        #expect(r.status == 1 && r.stderr.contains("FORK") && r.stdout.contains("in 0 leaves"), "\(r.stdout) \(r.stderr)")
        #expect(fileDigest(copy.store + "/data.mdb") != before, "the evidence was kept")
        let audit = try copy.run(["audit", "tales"])
        #expect(audit.status == 1 && audit.stdout.contains("✗ fork: 2 signed checkpoints"), "\(audit.stdout)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(try copy.run(["audit", "tales", "--json"]).stdout.utf8)) as? [String: Any])
        #expect((report["forks"] as? [[String: Any]])?.first?["notes"] as? [String] != nil, "the evidence in --json: \(report.keys)")
        // `verify --strict` leans on audit, which also checks the peer's observed checkpoint: it fails.
        let id = try #require((try copy.json(["status", "tales"]) as? [[String: Any]])?.first?["id"] as? String)
        try copy.ok(["receipt", String(id.prefix(12)), "-o", copy.dir.file("r.json")])
        let strict = try copy.run(["verify", copy.dir.file("r.json"), "--datanet", "tales", "--strict", "--json"])
        #expect(strict.status == 1 && strict.stdout.contains("audit of this store's log finds"), "\(strict.stdout.suffix(400))")
        _ = server.stop()
    }

    /// A peer pinned to a sequencer's key that comes back presenting the key the Datanet's log
    /// handed the sequencer over to is re-pinned (said on stderr); a key no log here hands over
    /// to is still refused with both keys shown.
    @Test func aPeerPresentingAHandedOverSequencerKeyIsRepinned() throws {
        let hub = Session(), ana = Session()
        _ = try Self.identity(hub, "owner")
        try hub.ok(["id", "new", "next"])
        try hub.ok(["id", "new", "stranger"])
        try hub.ok(["create", "tales", "--sequencer", "owner"])
        var server = try Server(hub)
        let address = server.address
        _ = try Self.identity(ana, "ana")
        try ana.ok(["peer", "add", "hub", address])
        try ana.ok(["sync", "hub"])
        // The owner hands the sequencer over to `next`; Ana's sync brings that leaf.
        try hub.ok(["policy", "tales", "set-sequencer", "next"])
        try hub.ok(["sequence", "tales"])
        try ana.ok(["sync", "hub"])
        _ = server.stop()
        // The hub now presents `next`: the pin moves, said once, and the sync goes on.
        server = try Server(hub, ["--as", "next"], listen: address)
        let r = try ana.run(["sync", "hub"])
        #expect(r.status == 0 && r.stderr.contains("hands its sequencer over to that key; re-pinned"), "\(r.stdout) \(r.stderr)")
        let nextKey = try #require((try hub.json(["id", "show", "next"]) as? [String: Any])?["ed25519"] as? String)
        #expect(try ana.ok(["peer", "ls"]).contains(nextKey))
        #expect(try ana.run(["sync", "hub"]).stderr.isEmpty)
        _ = server.stop()
        // A key no log hands over to is refused, both keys shown.
        server = try Server(hub, ["--as", "stranger"], listen: address)
        let refused = try ana.run(["sync", "hub"])
        #expect(refused.status != 0 && refused.stderr.contains(nextKey) && refused.stderr.contains("--repin"), "\(refused.stderr)")
        _ = server.stop()
    }

    /// Connections that never finish a handshake hold at most `--max-handshakes` slots, each
    /// for at most `--handshake-timeout`: past the cap a connection waits its turn, and once
    /// the silent one times out, the real peer is served. Bad values of both are usage errors.
    @Test func silentConnectionsCannotHoldTheServer() throws {
        let owner = Session(), peer = Session()
        _ = try Self.identity(owner, "owner")
        try owner.ok(["create", "quiet"])
        for bad in [["--max-handshakes", "0"], ["--handshake-timeout", "301"], ["--max-handshakes", "x"]] {
            let r = try owner.run(["serve"] + bad)
            #expect(r.status == 2 && r.stderr.contains(bad[0]), "\(bad): \(r.stderr)")
        }
        let server = try Server(owner, ["--max-handshakes", "1", "--handshake-timeout", "2"])
        _ = try Self.identity(peer, "pat")
        let silent = try TCPSocket.connect(host: "127.0.0.1", port: UInt16(server.address.split(separator: ":").last!)!)
        usleep(300_000)
        let start = Date()
        #expect(try peer.ok(["sync", server.address]).contains("synced 1 Datanet(s)"))
        let waited = Date().timeIntervalSince(start)
        #expect(waited > 1.2 && waited < 10, "served once the silent handshake timed out, after \(waited) s")
        _ = silent
        let (status, _) = server.stop()
        #expect(status == 0)
        let all = server.events()
        #expect(all.contains { $0["event"] as? String == "closed" && ($0["error"] as? String ?? "").contains("finish the handshake in 2 s") }, "\(all)")
    }
}

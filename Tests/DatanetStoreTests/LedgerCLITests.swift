import DatanetCrypto
import Foundation
import Glibc
import Testing

/// The governance commands and options end to end: `create --open/--allow/--sequencer`,
/// `contribute --label/--meta/--media-type`, `review` of many ids with `--reason`, every
/// `policy` change and `sign`, near-duplicates in `pending` and `show`, `log --from`,
/// `checkpoint [--observe]` and `continue` — with their refusals.
@Suite struct LedgerCLITests {
    final class Session {
        let dir = TempDir("ledger-cli")
        var store: String { dir.file("store") }

        func run(_ args: [String]) throws -> RunResult { try runDatanet(args, store: store) }

        @discardableResult
        func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try run(args)
            #expect(r.status == 0, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
            return r.stdout
        }

        func json(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Any {
            try JSONSerialization.jsonObject(with: Data(try ok(args + ["--json"], sourceLocation: sourceLocation).utf8))
        }

        /// A refusal: exit 1, one line on standard error naming the problem, the store unchanged.
        func refused(_ args: [String], _ words: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let before = fileDigest(store + "/data.mdb")
            let r = try run(args)
            #expect(r.status == 1 && r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(words),
                    "\(args): \(r.status) \(r.stderr)", sourceLocation: sourceLocation)
            #expect(fileDigest(store + "/data.mdb") == before, "\(args) changed the store", sourceLocation: sourceLocation)
        }

        func pending(_ d: String) throws -> [[String: Any]] { try json(["pending", d]) as? [[String: Any]] ?? [] }
        func size(_ d: String) throws -> Int {
            (try json(["datanets"]) as? [[String: Any]])?.first { $0["name"] as? String == d }?["size"] as? Int ?? -1
        }
    }

    /// 400 distinct words, and the same text with one word changed (Jaccard ≈ 0.975).
    static let text = (0..<400).map { "w\($0 * 7919 % 1000)" }.joined(separator: " ")
    static let nearCopy = text.replacingOccurrences(of: " w919 ", with: " edited ")

    /// `create` keeps the owner key cold: without --sequencer it makes a separate identity that
    /// sequences (and says so); --sequencer keeps the choice; a refused create leaves no identity.
    @Test func createMakesASeparateSequencerIdentity() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        let made = try #require(try s.json(["--as", "owner", "create", "songs"]) as? [String: Any])
        #expect(made["sequencer_identity"] as? String == "songs-sequencer")
        let ids = try #require(try s.json(["id", "ls"]) as? [[String: Any]])
        let owner = ids.first { $0["name"] as? String == "owner" }?["ed25519"] as? String
        let sequencer = ids.first { $0["name"] as? String == "songs-sequencer" }?["ed25519"] as? String
        #expect(owner != nil && sequencer != nil && owner != sequencer && made["sequencer"] as? String == sequencer)
        writeFile(s.dir.file("a.txt"), Array("a song".utf8))
        try s.ok(["--as", "owner", "contribute", "songs", s.dir.file("a.txt")])
        #expect(try s.ok(["sequence", "songs"]).contains("checkpoint size 2"))
        #expect(try s.ok(["--as", "owner", "create", "second"]).contains("sequencer: new identity second-sequencer"))
        // --sequencer names the key: no identity is made. A refused create makes none either.
        let chosen = try #require(try s.json(["--as", "owner", "create", "third", "--sequencer", "owner"]) as? [String: Any])
        #expect(chosen["sequencer_identity"] is NSNull && chosen["sequencer"] as? String == owner)
        #expect(try s.run(["--as", "owner", "create", "fourth", "--quorum", "3"]).status == 2)
        let after = try #require(try s.json(["id", "ls"]) as? [[String: Any]]).compactMap { $0["name"] as? String }
        #expect(after.sorted() == ["owner", "second-sequencer", "songs-sequencer"])
    }

    @Test func governanceThroughTheCommandLine() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "seq", "seq2", "cur1", "cur2", "alice", "bob"] { try s.ok(["id", "new", n]) }
        // An open Datanet has no allow list to deny from, nor a public one a reader list.
        try s.ok(["--as", "owner", "create", "open", "--open", "--curator", "cur1"])
        try s.refused(["--as", "owner", "policy", "open", "deny", "bob"], "open to every contributor")
        try s.refused(["--as", "owner", "policy", "open", "add-reader", "bob"], "is public")
        #expect(try s.run(["--as", "owner", "create", "x", "--open", "--allow", "alice"]).status == 2)

        // A closed Datanet: alice only, two curators with quorum 2, its own sequencer key; cur2
        // given as the public identity file `id export` writes.
        let cur2File = s.dir.file("cur2.json")
        writeFile(cur2File, Array(try s.ok(["id", "export", "cur2"]).utf8))
        try s.ok(["--as", "owner", "create", "birds", "--allow", "alice", "--curator", "cur1", "--curator", cur2File, "--quorum", "2", "--sequencer", "seq"])
        let info = try s.ok(["info", "birds"])
        for part in ["\ncurators:     cur", "cur1 (", "cur2 (", "quorum 2 of 2", "contribute:   alice (", "sequencer:    seq (", "read:         everyone (public)"] {
            #expect(info.contains(part), "\(part) not in \(info)")
        }
        let infoJSON = try #require(try s.json(["info", "birds"]) as? [String: Any])
        #expect((infoJSON["curators"] as? [[String: Any]])?.compactMap { $0["name"] as? String }.sorted() == ["cur1", "cur2"] && infoJSON["quorum"] as? Int == 2)
        writeFile(s.dir.file("bad.json"), Array("{\"type\": \"datanet/identity/v1\"}".utf8))
        let bad = try s.run(["--as", "owner", "create", "bad", "--curator", s.dir.file("bad.json")])
        #expect(bad.status == 2 && bad.stderr.contains("is not a valid public identity file"), "\(bad.stderr)")
        writeFile(s.dir.file("song.txt"), Array(Self.text.utf8))
        writeFile(s.dir.file("near.txt"), Array(Self.nearCopy.utf8))
        try s.refused(["--as", "bob", "contribute", "birds", s.dir.file("song.txt")], "may not contribute")
        let added = try s.json(["--as", "alice", "contribute", "birds", s.dir.file("song.txt"), "--label", "Dawn song", "--license", "CC-BY-4.0",
                                "--media-type", "text/plain", "--meta", "place=Kielder", "--meta", "year=2026"]) as? [[String: Any]]
        let a = try #require(added?.first?["id"] as? String)
        let near = try #require((try s.json(["--as", "alice", "contribute", "birds", s.dir.file("near.txt"), "--media-type", "text/plain"])
                                 as? [[String: Any]])?.first?["id"] as? String)
        // The near copy is flagged while queued and after intake, in text, JSON and `show`.
        #expect(try s.ok(["pending", "birds"]).contains("[near-duplicate of \(a)]"))
        #expect(try s.pending("birds").map { $0["stage"] as? String } == ["queued", "queued"])
        #expect(try s.pending("birds").first { $0["id"] as? String == near }?["near_duplicate_of"] as? String == a)
        let shown = try s.ok(["show", String(a.prefix(12))])
        for part in ["'song.txt' [Dawn song]", "CC-BY-4.0", "file name: song.txt", "meta place = Kielder", "meta year = 2026"] {
            #expect(shown.contains(part), "\(part) not in: \(shown)")
        }
        try s.ok(["sequence", "birds"])
        let waiting = try s.ok(["pending", "birds"])
        #expect(waiting.contains("awaiting review (quorum 2 of 2 curators)") && waiting.contains("[near-duplicate of \(a)]"), "\(waiting)")
        #expect(try s.pending("birds").map { $0["leaf"] as? Int } == [1, 2])
        #expect(try s.ok(["show", String(near.prefix(12))]).contains("near-duplicate of \(a)"))

        // One review deciding two contributions, with a reason; one curator of two is not the quorum.
        try s.ok(["--as", "cur1", "review", "birds", String(a.prefix(12)), String(near.prefix(12)), "accept", "--reason", "clear recordings"])
        #expect(try s.pending("birds").contains { ($0["summary"] as? String)?.hasSuffix("accept 2 by \(try Self.key(s, "cur1").prefix(12)): clear recordings") == true })
        #expect(try s.ok(["sequence", "birds"]).contains("checkpoint size 3"))
        // `status`: who has reviewed and what is still needed; what needs whose review.
        func status(_ args: [String]) throws -> [[String: Any]] { try #require(try s.json(args) as? [[String: Any]]) }
        let half = try status(["status", "birds", "--json"])
        #expect(half.map { $0["state"] as? String } == ["awaiting-review", "awaiting-review"] && half.map { $0["accepts_needed"] as? Int } == [1, 1])
        #expect((half[0]["reviews"] as? [[String: Any]])?.map { $0["reason"] as? String } == ["clear recordings"])
        #expect(half[0]["author"] as? String == (try Self.key(s, "alice")) && half[0]["files"] as? [String] == ["song.txt"])
        #expect(try status(["--as", "cur1", "status", "birds", "--to-review", "--json"]).isEmpty)
        #expect(try status(["--as", "cur2", "status", "birds", "--to-review", "--json"]).map { $0["id"] as? String } == [a, near])
        #expect(try s.ok(["--as", "cur2", "status", "birds", "--to-review"]).contains("2 awaiting-review"))
        try s.refused(["--as", "alice", "status", "birds", "--to-review"], "is not a curator of birds")
        #expect(try s.ok(["status", "birds"]).contains("awaiting review: reviewed by cur1 ("))
        // The flag form, with ids read from a file (prefixes are enough).
        writeFile(s.dir.file("ids.txt"), Array("\(a.prefix(12))\n\(near.prefix(10))\n".utf8))
        try s.ok(["--as", "cur2", "review", "birds", "--accept", "--ids-from", s.dir.file("ids.txt")])
        #expect(try s.run(["--as", "cur2", "review", "birds", "--accept", "--reject", String(a.prefix(12))]).status == 2)
        #expect(try s.ok(["sequence", "birds", "-v"]).components(separatedBy: "accepted by 2 curator(s)").count == 3)
        #expect(try s.ok(["pending", "birds"]).contains("nothing pending"))
        try s.refused(["--as", "cur1", "review", "birds", "--reject", String(a.prefix(12))], "was decided at leaf")
        let done = try status(["--as", "alice", "status", "--mine", "--json"])
        #expect(done.map { $0["state"] as? String } == ["accepted", "accepted"] && done.allSatisfy { ($0["reviews"] as? [Any])?.count == 2 })
        let mine = try s.ok(["--as", "alice", "show", String(a.prefix(12))])
        #expect(mine.contains("accepted at leaf") && mine.contains("cur1 (") && mine.contains("\"clear recordings\""), "\(mine)")
        #expect(try status(["--as", "bob", "status", "--mine", "--json"]).isEmpty)

        // A curator quorum gathers on one policy record: cur1 proposes, cur2 signs, then it applies.
        writeFile(s.dir.file("bob.txt"), Array("bob's notes".utf8))
        writeFile(s.dir.file("bob2.txt"), Array("bob's second notes".utf8))
        let allow = String(try s.ok(["--as", "cur1", "policy", "birds", "allow", "bob"]).prefix(64))
        #expect(try s.ok(["--as", "cur2", "sign", String(allow.prefix(12))]).contains("now signed by 2 key(s)"))
        #expect(try s.pending("birds").first?["signatures"] as? Int == 2)
        #expect(try s.ok(["sequence", "birds", "-v"]).contains("policy    7  \(allow)")) // after two review leaves and two decisions
        try s.refused(["--as", "owner", "policy", "birds", "allow", "bob"], "changes nothing")
        try s.ok(["--as", "bob", "contribute", "birds", s.dir.file("bob.txt")])
        // One curator's signature alone is refused when sequenced; the owner's suffices.
        try s.ok(["--as", "cur1", "policy", "birds", "add-curator", "bob"])
        let lone = try s.ok(["sequence", "birds"])
        #expect(lone.contains("refused") && lone.contains("quorum"), "\(lone)")
        try s.ok(["--as", "owner", "policy", "birds", "deny", "bob"])
        try s.ok(["sequence", "birds"])
        try s.refused(["--as", "bob", "contribute", "birds", s.dir.file("bob2.txt")], "may not contribute")
        // Readers: private first, then a reader list to add to and take from; public again.
        func isPrivate() throws -> Bool? { (try s.json(["datanets"]) as? [[String: Any]])?.first { $0["name"] as? String == "birds" }?["private"] as? Bool }
        for change in [["visibility", "private"], ["add-reader", "bob"], ["remove-reader", "bob"]] {
            try s.ok(["--as", "owner", "policy", "birds"] + change)
            try s.ok(["sequence", "birds"])
            #expect(try isPrivate() == true)
        }
        try s.refused(["--as", "owner", "policy", "birds", "remove-reader", "bob"], "changes nothing")
        try s.ok(["--as", "owner", "policy", "birds", "visibility", "public"])
        try s.ok(["sequence", "birds"])
        #expect(try isPrivate() == false)
        try s.refused(["--as", "owner", "policy", "birds", "quorum", "3"], "quorum 3 with 2 curator(s)")
        #expect(try s.run(["--as", "owner", "policy", "birds", "quorum", "many"]).status == 2)
        #expect(try s.run(["--as", "owner", "policy", "birds", "rename", "x"]).status == 2)

        // The sequencer key hands over: seq signs up to the handoff leaf, seq2 from then on.
        let handoffRecord = String(try s.ok(["--as", "owner", "policy", "birds", "set-sequencer", "seq2"]).prefix(64))
        let handoff = try s.ok(["sequence", "birds", "-v"])
        #expect(handoff.contains("policy") && handoff.contains(handoffRecord), "\(handoff)")
        writeFile(s.dir.file("later.txt"), Array("a later song".utf8))
        try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("later.txt")])
        #expect(try s.ok(["sequence", "birds"]).contains("1 taken in"))
        let size = try s.size("birds")
        let tail = try #require(try s.json(["log", "birds", "--from", String(size - 2)]) as? [[String: Any]])
        #expect(tail.map { $0["index"] as? Int } == [size - 2, size - 1])
        #expect(tail.map { $0["kind"] as? String } == ["set-sequencer", "intake"])
        // Our own newest checkpoint observed is consistent; the note with another root no longer verifies.
        let note = try s.ok(["checkpoint", "birds"])
        writeFile(s.dir.file("cp.txt"), Array(note.utf8))
        #expect(try s.ok(["checkpoint", "birds", "--observe", s.dir.file("cp.txt")]).contains("consistent"))
        var lines = note.components(separatedBy: "\n")
        let root = lines[2]
        lines[2] = Data(repeating: 0, count: 32).base64EncodedString()
        writeFile(s.dir.file("bad-cp.txt"), Array(lines.joined(separator: "\n").utf8))
        try s.refused(["checkpoint", "birds", "--observe", s.dir.file("bad-cp.txt")], "checkpoint refused")

        // seq2 is lost: the owner continues with seq, naming the log's current size and root.
        try s.refused(["--as", "owner", "continue", "birds", "--size", String(size - 1), "--root", root, "--sequencer", "seq"], "not this log's last state")
        #expect(try s.run(["--as", "owner", "continue", "birds", "--size", String(size)]).status == 2)
        try s.ok(["--as", "owner", "continue", "birds", "--size", String(size), "--root", root, "--sequencer", "seq"])
        writeFile(s.dir.file("last.txt"), Array("the last song".utf8))
        try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("last.txt")])
        #expect(try s.ok(["sequence", "birds"]).contains("checkpoint size \(size + 2)"))
        #expect(try s.ok(["audit", "birds"]).contains("every rule holds"))
    }

    static func key(_ s: Session, _ name: String) throws -> String {
        try #require((try s.json(["id", "show", name]) as? [String: Any])?["ed25519"] as? String)
    }
}

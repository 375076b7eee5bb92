import Foundation
import Glibc
import Testing

/// The daily workflow of issue 13: contributions named by id prefix or by the path contributed
/// (`cat`, `ls`, `stat`, `receipt`, `review`, `withdraw`), `ls DATANET[@SIZE]`, summaries by
/// default (`contribute`, `bundle import`), and `log` with -n, --all, --author, --kind.
@Suite struct WorkflowCLITests {
    typealias Session = LedgerCLITests.Session

    /// A Datanet `birds` (curator: owner) with alice's folder `songs/` (a.txt, b.txt) and file
    /// c.txt contributed and taken in. Returns (songs id, c.txt id).
    static func birds(_ s: Session) throws -> (songs: String, c: String) {
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "birds", "--curator", "owner"])
        try FileManager.default.createDirectory(atPath: s.dir.file("songs"), withIntermediateDirectories: true)
        writeFile(s.dir.file("songs/a.txt"), Array("the first song of the morning".utf8))
        writeFile(s.dir.file("songs/b.txt"), Array("a second song, at noon".utf8))
        writeFile(s.dir.file("c.txt"), Array("a third one for the evening".utf8))
        let made = try #require(try s.json(["--as", "alice", "contribute", "birds", s.dir.file("songs"), s.dir.file("c.txt")]) as? [[String: Any]])
        try s.ok(["sequence", "birds"])
        return (made[0]["id"] as! String, made[1]["id"] as! String)
    }

    @Test func contributionsByIdAndByPath() throws {
        let s = Session()
        let (songs, c) = try Self.birds(s)
        // cat: a contribution id prefix is its content; a contributed path; a path inside a folder.
        #expect(try s.ok(["cat", String(c.prefix(10))]) == "a third one for the evening")
        #expect(try s.ok(["cat", s.dir.file("c.txt")]) == "a third one for the evening")
        #expect(try s.ok(["cat", s.dir.file("songs/b.txt")]) == "a second song, at noon")
        #expect(try s.ok(["cat", s.dir.file("songs/./a.txt")]) == "the first song of the morning")
        #expect(try s.run(["cat", s.dir.file("songs/zzz.txt")]).stderr.contains("holds no 'zzz.txt'"))
        #expect(try s.run(["cat", String(songs.prefix(12))]).stderr.contains("is a folder"))
        // ls and stat of the folder contribution, by id and by path.
        #expect(try s.ok(["ls", String(songs.prefix(12))]) == "a.txt\nb.txt\n")
        #expect(try s.ok(["ls", s.dir.file("songs")]) == "a.txt\nb.txt\n")
        let tree = try #require(try s.json(["stat", String(songs.prefix(12))]) as? [String: Any])
        #expect(tree["kind"] as? String == "tree" && (tree["entries"] as? [Any])?.count == 2)
        // Nothing accepted yet at the newest checkpoint; review by paths (one inside the folder).
        #expect(try s.ok(["ls", "birds"]) == "")
        let reviewed = try s.ok(["--as", "owner", "review", "birds", "--accept", s.dir.file("c.txt"), s.dir.file("songs/a.txt")])
        #expect(reviewed.contains("is inside the folder contribution") && reviewed.contains("accept 2 contribution(s)"), "\(reviewed)")
        try s.ok(["sequence", "birds"])
        let files = try s.ok(["ls", "birds"]).split(separator: "\n")
        #expect(files == ["00000001-songs/a.txt", "00000001-songs/b.txt", "00000002-c.txt"], "\(files)")
        let long = try #require(try s.json(["ls", "birds"]) as? [[String: Any]])
        #expect(long.map { $0["contribution"] as? String } == [songs, songs, c])
        #expect(try s.ok(["ls", "birds@3"]) == "") // the checkpoint before the decisions
        // A receipt and a withdrawal by path; the folder's whole contribution is withdrawn.
        try s.ok(["receipt", s.dir.file("c.txt"), "-o", s.dir.file("c.receipt")])
        #expect(try s.ok(["verify", s.dir.file("c.receipt"), "--datanet", "birds"]).contains("receipt holds"))
        let withdrawn = try s.ok(["--as", "alice", "withdraw", "birds", s.dir.file("songs/b.txt")])
        #expect(withdrawn.contains("is inside the folder contribution") && withdrawn.contains("withdrawal of \(songs.prefix(16))"), "\(withdrawn)")
        try s.ok(["sequence", "birds"])
        #expect(try s.ok(["ls", "birds"]) == "00000002-c.txt\n")
        // pending and status name files, with sizes.
        writeFile(s.dir.file("d.txt"), Array("one more".utf8))
        try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("d.txt"), "--label", "late"])
        #expect(try s.ok(["pending", "birds"]).contains("contribution 'd.txt' [late]"))
        #expect(try s.ok(["status", "birds"]).contains("'d.txt'  8 B by alice"))
    }

    @Test func summariesAndLogListing() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "birds", "--curator", "owner"])
        try FileManager.default.createDirectory(atPath: s.dir.file("many"), withIntermediateDirectories: true)
        var paths = [String]()
        for i in 0..<24 {
            paths.append(s.dir.file("many/\(i).txt"))
            writeFile(paths.last!, Array("song number \(i) of a long day".utf8))
        }
        // A bulk contribution prints its summary, not 24 ids; a repeated file is counted.
        let bulk = try s.ok(["--as", "alice", "contribute", "birds"] + paths)
        #expect(bulk == "24 queued for birds; `datanet status birds --mine` lists them\n", "\(bulk)")
        let again = try s.ok(["--as", "alice", "contribute", "birds", paths[0]])
        #expect(again.hasSuffix("1 queued for birds; 1 exact duplicate of earlier contributions (the sequencer will reject it)\n"), "\(again)")
        try s.ok(["sequence", "birds"])
        let ids = try #require(try s.json(["pending", "birds"]) as? [[String: Any]]).compactMap { $0["id"] as? String }
        try s.ok(["--as", "owner", "review", "birds", "--accept", ids[0], ids[1]])
        try s.ok(["sequence", "birds"])
        let size = try s.size("birds")
        // The newest 20 by default, -n, --all, --kind, --author; every leaf in --json.
        let newest = try s.ok(["log", "birds"]).split(separator: "\n")
        #expect(Int(newest.first?.prefix(6).trimmingCharacters(in: .whitespaces) ?? "") == size - 20 && newest.contains { $0.contains("the newest 20 of \(size) leaves") }, "\(newest)")
        #expect(try s.ok(["log", "birds", "-n", "3"]).split(separator: "\n").prefix(3).map { Int($0.prefix(6).trimmingCharacters(in: .whitespaces)) } == [size - 3, size - 2, size - 1])
        #expect(try s.ok(["log", "birds", "--all"]).split(separator: "\n").filter { $0.first == " " && $0.contains("  ") }.count >= size)
        let intakes = try s.ok(["log", "birds", "--kind", "intake", "-n", "2"]).split(separator: "\n").filter { $0.contains("intake  ") }
        #expect(intakes.count == 2 && intakes.allSatisfy { $0.contains("by alice") })
        let byOwner = try #require(try s.json(["log", "birds", "--author", "owner"]) as? [[String: Any]])
        #expect(byOwner.map { $0["kind"] as? String } == ["policy", "review"], "\(byOwner)")
        let all = try #require(try s.json(["log", "birds"]) as? [[String: Any]])
        #expect(all.count == size)
        let accepted = try #require(all.first { $0["kind"] as? String == "intake" && $0["id"] as? String == ids[0] })
        #expect(accepted["state"] as? String == "accepted" && accepted["author"] is String && (accepted["files"] as? [String]) == ["0.txt"]
            && accepted["content"] is String, "\(accepted)")
        let duplicate = try #require(all.first { $0["kind"] as? String == "decision" && ($0["reason"] as? String)?.hasPrefix("duplicate of") == true })
        #expect(duplicate["state"] as? String == "rejected")
        #expect(try s.run(["log", "birds", "--kind", "intakes"]).status == 2)
        #expect(try s.run(["log", "birds", "-n", "2", "--all"]).status == 2)
        // A bundle imported twice: the second brings nothing new, and says so.
        let bundle = s.dir.file("b.bundle")
        #expect(try s.ok(["bundle", "export", "birds", "-o", bundle]).hasPrefix("exported birds ("))
        let other = Session()
        try other.ok(["init"])
        #expect(try other.ok(["bundle", "import", bundle]).contains("\(size) new leaves (0–\(size - 1))"))
        #expect(try other.ok(["bundle", "import", bundle]).hasPrefix("already up to date: birds"))
        // Content a bundle brought is the Datanet's, not junk an add left behind; stat counts it.
        let fsck = try other.ok(["fsck"])
        #expect(fsck.contains("store is sound") && !fsck.contains("unreferenced"), "\(fsck)")
        #expect(try other.ok(["stat"]).contains("contributions: 24 distinct contents named by Datanet records"))
        // verify --manifest: failures and a tally by default, every check with -v.
        try s.ok(["export", "birds", s.dir.file("x")])
        let quiet = try s.ok(["verify", "--manifest", s.dir.file("x")]).split(separator: "\n")
        #expect(quiet.count == 1 && quiet[0].hasPrefix("manifest holds — ") && quiet[0].hasSuffix("checks passed (-v lists each)"), "\(quiet)")
        #expect(try s.ok(["verify", "--manifest", s.dir.file("x"), "-v"]).split(separator: "\n").count > 3)
    }

    /// The bash script completes commands, options and subcommands from the command table;
    /// the zsh one names every command.
    @Test func shellCompletion() throws {
        let s = Session()
        let script = s.dir.file("c.bash")
        writeFile(script, Array(try s.ok(["completion", "bash"]).utf8))
        let probe = """
            source "$1"
            complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _datanet; echo "${COMPREPLY[*]}"; }
            complete_words datanet sta
            complete_words datanet --store x log birds --k
            complete_words datanet id im
            complete_words datanet review D --acc
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", probe, "probe", script]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let lines = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        p.waitUntilExit()
        #expect(Array(lines.prefix(4)) == ["stat status", "--kind", "import", "--accept"], "\(lines)")
        let zsh = try s.ok(["completion", "zsh"])
        #expect(zsh.hasPrefix("#compdef datanet"))
        // zsh parses it (tools/test installs zsh; a machine without it skips only this check).
        if access("/usr/bin/zsh", X_OK) == 0 {
            let file = s.dir.file("_datanet")
            writeFile(file, Array(zsh.utf8))
            let z = Process()
            z.executableURL = URL(fileURLWithPath: "/usr/bin/zsh")
            z.arguments = ["-n", file]
            try z.run()
            z.waitUntilExit()
            #expect(z.terminationStatus == 0)
        }
        for name in ["status", "contribute", "completion", "bundle"] { #expect(zsh.contains("        \(name)) _arguments")) }
        #expect(try s.run(["completion", "fish"]).status == 2)
    }

    /// Two stores trade bundles with no --since chosen by hand: `import --from` remembers how far
    /// the sender holds the Datanet, `export --for` sends what lies beyond; `--since-checkpoint`
    /// starts at a checkpoint the other side printed; a bundle that leaves a gap says how to fill it.
    @Test func bundlesWithoutBookkeeping() throws {
        let a = Session(), b = Session()
        try a.ok(["init"]); try b.ok(["init"])
        try a.ok(["id", "new", "owner"]); try b.ok(["id", "new", "alice"])
        let ownerFile = a.dir.file("owner.json"), aliceFile = b.dir.file("alice.json")
        writeFile(ownerFile, Array(try a.ok(["id", "export", "owner"]).utf8))
        writeFile(aliceFile, Array(try b.ok(["id", "export", "alice"]).utf8))
        try a.ok(["id", "import", aliceFile]); try b.ok(["id", "import", ownerFile])
        try a.ok(["--as", "owner", "create", "birds", "--private", "--reader", "alice"])
        let first = a.dir.file("1.bundle")
        try a.ok(["bundle", "export", "birds", "--for", "alice", "-o", first]) // sealed to alice: the Datanet is private
        #expect(try b.ok(["bundle", "import", first, "--from", "owner"]).contains("imported birds"))
        let size1 = try b.size("birds")
        // alice contributes; her bundle for the owner starts where the owner's bundle ended.
        writeFile(b.dir.file("song.txt"), Array("a song for the owner".utf8))
        try b.ok(["--as", "alice", "contribute", "birds", b.dir.file("song.txt")])
        let second = b.dir.file("2.bundle")
        let sent = try b.run(["bundle", "export", "birds", "--for", "owner", "-o", second])
        #expect(sent.status == 0 && sent.stderr.contains("owner holds birds up to size \(size1)") && sent.stdout.contains("no leaf, "), "\(sent)")
        #expect(try a.ok(["bundle", "import", second, "--from", "alice"]).contains("1 pending record"))
        try a.ok(["sequence", "birds"])
        let size2 = try a.size("birds")
        let third = a.dir.file("3.bundle")
        #expect(try a.ok(["bundle", "export", "birds", "--for", "alice", "-o", third]).contains("leaves \(size1)–\(size2 - 1)"))
        #expect(try b.ok(["bundle", "import", third, "--from", "owner"]).contains("new lea"))
        #expect(try b.size("birds") == size2)
        // A checkpoint note from the other side sets the start; one of another history is refused.
        writeFile(a.dir.file("cp"), Array(try b.ok(["checkpoint", "birds"]).utf8))
        #expect(try a.ok(["bundle", "export", "birds", "--since-checkpoint", a.dir.file("cp"), "--seal-to", "alice", "-o", a.dir.file("4.bundle")]).contains("no leaf"))
        try a.ok(["--as", "owner", "create", "other"])
        writeFile(a.dir.file("other-cp"), Array(try a.ok(["checkpoint", "other"]).utf8))
        #expect(try a.run(["bundle", "export", "birds", "--since-checkpoint", a.dir.file("other-cp"), "-o", a.dir.file("5.bundle")]).status == 1)
        #expect(try a.run(["bundle", "export", "birds", "--for", "alice", "--since", "2", "-o", a.dir.file("5.bundle")]).status == 2)
        // A bundle that starts past what a store holds names the gap and the way to fill it.
        let c = Session()
        try c.ok(["init"]); try c.ok(["id", "new", "carol"]); try c.ok(["--as", "carol", "create", "own"])
        try a.ok(["--as", "owner", "create", "public"])
        writeFile(a.dir.file("s.txt"), Array("a public song".utf8))
        try a.ok(["--as", "owner", "contribute", "public", a.dir.file("s.txt")])
        try a.ok(["sequence", "public"])
        try a.ok(["bundle", "export", "public", "--since", "1", "-o", a.dir.file("6.bundle")])
        try c.refused(["bundle", "import", a.dir.file("6.bundle")], "ask the sender for `datanet bundle export D --for YOU`")
    }

    /// `diff` between checkpoints: contributions accepted and withdrawn with their files, table
    /// rows added, removed and changed by --key (CSV by header, JSON Lines), malformed tables named.
    @Test func datasetDiffs() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        try s.ok(["config", "identity", "owner"])
        try s.ok(["create", "birds"])
        func file(_ name: String, _ text: String) -> String { writeFile(s.dir.file(name), Array(text.utf8)); return s.dir.file(name) }
        let first = [file("a.csv", "id,name,score\n1,ana,5\n2,ben,3\n"), file("t.txt", "hello\nworld\n"), file("j.jsonl", "{\"id\":1,\"w\":\"x\"}\n")]
        try s.ok(["contribute", "birds"] + first)
        try s.ok(["sequence", "birds"])
        try s.ok(["review", "birds", "--accept"] + first)
        try s.ok(["sequence", "birds"])
        let at = try s.size("birds")
        let second = [file("b.csv", "id,name,score\n2,ben,4\n3,cy,1\n"), file("k.jsonl", "{\"w\":\"z\",\"id\":3}\n"),
                      file("bad.csv", "id,name\n1,\"open\n")]
        try s.ok(["contribute", "birds"] + second)
        try s.ok(["withdraw", "birds", first[0]])
        try s.ok(["sequence", "birds"])
        try s.ok(["review", "birds", "--accept"] + second)
        try s.ok(["sequence", "birds"])
        let text = try s.ok(["diff", "birds@\(at)", "--key", "id"])
        for part in ["checkpoint \(at) → \(try s.size("birds")): 3 contribution(s) accepted, 1 withdrawn", "+ 00000008-b.csv  (3 lines)",
                     "table CSV [id,name,score]: +1 row(s), -1 row(s), ~1 changed (by id)", "~ 2: 2,ben,3 → 2,ben,4", "+ 3,cy,1", "- 1,ana,5",
                     "table JSON Lines: +1 row(s), -0 row(s)", "! 00000010-bad.csv: ", "a quoted field is not closed"] {
            #expect(text.contains(part), "\(part) not in:\n\(text)")
        }
        let json = try #require(try s.json(["diff", "birds@\(at)", "birds"]) as? [String: Any])
        let tables = try #require(json["tables"] as? [[String: Any]])
        #expect(tables.count == 2 && (tables[0]["added"] as? [Any])?.count == 2 && (tables[0]["removed"] as? [Any])?.count == 2)
        #expect(((json["contributions"] as? [String: Any])?["withdrawn"] as? [String])?.count == 1)
        #expect(try s.ok(["diff", "birds@\(at)", "birds@\(at)"]).contains("0 contribution(s) accepted, 0 withdrawn"))
        try s.ok(["create", "other"])
        #expect(try s.run(["diff", "birds@\(at)", "other@1"]).status == 2)
        #expect(try s.run(["diff", "birds"]).status == 2)
        #expect(try s.run(["diff", "birds@999"]).stderr.contains("no checkpoint of size 999"))
    }

    /// `export --format croissant|hf` writes its metadata beside a v2 manifest that verifies;
    /// `--update` refreshes in place (layout kept) and refuses a folder of another Datanet;
    /// an export with a v1 manifest (no header, no SHA-256) still verifies.
    @Test func exportLayoutsAndUpdates() throws {
        let s = Session()
        let (songs, c) = try Self.birds(s)
        try s.ok(["--as", "owner", "review", "birds", "--accept", c])
        try s.ok(["sequence", "birds"])
        let first = try s.size("birds")
        let dir = s.dir.file("x")
        #expect(try s.ok(["export", "birds", dir, "--format", "croissant"]).contains("croissant.json"))
        let croissant = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/croissant.json"))) as? [String: Any])
        #expect(croissant["conformsTo"] as? String == "http://mlcommons.org/croissant/1.1" && (croissant["version"] as? String)?.hasPrefix("\(first).0.0+") == true)
        #expect((croissant["distribution"] as? [[String: Any]])?.map { $0["contentUrl"] as? String } == ["data/00000002-c.txt"])
        let lines = try String(contentsOfFile: dir + "/MANIFEST.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("\"format\":\"datanet/manifest/v2\"") && lines[1].contains("\"sha256\":\""), "\(lines)")
        #expect(try s.ok(["verify", "--manifest", dir]).hasPrefix("manifest holds"))
        // The folder is accepted later: --update brings it in, keeping the croissant layout.
        try s.ok(["--as", "owner", "review", "birds", "--accept", songs])
        try s.ok(["sequence", "birds"])
        #expect(try s.ok(["export", "birds", dir, "--update"]).contains("1 contribution(s) added, 0 gone since the last export"))
        let updated = try String(contentsOfFile: dir + "/MANIFEST.jsonl", encoding: .utf8)
        #expect(updated.contains("\"layout\":\"croissant\"") && updated.contains("\"files\":[{\"path\":\"a.txt\""), "\(updated)")
        #expect(try s.ok(["verify", "--manifest", dir]).hasPrefix("manifest holds"))
        // A label the sidecar held here does not carry is caught.
        try updated.replacingOccurrences(of: "\"label\":\"c.txt\"", with: "\"label\":\"forged\"").write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        #expect(try s.run(["verify", "--manifest", dir]).stdout.contains("label or metadata differ"))
        try updated.write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        try s.ok(["--as", "owner", "create", "other"])
        #expect(try s.run(["export", "other", dir, "--update"]).stderr.contains("is not an export of Datanet"))
        #expect(try s.run(["export", "birds", s.dir.file("nothing"), "--update"]).status == 1)
        #expect(try s.run(["export", "birds", s.dir.file("y"), "--format", "parquet"]).status == 2)
        // hf: a card whose configs name the text files.
        try s.ok(["export", "birds", s.dir.file("h"), "--format", "hf"])
        let card = try String(contentsOfFile: s.dir.file("h/README.md"), encoding: .utf8)
        #expect(card.hasPrefix("---\npretty_name: \"birds\"\n") && card.contains("- config_name: text\n  default: true") && card.contains("\"data/00000002-c.txt\""), "\(card)")
        // A v1 manifest: the entries alone, without the v2 fields.
        let v1 = try updated.split(separator: "\n").dropFirst().map { line -> String in
            var o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for k in ["sha256", "files", "label", "metadata"] { o[k] = nil }
            return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
        }.joined(separator: "\n") + "\n"
        try v1.write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        #expect(try s.ok(["verify", "--manifest", dir]).hasPrefix("manifest holds"))
    }

    /// Bulk contributions: `contribute` warns when the quota will hold some back, over-quota
    /// proposals wait (deferred, said by `sequence` and `status`) and are taken in once earlier
    /// ones are decided; `--as-one` and `--split-every N` make folders of many files.
    @Test func bulkContributionsWaitForTheirQuota() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["config", "identity", "owner"])
        try s.ok(["create", "birds", "--max-pending", "3"])
        try FileManager.default.createDirectory(atPath: s.dir.file("many"), withIntermediateDirectories: true)
        let files = (1...10).map { i -> String in writeFile(s.dir.file("many/\(i).txt"), Array("song number \(i) of a long day".utf8)); return s.dir.file("many/\(i).txt") }
        let five = try s.run(["--as", "alice", "contribute", "birds"] + Array(files[0..<5]))
        #expect(five.status == 0 && five.stderr.contains("note: 2 of these will wait in the queue: birds takes in at most 3 undecided contributions per author"), "\(five.stderr)")
        #expect(try s.ok(["sequence", "birds"]).contains("3 taken in, 0 decided, 2 deferred (over their author's quota"))
        #expect(try s.ok(["status", "birds"]).contains("queued here, not yet taken in (waits: its author has 3 undecided of the 3 allowed"))
        let ids = try #require(try s.json(["status", "birds"]) as? [[String: Any]]).filter { $0["state"] as? String == "awaiting-review" }.compactMap { $0["id"] as? String }
        try s.ok(["review", "birds", "--accept"] + ids)
        try s.ok(["sequence", "birds"]) // decides the three
        #expect(try s.ok(["sequence", "birds"]).hasPrefix("2 taken in"))
        // --split-every 4 of a folder of 10: three folders; --as-one of two files: one folder named after their folder.
        let parts = try #require(try s.json(["--as", "alice", "contribute", "birds", s.dir.file("many"), "--split-every", "4"]) as? [[String: Any]])
        #expect(parts.map { $0["path"] as? String } == ["many-part-1", "many-part-2", "many-part-3"])
        #expect(try s.ok(["ls", parts[2]["id"] as! String]) == "8.txt\n9.txt\n") // name order: 1, 10, 2, …
        let one = try #require(try s.json(["--as", "alice", "contribute", "birds", files[0], files[9], "--as-one"]) as? [[String: Any]])
        let listed = try s.ok(["ls", one[0]["id"] as! String])
        #expect(one.count == 1 && one[0]["path"] as? String == "many" && listed == "1.txt\n10.txt\n")
        #expect(try s.run(["--as", "alice", "contribute", "birds", files[0], "--as-one", "--split-every", "2"]).status == 2)
        #expect(try s.run(["--as", "alice", "contribute", "birds", files[0], "--split-every", "0"]).status == 2)
    }
}

import DatanetCBOR
import DatanetCrypto
@testable import DatanetObjects
@testable import DatanetStore
import Foundation
import Glibc
import Testing

/// The command line end to end: outputs, exit codes, and bad input that must leave the store
/// byte for byte as it was.
@Suite struct CLITests {
    /// A store with one file and one folder added.
    func populated(_ dir: TempDir) throws -> (store: String, file: String, folder: String) {
        let store = dir.file("store")
        #expect(try runDatanet(["init"], store: store).status == 0)
        var rng = SplitMix64(seed: 11)
        writeFile(dir.file("f.bin"), rng.bytes(1_500_000))
        try FileManager.default.createDirectory(atPath: dir.file("folder/inner"), withIntermediateDirectories: true)
        writeFile(dir.file("folder/a.txt"), Array("hello\n".utf8))
        writeFile(dir.file("folder/inner/b.txt"), Array("world\n".utf8))
        let r = try runDatanet(["add", dir.file("f.bin"), dir.file("folder")], store: store)
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasSuffix("  " + dir.file("f.bin")))
        return (store, String(lines[0].prefix(64)), String(lines[1].prefix(64)))
    }

    @Test func addCatStatLsProveVerify() throws {
        let dir = TempDir()
        let (store, file, folder) = try populated(dir)
        let out = dir.file("copy")
        #expect(try runDatanet(["cat", String(file.prefix(10)), "-o", out], store: store).status == 0)
        #expect(FileManager.default.contents(atPath: out) == FileManager.default.contents(atPath: dir.file("f.bin")))
        let stat = try runDatanet(["stat", "--json", file], store: store)
        let blob = try #require(try JSONSerialization.jsonObject(with: Data(stat.stdout.utf8)) as? [String: Any])
        #expect(blob["size"] as? Int == 1_500_000)
        #expect((blob["chunks"] as? [Any])?.count ?? 0 > 1)
        let tree = try runDatanet(["stat", folder], store: store)
        #expect(tree.stdout.contains("a.txt") && tree.stdout.contains("inner"))
        let ls = try runDatanet(["ls", "--json"], store: store)
        #expect((try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [Any])?.count == 2)
        let totals = try runDatanet(["stat"], store: store)
        #expect(totals.stdout.contains("dedup ratio"))
        let proof = dir.file("proof.json")
        #expect(try runDatanet(["prove", file, "--chunk", "1", "-o", proof], store: store).status == 0)
        let v = try runDatanet(["verify", proof])
        #expect(v.status == 0 && v.stdout.hasPrefix("✓"))
        // Tampered: one digit of the root.
        var text = try String(contentsOfFile: proof, encoding: .utf8)
        let root = try #require((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["root"] as? String)
        text = text.replacingOccurrences(of: root, with: String(root.reversed()))
        try text.write(toFile: proof, atomically: true, encoding: .utf8)
        let bad = try runDatanet(["verify", proof])
        #expect(bad.status == 1 && bad.stdout.hasPrefix("✗"))
        #expect(try runDatanet(["fsck"], store: store).status == 0)
        #expect(try runDatanet(["compact"], store: store).status == 0)
        #expect(try runDatanet(["fsck"], store: store).status == 0)
        #expect(try runDatanet(["cat", file, "-o", out], store: store).status == 0)
        #expect(FileManager.default.contents(atPath: out) == FileManager.default.contents(atPath: dir.file("f.bin")))
    }

    @Test func everyCommandHasHelp() throws {
        let usage = try runDatanet(["--help"]).stdout
        for cmd in ["init", "add", "cat", "ls", "stat", "prove", "verify", "fsck", "compact", "gc", "id", "create", "contribute",
                    "review", "policy", "sign", "sequence", "continue", "withdraw", "takedown", "datanets", "pending", "log", "show",
                    "checkpoint", "receipt", "pin", "audit", "bundle", "export", "status", "info"] {
            let r = try runDatanet([cmd, "--help"], store: "/nonexistent")
            #expect(r.status == 0 && r.stdout.hasPrefix("usage: datanet"), "\(cmd)")
            // The top-level usage names every command.
            #expect(usage.contains("\n  \(cmd) ") || usage.contains("| \(cmd) ") || usage.contains("\n  \(cmd)|"), "\(cmd) missing from datanet --help")
        }
    }

    /// --version, and "did you mean" for mistyped commands and options and for git's words.
    @Test func versionAndSuggestions() throws {
        let v = try runDatanet(["--version"], store: "/nonexistent")
        #expect(v.status == 0 && v.stdout.hasPrefix("datanet ") && v.stdout.contains("receipts v2"))
        for (args, hint) in [(["stauts"], "did you mean `status`?"), (["seqence", "x"], "did you mean `sequence`?"),
                             (["push"], "`datanet bundle export D -o FILE`"), (["rm"], "`datanet withdraw D ID`"),
                             (["status", "--jsn"], "did you mean --json?"), (["review", "d", "--acept"], "did you mean --accept?")] {
            let r = try runDatanet(args, store: "/nonexistent")
            #expect(r.status == 2 && r.stderr.contains(hint) && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        let far = try runDatanet(["zzzz"], store: "/nonexistent")
        #expect(far.status == 2 && !far.stderr.contains("did you mean"))
    }

    /// Each bad input: a one-line error naming the problem, the right exit code, and the store's
    /// data file unchanged byte for byte.
    @Test func badInputLeavesTheStoreExactlyAsItWas() throws {
        let dir = TempDir()
        let (store, file, _) = try populated(dir)
        // Enough objects that a one-digit prefix is certainly ambiguous.
        for i in 0..<20 { writeFile(dir.file("n\(i)"), Array("note \(i)".utf8)) }
        #expect(try runDatanet(["add"] + (0..<20).map { dir.file("n\($0)") }, store: store).status == 0)
        try FileManager.default.createDirectory(atPath: dir.file("loop"), withIntermediateDirectories: true)
        symlink(dir.file("loop"), dir.file("loop/back"))
        symlink(dir.file("self1"), dir.file("self2")); symlink(dir.file("self2"), dir.file("self1"))
        writeFile(dir.file("garbage.json"), Array("{ not json".utf8))
        writeFile(dir.file("wrong.json"), Array(#"{"type": "x"}"#.utf8))
        mkfifo(dir.file("fifo"), 0o600)
        let cases: [([String], Int32, String)] = [
            (["frobnicate"], 2, "unknown command 'frobnicate'"),
            (["add", "--frob", dir.file("f.bin")], 2, "unknown option --frob"),
            (["add"], 2, "needs more arguments"),
            (["add", dir.file("f.bin"), dir.file("missing")], 1, "cannot read \(dir.file("missing")): No such file"),
            (["add", dir.file("loop")], 1, "symbolic link loop at \(dir.file("loop/back"))"),
            (["add", dir.file("self1")], 1, "symbolic link loop at \(dir.file("self1"))"),
            (["add", dir.file("fifo")], 1, "is not a regular file or folder"),
            (["cat", "xyz"], 1, "'xyz' is neither an id here nor a path this store added or contributed"),
            (["cat", "a"], 2, "id prefix a is ambiguous"),
            (["cat", String(repeating: "0", count: 64)], 1, "no object 0000"),
            (["stat", file + "00"], 1, "is neither an id here nor a path"),
            (["prove", file], 2, "prove needs --chunk N"),
            (["prove", file, "--chunk", "999"], 1, "out of range"),
            (["prove", file, "--chunk", "-3"], 2, "--chunk needs a non-negative integer"),
            (["verify", dir.file("garbage.json")], 1, "is neither a receipt nor a chunk proof"),
            (["verify", dir.file("wrong.json")], 1, "is neither a receipt nor a chunk proof: missing field"),
            (["verify", dir.file("nothing.json")], 1, "cannot read"),
            (["ls", "extra"], 1, "'extra' is neither an id here nor a path"),
            (["ls", "a", "b"], 2, "takes at most 1 argument"),
        ]
        for (args, code, message) in cases {
            let before = fileDigest(store + "/data.mdb")
            let r = try runDatanet(args, store: store)
            #expect(r.status == code, "\(args): exit \(r.status), \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            #expect(fileDigest(store + "/data.mdb") == before, "\(args) changed the store")
        }
        #expect(try runDatanet(["ls"], store: dir.file("nostore")).stderr.contains("no Datanet store"))
    }

    @Test func aStoreOfANewerFormatIsRefusedUntouched() throws {
        let dir = TempDir()
        let (storePath, _, _) = try populated(dir)
        do {
            let store = try ObjectStore(directory: storePath)
            try store.env.write { txn in try txn.put(store.meta, Array("format".utf8), [0, 0, 0, 9]) }
        }
        let before = fileDigest(storePath + "/data.mdb")
        for args in [["ls"], ["add", dir.file("f.bin")], ["fsck"], ["compact"]] {
            let r = try runDatanet(args, store: storePath)
            #expect(r.status == 1)
            #expect(r.stderr == "datanet: store format 9 is newer than this datanet supports (1); upgrade datanet\n")
        }
        #expect(fileDigest(storePath + "/data.mdb") == before)
    }

    /// Identities through the CLI: every command, the errors, and no private key in any output.
    @Test func identities() throws {
        let dir = TempDir()
        let store = dir.file("store")
        #expect(try runDatanet(["init"], store: store).status == 0)
        var outputs = [String]()
        func run(_ args: [String]) throws -> RunResult {
            let r = try runDatanet(args, store: store)
            outputs.append(r.stdout + r.stderr)
            return r
        }
        #expect(try run(["id", "new", "alice"]).status == 0)
        #expect(try run(["id", "new", "bob", "--json"]).stdout.contains("\"ed25519\""))
        #expect(try run(["id", "new", "alice"]).stderr.contains("already exists"))
        #expect(try run(["id", "show"]).status == 2) // two identities: --as needed
        let shown = try run(["--as", "bob", "id", "show", "--json"])
        #expect(shown.status == 0 && shown.stdout.contains("\"name\" : \"bob\""))
        let exported = try run(["id", "export", "alice"])
        #expect(exported.stdout.contains("\"type\" : \"datanet/identity/v1\""))
        let pw = dir.file("pw")
        writeFile(pw, Array("a long passphrase\n".utf8))
        let backup = dir.file("alice.bak")
        #expect(try run(["id", "backup", "alice", "-o", backup, "--passphrase-file", pw]).status == 0)
        #expect(try run(["id", "backup", "alice", "-o", backup, "--passphrase-file", pw]).status == 1) // never overwrites
        let noTTY = try run(["id", "backup", "alice", "-o", dir.file("other.bak")])
        #expect(noTTY.status == 2 && noTTY.stderr.contains("--passphrase-file"))
        // A short passphrase is refused (nothing written); a generated one is printed once and opens it.
        writeFile(dir.file("short"), Array("hunter2\n".utf8))
        let short = try run(["id", "backup", "alice", "-o", dir.file("short.bak"), "--passphrase-file", dir.file("short")])
        #expect(short.status == 1 && short.stderr.contains("at least 12") && !FileManager.default.fileExists(atPath: dir.file("short.bak")))
        let generated = try run(["id", "backup", "alice", "-o", dir.file("gen.bak"), "--generate-passphrase", "--json"])
        let phrase = try #require((try JSONSerialization.jsonObject(with: Data(generated.stdout.utf8)) as? [String: Any])?["passphrase"] as? String)
        writeFile(dir.file("gen"), Array((phrase + "\n").utf8))
        let keyFile = store + "/identities/alice.key"
        let keyBytes = try #require(FileManager.default.contents(atPath: keyFile))
        try FileManager.default.removeItem(atPath: keyFile)
        writeFile(dir.file("wrong"), Array("not it".utf8))
        #expect(try run(["id", "restore", backup, "--passphrase-file", dir.file("wrong")]).stderr.contains("wrong passphrase"))
        #expect(try run(["id", "restore", dir.file("gen.bak"), "--passphrase-file", dir.file("gen")]).status == 0)
        #expect(FileManager.default.contents(atPath: keyFile) == keyBytes)
        try FileManager.default.removeItem(atPath: keyFile)
        #expect(try run(["id", "restore", backup, "--passphrase-file", pw]).status == 0)
        #expect(FileManager.default.contents(atPath: keyFile) == keyBytes)
        chmod(keyFile, 0o644)
        let unsafe = try run(["id", "show", "alice"])
        #expect(unsafe.status == 1 && unsafe.stderr.contains("chmod 600"))
        chmod(keyFile, 0o600)
        // The Ed25519 seed (field 2 of the key file, schema/identity.md) must appear in no output.
        let all = try run(["id", "ls", "--json"]).stdout + (try run(["id", "show", "alice"]).stdout)
        guard case .map(let fields) = try CBOR.decode(Array(keyBytes)) else { Issue.record("key file is not a map"); return }
        let seedHex = Hex.encode(try #require(fields.first { $0.key == .unsigned(2) }?.value.bytesValue))
        #expect(seedHex.count == 64)
        #expect(!(outputs.joined() + all).contains(seedHex))
    }

    /// A Datanet's life through the CLI in one store holding every identity.
    @Test func datanetLifecycle() throws {
        let dir = TempDir()
        let store = dir.file("store")
        func run(_ args: [String]) throws -> RunResult { try runDatanet(args, store: store) }
        #expect(try run(["init"]).status == 0)
        for n in ["owner", "cur1", "cur2", "alice", "mallory"] { #expect(try run(["id", "new", n]).status == 0) }
        try FileManager.default.createDirectory(atPath: dir.file("folder"), withIntermediateDirectories: true)
        writeFile(dir.file("folder/x.txt"), Array("x".utf8))
        writeFile(dir.file("a.txt"), Array("the dawn chorus".utf8))
        let created = try run(["--as", "owner", "create", "birds", "--curator", "cur1,cur2", "--quorum", "2"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try run(["--as", "owner", "create", "x", "--curator", "cur1", "--quorum", "2"]).status == 2)
        let contributed = try run(["--as", "alice", "contribute", "birds", dir.file("a.txt"), dir.file("folder"), "--license", "CC0-1.0", "--json"])
        #expect(contributed.status == 0, "\(contributed.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(contributed.stdout.utf8)) as? [[String: Any]])
        let a = try #require(rows.first?["id"] as? String)
        #expect(try run(["--as", "cur1", "contribute", "birds", dir.file("a.txt")]).status == 0) // an exact copy
        let seq = try run(["sequence", "birds", "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(seq.stdout.utf8)) as? [String: Any])
        #expect((report["intakes"] as? [Any])?.count == 3)
        #expect(((report["decisions"] as? [[String: Any]])?.first?["reason"] as? String)?.hasPrefix("duplicate of \(a)") == true)
        // Errors: a non-curator review, a bad verdict, an unknown Datanet, a replay.
        #expect(try run(["--as", "mallory", "review", "birds", String(a.prefix(12)), "accept"]).stderr.contains("not a curator"))
        #expect(try run(["--as", "cur1", "review", "birds", String(a.prefix(12)), "maybe"]).status == 2)
        #expect(try run(["pending", "nosuch"]).status == 1)
        for c in ["cur1", "cur2"] { #expect(try run(["--as", c, "review", "birds", String(a.prefix(12)), "accept"]).status == 0) }
        let seqOut = try run(["sequence", "birds"]).stdout
        #expect(seqOut == "0 taken in, 1 decided (1 accepted, 0 rejected); checkpoint size 8 (new leaves 5–7)\n", "\(seqOut)")
        // Remove a curator: lower the quorum (owner), then remove cur2 (owner).
        #expect(try run(["--as", "owner", "policy", "birds", "quorum", "1"]).status == 0)
        #expect(try run(["sequence", "birds", "-v"]).stdout.contains("policy    8"))
        #expect(try run(["--as", "owner", "policy", "birds", "remove-curator", "cur2"]).status == 0)
        _ = try run(["sequence", "birds"])
        let datanets = try run(["datanets", "--json"]).stdout
        #expect(datanets.contains("\"curators\" : 1"))
        let log = try run(["log", "birds", "--json"])
        let leaves = try #require(try JSONSerialization.jsonObject(with: Data(log.stdout.utf8)) as? [[String: Any]])
        #expect(leaves.map { $0["kind"] as? String } == ["policy", "intake", "intake", "intake", "decision", "review", "review", "decision", "policy", "policy"])
        let show = try run(["show", String(a.prefix(10)), "--json"])
        #expect(show.stdout.contains("\"intake_promise_valid\" : true") && show.stdout.contains("\"decision_leaf\" : 7"))
        // Only a store holding the sequencer key can sequence.
        let other = dir.file("other")
        #expect(try runDatanet(["init"], store: other).status == 0)
        #expect(try runDatanet(["sequence", "birds"], store: other).status == 1)

        // A receipt verifies anchored at the Datanet, in a store that holds nothing of it.
        let id = try #require((try JSONSerialization.jsonObject(with: Data(datanets.utf8)) as? [[String: Any]])?.first?["id"] as? String)
        let receipt = dir.file("receipt.json")
        #expect(try run(["receipt", String(a.prefix(12)), "-o", receipt]).status == 0)
        let anchored = try runDatanet(["verify", receipt, "--datanet", id], store: other)
        #expect(anchored.status == 0 && anchored.stdout.hasPrefix("anchored at \(id)"), "\(anchored.stdout)")
        let bare = try runDatanet(["verify", receipt], store: other)
        #expect(bare.status == 1 && bare.stdout.hasPrefix("NOT ANCHORED"))
        #expect(try runDatanet(["verify", receipt, "--self-contained"], store: other).status == 0)
        #expect(try runDatanet(["pin", id], store: other).status == 0)
        // The first holding receipt of a pinned Datanet is remembered (trust on first use); the
        // same checkpoint again agrees with it and changes nothing.
        let firstSeen = try runDatanet(["verify", receipt, "--json"], store: other).stdout
        #expect(firstSeen.contains("\"valid\" : true") && firstSeen.contains("\"remembered_checkpoint\" : true"), "\(firstSeen)")
        let again = try runDatanet(["verify", receipt], store: other).stdout
        #expect(again.contains("✓ consistent with the newest checkpoint seen") && !again.contains("remembered its checkpoint"), "\(again)")
        #expect(try run(["pin", id]).stdout.contains("remembering its checkpoint of size"))
        // One value changed: the check guarding it fails, and the exit code says so.
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: receipt))) as? [String: Any])
        object["contribution"] = String(repeating: "0", count: 64)
        writeFile(receipt, Array(try JSONSerialization.data(withJSONObject: object)))
        let tampered = try runDatanet(["verify", receipt], store: other)
        #expect(tampered.status == 1 && tampered.stdout.contains("✗ intake leaf"), "\(tampered.stdout)")
        // Bad input: a missing file, a file that is neither receipt nor proof, an unknown id.
        #expect(try runDatanet(["verify", dir.file("nothing.json")], store: other).status == 1)
        writeFile(dir.file("junk.json"), Array("{\"type\": 3}".utf8))
        #expect(try runDatanet(["verify", dir.file("junk.json")], store: other).stderr.contains("neither a receipt nor a chunk proof"))
        #expect(try run(["receipt", "ffff"]).status == 1)
        #expect(try run(["receipt"]).status == 2)

        // A private Datanet travels only sealed, and only to someone who may read it.
        #expect(try runDatanet(["id", "new", "reader"], store: other).status == 0)
        let readerFile = dir.file("reader.json")
        writeFile(readerFile, Array(try runDatanet(["id", "export", "reader"], store: other).stdout.utf8))
        let readerKey = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: readerFile))) as? [String: Any])?["ed25519"] as? String)
        #expect(try run(["--as", "owner", "create", "secret", "--private", "--reader", readerKey]).status == 0)
        let sealed = dir.file("secret.bundle")
        #expect(try run(["bundle", "export", "secret", "-o", sealed]).stderr.contains("is private"))
        #expect(try run(["bundle", "export", "secret", "--seal-to", "mallory", "-o", sealed]).stderr.contains("may not read"))
        #expect(try run(["bundle", "export", "secret", "--seal-to", readerFile, "-o", sealed]).status == 0)
        #expect(!(try String(contentsOfFile: sealed, encoding: .isoLatin1)).contains("secret"))
        let third = dir.file("third")
        #expect(try runDatanet(["init"], store: third).status == 0)
        #expect(try runDatanet(["bundle", "import", sealed], store: third).stderr.contains("not to any identity"))
        #expect(try runDatanet(["bundle", "import", sealed], store: other).status == 0)
        #expect(try runDatanet(["datanets"], store: other).stdout.contains("secret"))

        // Export, withdraw, audit and gc through the command line, with their error paths.
        let out = dir.file("export")
        #expect(try run(["export", "birds", out]).status == 0)
        #expect(try run(["verify", "--manifest", out]).stdout.contains("manifest holds"))
        #expect(try run(["export", "birds", out]).status == 1) // the folder exists
        #expect(try run(["export", "birds@x", dir.file("x")]).status == 2)
        #expect(try run(["verify", "--manifest", dir.file("nothing")]).status == 1)
        #expect(try run(["--as", "alice", "takedown", "birds", String(a.prefix(12))]).status == 2) // no --reason
        let stranger = try run(["--as", "mallory", "withdraw", "birds", String(a.prefix(12))]) // no role: not taken in
        #expect(stranger.status == 1 && stranger.stderr.contains("holds a role for it"), "\(stranger.stderr)")
        #expect(try run(["--as", "alice", "withdraw", "birds", String(a.prefix(12)), "--reason", "mine"]).status == 0)
        let withdrawn = try run(["sequence", "birds", "--json"])
        #expect(withdrawn.stdout.contains("\"tombstones\" : [") && withdrawn.stdout.contains(a))
        #expect(try run(["audit", "birds"]).stdout.contains("every rule holds"))
        let dry = try run(["gc", "--dry-run", "--json"])
        let gcReport = try #require(try JSONSerialization.jsonObject(with: Data(dry.stdout.utf8)) as? [String: Any])
        #expect((gcReport["sweep"] as? [String: Any])?["blobs"] as? Int == 1 && gcReport["tombstoned"] as? Int == 1, "\(dry.stdout)")
        #expect(try run(["gc"]).stdout.contains("deleted"))
    }
}

import DatanetCrypto
import DatanetLedger
import DatanetObjects
import DatanetRecords
import DatanetStore
import Foundation
import Glibc
import Testing

/// The hardening issue's defects as a user meets them, through the command line: paths that
/// are not UTF-8, control characters in fields and in what other stores send, media types and
/// duplicates in `pending`, keys that cannot sign, and the small ones (compact's file mode, a
/// FIFO or a damaged file among the key files).
@Suite struct HardeningCLITests {
    typealias Session = LedgerCLITests.Session

    /// Runs a shell script with `$DATANET` set to the binary and DATANET_DIR to the store, so a
    /// test can pass arguments that are not valid UTF-8 (`"$(printf 'a\377')"`).
    static func shell(_ script: String, _ s: Session) throws -> RunResult {
        try runDatanet([], store: s.store, env: ["DATANET": datanetBinary], shellPrefix: script + "; exit $?;")
    }

    /// Temporary files for atomic replaces (bundle export, `cat -o`, `--json -o`) were named
    /// `FILE.tmp-<pid>` and opened with O_TRUNC, following links: a symlink planted under that
    /// name made the command overwrite its target. They are now created exclusively, under a
    /// random name, without following links.
    @Test func temporaryFilesNeverFollowOrTruncateWhatIsThere() throws {
        let dir = NSTemporaryDirectory() + "datanet-tmp-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = dir + "/victim", out = dir + "/out.bundle"
        #expect(FileManager.default.createFile(atPath: victim, contents: Data("keep me".utf8)))
        #expect(symlink(victim, out + ".tmp-\(getpid())") == 0) // the old, predictable name
        var made = Set<String>()
        for _ in 0..<4 {
            let (fd, path) = try createTemporaryFile(beside: out)
            #expect(write(fd, "x", 1) == 1)
            close(fd)
            var st = stat()
            #expect(lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && path.hasPrefix(out + ".tmp-"))
            made.insert(path)
        }
        #expect(made.count == 4)
        #expect(FileManager.default.contents(atPath: victim) == Data("keep me".utf8))
    }

    @Test func pathsThatAreNotUTF8() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "names", "--curator", "owner"])
        let setup = """
            mkdir -p "$DATANET_DIR/../src/dir" && cd "$DATANET_DIR/../src" && printf x > "dir/a$(printf '\\377')" && \
            printf y > "dir/a$(printf '\\376')" && printf z > "b$(printf '\\377').txt"
            """
        #expect(try Self.shell(setup, s).status == 0)
        // `add` of a path that exists but is not UTF-8 (it said "No such file or directory").
        let added = try Self.shell(#"cd "$DATANET_DIR/../src" && "$DATANET" add "$(printf 'b\377.txt')" dir"#, s)
        #expect(added.status == 0 && added.stdout.contains("b%FF.txt") && added.stdout.contains("  dir"), "\(added.stderr)")
        let contributed = try Self.shell(#"cd "$DATANET_DIR/../src" && "$DATANET" --as alice contribute names dir "$(printf 'b\377.txt')""#, s)
        #expect(contributed.status == 0, "\(contributed.stderr)")
        let lines = contributed.stdout.split(separator: "\n")
        let ids = lines.dropLast().map { String($0.prefix(64)) }
        #expect(ids.count == 2 && lines.last == "2 queued for names", "\(lines)")
        try s.ok(["sequence", "names"])
        try s.ok(["--as", "owner", "review", "names"] + ids + ["accept"])
        try s.ok(["sequence", "names"])
        // The whole Datanet exports (two names differing only in invalid bytes no longer
        // collide) and the fresh export verifies.
        let out = s.dir.file("export")
        try s.ok(["export", "names", out])
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/data").sorted()
        #expect(files.count == 2 && files[0].hasSuffix("-dir") && files[1].hasSuffix("-b%FF.txt"), "\(files)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/data/" + files[0]).sorted() == ["a%FE", "a%FF"])
        #expect(try s.ok(["verify", "--manifest", out]).contains("manifest holds"))
    }

    @Test func controlCharactersAreRefusedAndEscaped() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.refused(["--as", "owner", "create", "birds\u{1b}[2J"], "control character U+001B")
        try s.refused(["--as", "owner", "create", "two\nlines"], "control character U+000A")
        try s.ok(["--as", "owner", "create", "birds", "--curator", "owner"])
        writeFile(s.dir.file("song.txt"), Array("a song".utf8))
        for (option, value) in [("--label", "a\nb"), ("--license", "MIT\u{1b}[31m"), ("--media-type", "text/plain\r"), ("--meta", "k=v\u{7}"),
                                ("--label", "left\u{202e}right")] {
            try s.refused(["--as", "alice", "contribute", "birds", s.dir.file("song.txt"), option, value], "control character")
        }
        let id = String(try s.ok(["--as", "alice", "contribute", "birds", s.dir.file("song.txt")]).prefix(64))
        try s.refused(["--as", "owner", "review", "birds", id, "reject", "--reason", "no\u{1b}]0;pwned\u{7}"], "control character")
        // A contribution made elsewhere with a hostile label, license and file name: what the
        // commands print carries no control character and no extra line.
        let ledger = try Ledger(store: try ObjectStore(directory: s.store))
        let d = try ledger.reader.resolveDatanet("birds").id
        let key = try SigningKey()
        let side = try ledger.storeSidecar(Sidecar(label: "evil\u{1b}[2J\nFAKE LINE", fileName: "x\u{1b}[31m.txt", metadata: ["k\n": "\u{9b}v"]))
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: d, author: key.publicKey, content: ObjectID(SHA256.hash([1])), contentKind: .blob, size: 1, mediaType: "text/plain",
            license: "MIT\n\u{1b}[1mFAKE", sidecar: side, createdAt: 9).body)
        try e.sign(with: key)
        let hostile = try ledger.propose(e)
        for args in [["pending", "birds"], ["show", hostile.hex], ["log", "birds"]] {
            let text = try s.ok(args)
            #expect(!text.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x9b }, "\(args)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("FAKE") }, "\(args): \(text)")
        }
        #expect(try s.ok(["pending", "birds"]).contains("evil\\u{1B}[2J\\u{A}FAKE LINE"))
    }

    @Test func mediaTypesAndDuplicatesInPending() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "texts", "--curator", "owner"])
        writeFile(s.dir.file("gpl.txt"), Array(LedgerCLITests.text.utf8))
        // A reflowed copy (other line breaks) and an exact copy, no --media-type given.
        writeFile(s.dir.file("reflowed.md"), Array(LedgerCLITests.nearCopy.replacingOccurrences(of: " ", with: "\n").utf8))
        writeFile(s.dir.file("copy"), Array(LedgerCLITests.text.utf8))
        let ids = try ["gpl.txt", "reflowed.md", "copy"].map { String(try s.ok(["--as", "alice", "contribute", "texts", s.dir.file($0)]).prefix(64)) }
        let ledger = try Ledger(store: try ObjectStore(directory: s.store), create: false)
        let types = try ids.map { id -> String in
            guard case .contribution(let c)? = try ledger.reader.record(try #require(RecordID(hex: id))).map({ try Record($0) }) else { return "?" }
            return c.mediaType
        }
        #expect(types == ["text/plain", "text/markdown", "text/plain"])
        let pending = try s.ok(["pending", "texts"])
        #expect(pending.contains("\(ids[1])  ") && pending.contains("[near-duplicate of \(ids[0])]"), "\(pending)")
        #expect(pending.contains("[exact duplicate of \(ids[0])]"), "\(pending)")
        let rows = try #require(try s.json(["pending", "texts"]) as? [[String: Any]])
        #expect(rows.first { $0["id"] as? String == ids[2] }?["exact_duplicate_of"] as? String == ids[0])
    }

    @Test func keysThatCannotSignAreRefused() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        for bad in ["0100000000000000000000000000000000000000000000000000000000000000",
                    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"] {
            let r = try s.run(["--as", "owner", "create", "x", "--curator", bad])
            #expect(r.status == 2 && r.stderr.contains("not a usable Ed25519 public key"), "\(r.stderr)")
        }
    }

    /// A store that never held a ledger gets its tables on the first command that writes one;
    /// when that command is refused (a bundle that is not one, a Datanet it does not know) the
    /// tables are dropped again, so the store holds exactly the tables it held before. A
    /// command that succeeds keeps them.
    @Test func refusedCommandsLeaveAFreshStoreAsItWas() throws {
        let s = Session()
        try s.ok(["init"])
        func tables() throws -> [String] {
            let store = try ObjectStore(directory: s.store)
            return try store.env.read { try $0.tableNames(prefix: "") }
        }
        let before = try tables()
        writeFile(s.dir.file("junk"), Array("not a bundle".utf8))
        for args in [["bundle", "import", s.dir.file("junk")], ["sequence", "nothing-here"], ["bundle", "import", s.dir.file("absent")]] {
            let r = try s.run(args)
            #expect(r.status != 0 && !r.signaled, "\(args): \(r.stderr)")
            #expect(try tables() == before, "\(args) left tables behind")
        }
        try s.ok(["id", "new", "owner"])
        try s.ok(["--as", "owner", "create", "kept"])
        #expect(try tables().contains("records"))
    }

    @Test func smallOnes() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["alice", "bob"] { try s.ok(["id", "new", n]) }
        // compact keeps the data file private (0644 under umask 022 before).
        let r = try runDatanet(["compact"], store: s.store, shellPrefix: "umask 022;")
        #expect(r.status == 0, "\(r.stderr)")
        var st = stat()
        #expect(stat(s.store + "/data.mdb", &st) == 0 && st.st_mode & 0o777 == 0o600)
        // A FIFO among the key files: `id ls` answers at once, naming it; so does a damaged file.
        #expect(mkfifo(s.store + "/identities/fifo.key", 0o600) == 0)
        let fd = open(s.store + "/identities/broken.key", O_WRONLY | O_CREAT | O_EXCL, 0o600)
        _ = write(fd, "not cbor", 8)
        close(fd)
        let ls = try runDatanet(["id", "ls"], store: s.store, shellPrefix: "timeout 20 \"$0\" \"$@\"; exit $?;")
        #expect(ls.status == 1 && ls.stdout.contains("alice") && ls.stdout.contains("bob"), "\(ls.status) \(ls.stderr)")
        #expect(ls.stderr.contains("broken.key") && ls.stderr.contains("fifo.key") && ls.stderr.contains("not a regular file"), "\(ls.stderr)")
    }

    @Test func manifestsAndReceiptsSayWhatTheyCouldNotCheck() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "alice"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "songs", "--curator", "owner"])
        writeFile(s.dir.file("song.txt"), Array("a song".utf8))
        let id = String(try s.ok(["--as", "alice", "contribute", "songs", s.dir.file("song.txt")]).prefix(64))
        try s.ok(["sequence", "songs"])
        try s.ok(["--as", "owner", "review", "songs", id, "accept"])
        try s.ok(["sequence", "songs"])
        try s.ok(["export", "songs", s.dir.file("x")])
        try s.ok(["receipt", id, "-o", s.dir.file("r.json")])
        // Elsewhere (a store without the log) the manifest cannot be checked: it fails, unless
        // --content-only, which says so.
        let other = TempDir("elsewhere")
        _ = try runDatanet(["init"], store: other.file("store"))
        let fail = try runDatanet(["verify", "--manifest", s.dir.file("x")], store: other.file("store"))
        #expect(fail.status == 1 && fail.stdout.contains("cannot check acceptance"), "\(fail.stdout)")
        let only = try runDatanet(["verify", "--manifest", s.dir.file("x"), "--content-only"], store: other.file("store"))
        #expect(only.status == 0 && only.stdout.contains("manifest holds (CONTENT ONLY"), "\(only.stdout)")
        #expect(try runDatanet(["verify", s.dir.file("r.json"), "--content-only"], store: other.file("store")).status == 2)
        // Withdrawn here: receipt and manifest fail unless --allow-withdrawn.
        try s.ok(["pin", "songs"])
        #expect(try s.run(["verify", s.dir.file("r.json")]).status == 0)
        try s.ok(["--as", "alice", "withdraw", "songs", id])
        try s.ok(["sequence", "songs"])
        let r = try s.run(["verify", s.dir.file("r.json")])
        #expect(r.status == 1 && r.stdout.contains("✗ not withdrawn: withdrawn at leaf"), "\(r.stdout)")
        #expect(try s.run(["verify", s.dir.file("r.json"), "--allow-withdrawn"]).status == 0)
        #expect(try s.run(["verify", "--manifest", s.dir.file("x")]).status == 1)
        #expect(try s.run(["verify", "--manifest", s.dir.file("x"), "--allow-withdrawn"]).status == 0)
    }
}

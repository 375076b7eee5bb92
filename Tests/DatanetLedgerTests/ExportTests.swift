import DatanetCrypto
@testable import DatanetLedger
import DatanetObjects
@testable import DatanetRecords
import DatanetStore
import DatanetTestSupport
import Foundation
import Glibc
import Testing

/// `export` writes what a trainer elsewhere needs; `verify --manifest` catches any edit, and
/// fails where it cannot check acceptance unless asked for the content alone.
@Suite struct ExportTests {
    static func failing(_ v: ManifestVerification) -> [String] { v.checks.filter { !$0.holds }.map(\.name) }

    @Test func exportedManifestVerifiesAndEditsFail() throws {
        let (w, c) = try BundleTests.world()
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let x = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        #expect(x.entries.map(\.contribution) == [c.id.hex])
        #expect(x.entries[0].intakeIndex == 1 && x.entries[0].license == "CC0-1.0")
        let path = dir + "/" + x.entries[0].path
        #expect(FileManager.default.contents(atPath: path) == Data("a song of the dawn".utf8))
        let card = try String(contentsOfFile: dir + "/DATASET.md", encoding: .utf8)
        #expect(card.contains(w.datanet.hex) && card.contains("CC0-1.0") && card.contains(w.author.publicKey.description))
        var v = try DatasetExport.verify(dir: dir, ledger: w.ledger)
        #expect(v.holds && v.checks.last?.name == "accepted at the checkpoint" && !v.contentOnly)
        // Without the log, acceptance cannot be checked: that fails, unless --content-only.
        v = try DatasetExport.verify(dir: dir, ledger: nil)
        #expect(!v.holds && Self.failing(v) == ["accepted at the checkpoint"])
        v = try DatasetExport.verify(dir: dir, ledger: nil, contentOnly: true)
        #expect(v.holds && v.contentOnly && !v.checks.contains { $0.name == "accepted at the checkpoint" })
        // One edited byte fails that file.
        var bytes = Array(FileManager.default.contents(atPath: path)!)
        bytes[0] ^= 1
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == [x.entries[0].path])
        bytes[0] ^= 1
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        // An unlisted file, and a manifest path leaving the folder, fail.
        FileManager.default.createFile(atPath: dir + "/data/extra.txt", contents: Data("x".utf8))
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == ["data/extra.txt"])
        unlink(dir + "/data/extra.txt")
        let manifest = try String(contentsOfFile: dir + "/MANIFEST.jsonl", encoding: .utf8)
        try manifest.replacingOccurrences(of: x.entries[0].path, with: "data/../../etc/passwd").write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).checks.contains { $0.name == "data/../../etc/passwd" && !$0.holds })
        try manifest.write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        // A size with no checkpoint, and an existing folder, are refused.
        #expect(throws: LedgerStateError.noCheckpoint(datanet: w.datanet.hex, size: 7)) { try w.ledger.exportDataset(w.datanet, at: 7, to: dir + "-2") }
        #expect(throws: StoreError.self) { try w.ledger.exportDataset(w.datanet, at: nil, to: dir) }
    }

    /// CHECKPOINT is checked, not trusted: it must carry a signature by the sequencer key in
    /// force at its size (the trust model's forged-manifest defect), while a cosignature line a
    /// relay appends (C2SP tlog-cosignature, 76 bytes) changes nothing.
    @Test func checkpointMustBeSignedAndMayCarryCosignatures() throws {
        let (w, _) = try BundleTests.world()
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        let path = dir + "/CHECKPOINT"
        let note = try String(contentsOfFile: path, encoding: .utf8)
        let cp = try Checkpoint.unverified(note: note)
        let cosigned = note + "\u{2014} witness.example/w1 \(Data((0..<76).map { UInt8($0) }).base64EncodedString())\n"
        try cosigned.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).holds)
        // The same (origin, size, root) signed by another key, and a note with only a witness line.
        let forged = try cp.signed(by: w.owner)
        let witnessOnly = cp.noteText + "\n\u{2014} witness.example/w1 \(Data((0..<76).map { UInt8($0) }).base64EncodedString())\n"
        for bad in [forged, witnessOnly] {
            try bad.write(toFile: path, atomically: true, encoding: .utf8)
            let v = try DatasetExport.verify(dir: dir, ledger: w.ledger)
            #expect(Self.failing(v) == ["accepted at the checkpoint"])
            #expect(v.checks.last?.detail == "CHECKPOINT is not signed by the sequencer key in force at size \(cp.size)")
        }
    }

    /// The hardening issue's defect: a file and its manifest line altered together "held" in a
    /// store without the log. Now only --content-only passes it, and it says so; a store with
    /// the log catches it, as it catches a listed field (license, media type) that the record
    /// does not carry.
    @Test func alteredFileWithItsManifestLineFailsUnlessContentOnly() throws {
        let (w, _) = try BundleTests.world()
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let x = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        let path = dir + "/" + x.entries[0].path
        FileManager.default.createFile(atPath: path, contents: Data("a song of the dusk".utf8))
        var entry = x.entries[0]
        entry.content = try ContentID.of(path: path).id.hex
        entry.sha256 = SHA256.hash(Array("a song of the dusk".utf8)).hex
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The manifest's header line stays; the entry is rewritten as the attacker would.
        let header = try #require(try Data(contentsOf: URL(fileURLWithPath: dir + "/MANIFEST.jsonl")).split(separator: 0x0a).first)
        try (Data(header) + Data("\n".utf8) + e.encode(entry) + Data("\n".utf8)).write(to: URL(fileURLWithPath: dir + "/MANIFEST.jsonl"))
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: nil)) == ["accepted at the checkpoint"])
        #expect(try DatasetExport.verify(dir: dir, ledger: nil, contentOnly: true).holds)
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == ["accepted at the checkpoint"])
        FileManager.default.createFile(atPath: path, contents: Data("a song of the dawn".utf8))
        for edit in [{ (m: inout ManifestEntry) in m.license = "MIT" }, { $0.mediaType = "audio/flac" }, { $0.author = String(repeating: "0", count: 64) }] {
            var m = x.entries[0]
            edit(&m)
            try (Data(header) + Data("\n".utf8) + e.encode(m) + Data("\n".utf8)).write(to: URL(fileURLWithPath: dir + "/MANIFEST.jsonl"))
            #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == ["accepted at the checkpoint"])
        }
    }

    /// Manifest lines are read strictly: a repeated key (other readers would see the other
    /// value), an unknown field, a blank line, a line listed twice, no final newline.
    @Test func manifestsAreReadStrictly() throws {
        let (w, _) = try BundleTests.world()
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        let line = try String(contentsOfFile: dir + "/MANIFEST.jsonl", encoding: .utf8).dropLast()
        let bad = [line.replacingOccurrences(of: "{\"author\"", with: "{\"license\":\"MIT\",\"author\"") + "\n",
                   line.replacingOccurrences(of: "{\"author\"", with: "{\"note\":\"x\",\"author\"") + "\n",
                   line + "\n\n" + line + "\n", line + "\n" + line + "\n", String(line)]
        for (i, text) in bad.enumerated() {
            let v = DatasetExport.verify(manifest: Data(text.utf8), checkpoint: nil, dir: dir, ledger: w.ledger)
            #expect(!v.holds, "case \(i)")
        }
        #expect(DatasetExport.verify(manifest: Data((line + "\n").utf8), checkpoint: try String(contentsOfFile: dir + "/CHECKPOINT", encoding: .utf8),
                                     dir: dir, ledger: w.ledger).holds)
    }

    /// A contribution withdrawn after an export: `export D@SIZE` at any size leaves it out,
    /// an older export and its receipt fail where the tombstone is held, unless allowed.
    @Test func withdrawnContentIsNeverExportedAndFailsVerification() throws {
        let (w, c) = try BundleTests.world()
        let before = w.dir + "-before", after = w.dir + "-after"
        defer { for d in [before, after] { try? FileManager.default.removeItem(atPath: d) } }
        _ = try w.ledger.exportDataset(w.datanet, at: nil, to: before)
        let size = try w.ledger.reader.state(of: w.datanet).size
        let receipt = try w.ledger.provenance.receipt(for: c.id)
        var t = Envelope(kind: .tombstone, body: Tombstone(datanet: w.datanet, contribution: c.id, takedown: false, reason: "").body)
        try t.sign(with: w.author)
        try w.ledger.propose(t)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        // No gc: the content is still in the store, and still never written.
        #expect(try w.ledger.exportDataset(w.datanet, at: size, to: after).entries.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: after + "/data").isEmpty)
        let v = try DatasetExport.verify(dir: before, ledger: w.ledger)
        #expect(Self.failing(v) == ["not withdrawn"])
        #expect(v.checks.first { $0.name == "not withdrawn" }?.detail.contains("withdrawn at leaf 5") == true)
        #expect(try DatasetExport.verify(dir: before, ledger: w.ledger, allowWithdrawn: true).holds)
        // --allow-withdrawn relaxes the withdrawal only: a withdrawn entry listed with another
        // license (or content, or author) still fails.
        let line = try String(contentsOfFile: before + "/MANIFEST.jsonl", encoding: .utf8)
        try line.replacingOccurrences(of: "CC0-1.0", with: "MIT").write(toFile: before + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        #expect(Self.failing(try DatasetExport.verify(dir: before, ledger: w.ledger, allowWithdrawn: true)) == ["accepted at the checkpoint"])
        let r = try w.ledger.provenance.verify(receipt, anchor: w.datanet)
        #expect(!r.holds && r.checks.last?.name == "not withdrawn" && r.checks.last?.detail.hasPrefix("withdrawn at leaf 5") == true)
        #expect(try w.ledger.provenance.verify(receipt, anchor: w.datanet, allowWithdrawn: true).holds)
    }

    /// Folder entry names are bytes: two names differing only in invalid UTF-8 bytes, a name
    /// with %, and one that looks like an escape all export side by side and verify; an
    /// escape that export would not write is refused.
    @Test func namesThatAreNotUTF8ExportAndVerify() throws {
        let w = try LedgerTests.World(quorum: 1)
        let src = w.dir + "-names"
        defer { try? FileManager.default.removeItem(atPath: src) }
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let names: [[UInt8]] = [Array("a".utf8) + [0xff], Array("a".utf8) + [0xfe], Array("50%".utf8), Array("b%FF".utf8), Array("é".utf8), [0xc3]]
        for (i, n) in names.enumerated() { try Self.writeFile(Array(src.utf8) + [0x2f] + n, [UInt8(i)]) }
        let tree = try Ingest(store: w.ledger.store).add(paths: [src])[0]
        var e = Envelope(kind: .contribution, body: Contribution(
            datanet: w.datanet, author: w.author.publicKey, content: tree.id, contentKind: .tree, size: tree.size,
            mediaType: "inode/directory", license: "CC0-1.0", sidecar: .zero, createdAt: 1).body)
        try e.sign(with: w.author)
        try w.ledger.propose(e)
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        try w.ledger.propose(try w.review([e.id], accept: true, by: w.curatorA))
        _ = try w.ledger.sequence(w.datanet, key: w.sequencer)
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let x = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        let folder = dir + "/" + x.entries[0].path
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["50%25", "a%FE", "a%FF", "b%25FF", "é", "%C3"].sorted())
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).holds)
        // A name export does not write (a needless escape) is refused, not read as "A".
        FileManager.default.createFile(atPath: folder + "/%41", contents: Data())
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == [x.entries[0].path])
    }

    /// Review findings: MANIFEST.jsonl or CHECKPOINT as a FIFO (which blocked) or a link to
    /// /dev/zero (which never ended) are refused at once; a file name with a bidirectional
    /// override exports under a name its own verification accepts.
    @Test func hostileExportFoldersAreRefusedAtOnce() throws {
        let (w, _) = try BundleTests.world()
        let dir = w.dir + "-export"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try w.ledger.exportDataset(w.datanet, at: nil, to: dir)
        let saved = try Data(contentsOf: URL(fileURLWithPath: dir + "/MANIFEST.jsonl"))
        unlink(dir + "/MANIFEST.jsonl")
        #expect(mkfifo(dir + "/MANIFEST.jsonl", 0o600) == 0)
        #expect(throws: StoreError.self) { try DatasetExport.verify(dir: dir, ledger: w.ledger) }
        unlink(dir + "/MANIFEST.jsonl")
        #expect(symlink("/dev/zero", dir + "/MANIFEST.jsonl") == 0)
        #expect(throws: StoreError.self) { try DatasetExport.verify(dir: dir, ledger: w.ledger) }
        unlink(dir + "/MANIFEST.jsonl")
        try saved.write(to: URL(fileURLWithPath: dir + "/MANIFEST.jsonl"))
        unlink(dir + "/CHECKPOINT")
        #expect(symlink("/dev/zero", dir + "/CHECKPOINT") == 0)
        #expect(Self.failing(try DatasetExport.verify(dir: dir, ledger: w.ledger)) == ["MANIFEST.jsonl header", "accepted at the checkpoint"])
        #expect(Ledger.safeName("report\u{202E}fdp.txt", fallback: "x") == "report_fdp.txt")
        #expect(Ledger.safeName("a\u{85}b", fallback: "x") == "a_b")
    }

    @Test func exportedNamesRoundTripAndNeverCollide() {
        #expect(ExportedName.encode(Array("plain.txt".utf8)) == "plain.txt")
        #expect(ExportedName.encode([0x61, 0xff]) == "a%FF" && ExportedName.encode(Array("%".utf8)) == "%25")
        #expect(ExportedName.encode([0xed, 0xa0, 0x80]) == "%ED%A0%80") // a UTF-16 surrogate is not UTF-8
        #expect(ExportedName.encode([0xf0, 0x9f, 0x98, 0x80]) == "😀")
        for bad in ["%41", "%ff", "%2", "a%", "%C3%A9"] { #expect(ExportedName.decode(Array(bad.utf8)) == nil, "\(bad)") }
        var rng = SplitMix64(seed: 3)
        var seen = [String: [UInt8]]()
        for _ in 0..<20_000 {
            let alphabet: [UInt8] = [0x25, 0x41, 0xc3, 0xa9, 0xff, 0x80, 0xe2]
            let name = rng.bytes(1 + rng.below(6)).map { alphabet[Int($0) % 7] }
            let text = ExportedName.encode(name)
            #expect(ExportedName.decode(Array(text.utf8)) == name)
            if let other = seen[text] { #expect(other == name) }
            seen[text] = name
        }
        // Decoding arbitrary bytes (what a hostile folder holds) never traps, and whatever it
        // accepts is exactly what encoding writes.
        for _ in 0..<20_000 {
            let text = rng.bytes(rng.below(12)).map { [0x25, 0x41, 0x46, 0x30, 0x39, 0x61, 0xc3, 0xa9, 0xff][Int($0) % 9] as UInt8 }
            if let name = ExportedName.decode(text) { #expect(Array(ExportedName.encode(name).utf8) == text) }
        }
    }

    @Test func safeNamesAndCardCells() {
        #expect(Ledger.safeName("../../etc/passwd", fallback: "x") == "_.._etc_passwd")
        #expect(Ledger.safeName("...", fallback: "x") == "x")
        #expect(Ledger.safeName("a\u{0}b", fallback: "x") == "a_b")
        #expect(Ledger.safeName(String(repeating: "é", count: 80), fallback: "x").utf8.count <= 100)
        // A license or name from another store cannot break DATASET.md's tables.
        #expect(Ledger.markdownCell("MIT | evil\n| row |") == "MIT \\| evil \\| row \\|")
    }

    /// Creates a file at a path given as bytes (FileManager takes only Strings).
    static func writeFile(_ path: [UInt8], _ bytes: [UInt8]) throws {
        let fd = (path + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) }
        }
        guard fd >= 0 else { throw StoreError.io(path: "?", operation: "create", errno: errno) }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

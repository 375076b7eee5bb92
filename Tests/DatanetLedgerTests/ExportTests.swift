import DatanetCrypto
@testable import DatanetLedger
import DatanetStore
import Foundation
import Glibc
import Testing

/// `export` writes what a trainer elsewhere needs; `verify --manifest` catches any edit.
@Suite struct ExportTests {
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
        var checks = try DatasetExport.verify(dir: dir, ledger: w.ledger)
        #expect(checks.allSatisfy(\.holds) && checks.last?.status == .pass)
        // Without the log, content still verifies and acceptance is n/a.
        checks = try DatasetExport.verify(dir: dir, ledger: nil)
        #expect(checks.allSatisfy(\.holds) && checks.last?.status == .notApplicable)
        // One edited byte fails that file.
        var bytes = Array(FileManager.default.contents(atPath: path)!)
        bytes[0] ^= 1
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).filter { !$0.holds }.map(\.name) == [x.entries[0].path])
        bytes[0] ^= 1
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        // An unlisted file, and a manifest path leaving the folder, fail.
        FileManager.default.createFile(atPath: dir + "/data/extra.txt", contents: Data("x".utf8))
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).filter { !$0.holds }.map(\.name) == ["data/extra.txt"])
        unlink(dir + "/data/extra.txt")
        let manifest = try String(contentsOfFile: dir + "/MANIFEST.jsonl", encoding: .utf8)
        try manifest.replacingOccurrences(of: x.entries[0].path, with: "data/../../etc/passwd").write(toFile: dir + "/MANIFEST.jsonl", atomically: true, encoding: .utf8)
        #expect(try DatasetExport.verify(dir: dir, ledger: w.ledger).contains { $0.name == "data/../../etc/passwd" && !$0.holds })
        // A size with no checkpoint, and an existing folder, are refused.
        #expect(throws: LedgerRefusal.self) { try w.ledger.exportDataset(w.datanet, at: 7, to: dir + "-2") }
        #expect(throws: StoreError.self) { try w.ledger.exportDataset(w.datanet, at: nil, to: dir) }
    }

    @Test func safeNames() {
        #expect(Ledger.safeName("../../etc/passwd", fallback: "x") == "_.._etc_passwd")
        #expect(Ledger.safeName("...", fallback: "x") == "x")
        #expect(Ledger.safeName("a\u{0}b", fallback: "x") == "a_b")
        #expect(Ledger.safeName(String(repeating: "é", count: 80), fallback: "x").utf8.count <= 100)
    }
}

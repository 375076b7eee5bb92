import Foundation
import Testing

/// `datanet dataset D[@SIZE]` (schema/training.md): the training set of a checkpoint from real
/// contributions — files, a folder, each format — with malformed content and licenses outside
/// `--licenses` left out and named, the rest counted.
@Suite struct DatasetCLITests {
    typealias Session = LedgerCLITests.Session

    @Test func theTrainingSetOfACheckpoint() throws {
        let s = Session()
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        try s.ok(["id", "new", "cur"])
        try s.ok(["--as", "owner", "create", "films", "--curator", "cur"])
        func file(_ name: String, _ text: String) -> String {
            let path = s.dir.file(name)
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            writeFile(path, Array(text.utf8))
            return path
        }
        let good = file("reviews.jsonl", "{\"text\": \"a fine film\", \"label\": \"pos\"}\n{\"text\": \"dull\", \"label\": \"neg\"}\n")
        let bad = file("broken.jsonl", "{\"text\": \"ok\", \"label\": \"pos\"}\n{\"text\": \"no label\"}\n")
        let numbers = file("scores.csv", "len,label,year\n90,pos,1999\n120,neg,2004\n")
        _ = file("folder/more.jsonl", "{\"text\": \"great\", \"label\": 1}\n")
        _ = file("folder/notes.md", "# notes\n")
        _ = file("folder/image.bin", "\u{1}\u{2}")
        let other = file("cc-by.jsonl", "{\"text\": \"licensed\", \"label\": \"pos\"}\n")
        for path in [good, bad, numbers, s.dir.file("folder")] { try s.ok(["--as", "owner", "contribute", "films", path]) }
        try s.ok(["--as", "owner", "contribute", "films", other, "--license", "CC-BY-4.0"])
        try s.ok(["sequence", "films"])
        let ids = try #require(try s.json(["--as", "cur", "status", "films", "--to-review"]) as? [[String: Any]]).compactMap { $0["id"] as? String }
        #expect(ids.count == 5)
        writeFile(s.dir.file("ids.txt"), Array(ids.joined(separator: "\n").utf8))
        try s.ok(["--as", "cur", "review", "films", "--accept", "--ids-from", s.dir.file("ids.txt")])
        try s.ok(["sequence", "films"])

        let all = try #require(try s.json(["dataset", "films"]) as? [String: Any])
        #expect(all["contributions"] as? Int == 5 && all["included"] as? Int == 4, "\(all)")
        #expect(all["labeledTexts"] as? Int == 4 && all["numericRows"] as? Int == 2 && all["documents"] as? Int == 1 && all["otherFiles"] as? Int == 1, "\(all)")
        #expect((all["labels"] as? [String: Int]) == ["pos": 3, "neg": 2, "1": 1], "\(all)")
        #expect((all["licenses"] as? [String: Int]) == ["NOASSERTION": 3, "CC-BY-4.0": 1], "\(all)")
        #expect((all["features"] as? [String]) == ["len", "year"])
        let leftOut = try #require(all["leftOut"] as? [[String: Any]])
        #expect(leftOut.count == 1 && (leftOut[0]["reason"] as? String ?? "").contains("broken.jsonl, line 2"), "\(leftOut)")
        // The human form names what was left out on standard error, and still succeeds.
        let r = try s.run(["dataset", "films"])
        #expect(r.status == 0 && r.stdout.contains("4 of 5 accepted contribution(s)") && r.stderr.contains("broken.jsonl, line 2"), "\(r.stdout) \(r.stderr)")
        // Only the default (NOASSERTION): the CC-BY contribution is left out for its license.
        let cc0 = try #require(try s.json(["dataset", "films", "--licenses", "NOASSERTION,CC0-1.0"]) as? [String: Any])
        #expect(cc0["included"] as? Int == 3 && (cc0["licenses"] as? [String: Int]) == ["NOASSERTION": 3], "\(cc0)")
        #expect((cc0["leftOut"] as? [[String: Any]])?.contains { ($0["reason"] as? String ?? "").contains("CC-BY-4.0") } == true)
        // At the first checkpoint nothing was accepted yet.
        let first = try #require(try s.json(["dataset", "films@6"]) as? [String: Any])
        #expect(first["contributions"] as? Int == 0 && first["checkpoint"] as? Int == 6, "\(first)")
        #expect(try s.run(["dataset", "films", "--licenses", ","]).status == 2)
        try s.refused(["dataset", "films@3"], "checkpoint")

        // A kNN model of the labeled text: the same artifact id twice; inference names the
        // neighbours, their contributions and weights summing to 10^9.
        #expect(try s.run(["model", "train", "films", "--kind", "knn"]).status == 2, "text and numbers: --features is needed")
        let text = try #require(try s.json(["model", "train", "films", "--kind", "knn", "--features", "text", "--k", "3"]) as? [String: Any])
        let again = try #require(try s.json(["model", "train", "films", "--kind", "knn", "--features", "text", "--k", "3"]) as? [String: Any])
        let art = try #require(text["artifact"] as? String)
        #expect(art == again["artifact"] as? String && text["examples"] as? Int == 4, "\(text)")
        let inferred = try #require(try s.json(["infer", art, "--input", "a fine film"]) as? [String: Any])
        let near = try #require(inferred["neighbours"] as? [[String: Any]])
        #expect(inferred["label"] as? String == "pos" && near.count == 3, "\(inferred)")
        #expect(near.compactMap { $0["weight"] as? Int }.reduce(0, +) == 1_000_000_000)
        #expect(near.allSatisfy { ids.contains($0["contribution"] as? String ?? "") && ($0["file"] as? String ?? "").hasSuffix(".jsonl") })
        // Numbers: a row of the two features; a bad row is refused.
        let numeric = try #require(try s.json(["model", "train", "films", "--kind", "knn", "--features", "numeric", "--k", "1"]) as? [String: Any])
        let num = try #require(numeric["artifact"] as? String)
        #expect((try s.json(["infer", num, "--input", "118, 2003"]) as? [String: Any])?["label"] as? String == "neg")
        #expect(try s.run(["infer", num, "--input", "x,1"]).status == 2)
        // Values against a labeled test file: per contribution, and one per training example.
        writeFile(s.dir.file("test.jsonl"), Array("{\"text\": \"fine film\", \"label\": \"pos\"}\n{\"text\": \"dull\", \"label\": \"neg\"}\n".utf8))
        let valued = try #require(try s.json(["value", art, "--test", s.dir.file("test.jsonl")]) as? [String: Any])
        let perContribution = try #require(valued["contributions"] as? [[String: Any]])
        let total = perContribution.compactMap { $0["value"] as? Double }.reduce(0, +)
        #expect(perContribution.count == 4 && total > 0 && total <= 1, "\(valued)") // (the CSV-only contribution holds no text: 0)
        let lines = try s.ok(["value", art, "--test", s.dir.file("test.jsonl"), "--per-example"]).split(separator: "\n")
        #expect(lines.count == 4 && abs(lines.compactMap { Double($0) }.reduce(0, +) - total) < 1e-12)
        #expect(try s.run(["value", art, "--test", s.dir.file("scores.csv")]).status == 2, "a text model takes a .jsonl test file")
        try s.refused(["infer", "ffff", "--input", "x"], "ffff")
    }
}

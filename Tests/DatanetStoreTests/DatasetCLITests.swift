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
        #expect(try s.run(["--as", "owner", "model", "train", "films", "--kind", "knn"]).status == 2, "text and numbers: --features is needed")
        let text = try #require(try s.json(["--as", "owner", "model", "train", "films", "--kind", "knn", "--features", "text", "--k", "3"]) as? [String: Any])
        let again = try #require(try s.json(["--as", "owner", "model", "train", "films", "--kind", "knn", "--features", "text", "--k", "3"]) as? [String: Any])
        let art = try #require(text["artifact"] as? String)
        #expect(art == again["artifact"] as? String && text["examples"] as? Int == 4, "\(text)")
        let inferred = try #require(try s.json(["infer", art, "--input", "a fine film"]) as? [String: Any])
        let near = try #require(inferred["neighbours"] as? [[String: Any]])
        #expect(inferred["label"] as? String == "pos" && near.count == 3, "\(inferred)")
        #expect(near.compactMap { $0["weight"] as? Int }.reduce(0, +) == 1_000_000_000)
        #expect(near.allSatisfy { ids.contains($0["contribution"] as? String ?? "") && ($0["file"] as? String ?? "").hasSuffix(".jsonl") })
        // Numbers: a row of the two features; a bad row is refused.
        let numeric = try #require(try s.json(["--as", "owner", "model", "train", "films", "--kind", "knn", "--features", "numeric", "--k", "1"]) as? [String: Any])
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

    /// A model record end to end: only the owner, a curator or a builder may register one;
    /// `model train` leaves it pending, the sequencer registers it as a model leaf, it is found
    /// by name, verifies, and a withdrawal of content it was trained on is reported by
    /// `verify MODEL` (a failure unless --allow-withdrawn). An import stores a variant for the
    /// chunks it changed. Audit replays the model leaves.
    @Test func modelsAreRegisteredVerifiedAndReportWithdrawnContent() throws {
        let s = Session()
        try s.ok(["init"])
        for n in ["owner", "cur", "ann", "bob"] { try s.ok(["id", "new", n]) }
        try s.ok(["--as", "owner", "create", "films", "--curator", "cur"])
        func file(_ name: String, _ text: String) -> String { writeFile(s.dir.file(name), Array(text.utf8)); return s.dir.file(name) }
        let a = file("a.jsonl", "{\"text\": \"a fine film\", \"label\": \"pos\"}\n{\"text\": \"dull\", \"label\": \"neg\"}\n")
        let b = file("b.jsonl", "{\"text\": \"a great film\", \"label\": \"pos\"}\n")
        try s.ok(["--as", "ann", "contribute", "films", a])
        try s.ok(["--as", "bob", "contribute", "films", b])
        try s.ok(["sequence", "films"])
        try s.ok(["--as", "cur", "review", "films", a, "--accept"])
        try s.ok(["--as", "cur", "review", "films", b, "--accept"])
        try s.ok(["sequence", "films"])
        // ann holds no role for models: refused before anything is stored.
        let before = try s.ok(["ls"])
        try s.refused(["--as", "ann", "model", "train", "films", "--kind", "knn", "--name", "m"], "may not register models")
        #expect(try s.ok(["ls"]) == before)
        // A record its decoder or the text rules would refuse is refused before the artifact is stored.
        for bad in [["--name", "two\tparts"], ["--name", String(repeating: "n", count: 300)]] {
            let r = try s.run(["--as", "owner", "model", "train", "films", "--kind", "knn"] + bad)
            #expect(r.status != 0, "\(bad)")
        }
        #expect(try s.ok(["ls"]) == before)
        // The owner trains: pending until sequenced.
        let trained = try #require(try s.json(["--as", "owner", "model", "train", "films", "--kind", "knn", "--k", "1", "--name", "critic"]) as? [String: Any])
        let model = try #require(trained["model"] as? String)
        #expect(trained["status"] as? String == "pending")
        let pending = try #require(try s.json(["model", "ls", "--json"]) as? [[String: Any]])
        #expect(pending.count == 1 && pending[0]["status"] as? String == "pending" && pending[0]["id"] as? String == model)
        let unregistered = try s.run(["verify", "critic"])
        #expect(unregistered.status == 1 && unregistered.stdout.contains("it is pending"), "\(unregistered.stdout)")
        let seq = try #require(try s.json(["sequence", "films", "--json"]) as? [String: Any])
        let placed = try #require(seq["models"] as? [[String: Any]])
        #expect(placed.count == 1 && placed[0]["record"] as? String == model, "\(seq)")
        let shown = try #require(try s.json(["model", "show", "critic", "--json"]) as? [String: Any])
        #expect(shown["status"] as? String == "registered" && shown["leaf"] as? Int == placed[0]["index"] as? Int && shown["artifact_held"] as? Bool == true)
        #expect((shown["training"] as? [String: Any])?["contributions"] as? Int == 2 && shown["trainer"] as? String == "datanet-knn")
        #expect((shown["configuration"] as? [String: String]) == ["features": "text", "k": "1", "kind": "knn", "scale": "none"])
        // By name, by id prefix: the same model.
        #expect((try s.json(["infer", "critic", "--input", "a great film"]) as? [String: Any])?["label"] as? String == "pos")
        #expect((try s.json(["infer", String(model.prefix(12)), "--input", "dull"]) as? [String: Any])?["label"] as? String == "neg")
        let verified = try #require(try s.json(["verify", "critic", "--json"]) as? [String: Any])
        #expect(verified["valid"] as? Bool == true && verified["kind"] as? String == "model", "\(verified)")
        #expect(try s.run(["audit", "films"]).status == 0)
        // Results recorded: an attribution (shares summing to 10^9) and a valuation (fixed point).
        let inferred = try #require(try s.json(["--as", "cur", "infer", "critic", "--input", "a great film", "--record"]) as? [String: Any])
        let attributionID = try #require(inferred["record"] as? String)
        let attribution = try #require(try s.json(["show", attributionID, "--json"]) as? [String: Any])
        let body = try #require((attribution["record"] as? [String: Any])?["body"] as? [String: Any])
        let credits = try #require(body["credits"] as? [[String: Any]])
        #expect(body["model"] as? String == model && body["method"] as? String == "knn" && attribution["kind"] as? String == "attribution")
        #expect(credits.compactMap { $0["amount"] as? Int }.reduce(0, +) == 1_000_000_000, "\(body)")
        writeFile(s.dir.file("test.jsonl"), Array("{\"text\": \"great film\", \"label\": \"pos\"}\n{\"text\": \"dull\", \"label\": \"neg\"}\n".utf8))
        let valued = try #require(try s.json(["--as", "cur", "value", "critic", "--test", s.dir.file("test.jsonl"), "--record", "--json"]) as? [String: Any])
        let valuationID = try #require(valued["record"] as? String)
        let valuation = try #require(try s.json(["show", valuationID, "--json"]) as? [String: Any])
        let values = try #require(((valuation["record"] as? [String: Any])?["body"] as? [String: Any])?["values"] as? [[String: Any]])
        let exact = try #require(valued["contributions"] as? [[String: Any]]).compactMap { $0["value"] as? Double }
        #expect(values.count == 2 && zip(values.compactMap { $0["amount"] as? Int }, exact).allSatisfy { Double($0) == ($1 * 1e12).rounded(.toNearestOrEven) },
                "\(values) \(exact)")
        #expect(try s.run(["pending", "films", "--json"]).stdout.contains("valuation") == false, "results are kept, not proposed")
        let art = try #require(trained["artifact"] as? String)
        let bare = try s.run(["infer", art, "--input", "x", "--record"])
        #expect(bare.status == 2 && bare.stderr.contains("--record needs a model"), "\(bare.stderr)")

        // bob withdraws what the model was trained on: verify names the leaf.
        try s.ok(["--as", "bob", "withdraw", "films", b, "--reason", "changed my mind"])
        let seq2 = try #require(try s.json(["sequence", "films", "--json"]) as? [String: Any])
        let leaf = try #require((seq2["tombstones"] as? [[String: Any]])?.first?["index"] as? Int)
        let r = try s.run(["verify", "critic"])
        #expect(r.status == 1 && r.stdout.contains("trained on content withdrawn at leaf \(leaf)"), "\(r.stdout)")
        #expect(try s.run(["verify", "critic", "--allow-withdrawn"]).status == 0)
        // A model trained now leaves it out, and its verify holds.
        try s.ok(["--as", "owner", "model", "train", "films", "--kind", "knn", "--k", "1", "--name", "critic"])
        try s.ok(["sequence", "films"])
        #expect(try s.run(["verify", "critic"]).status == 0, "the newest 'critic' is trained without the withdrawn content")

        // A builder added by policy imports weights; a variant costs only its changed chunks.
        try s.ok(["--as", "owner", "policy", "films", "add-builder", "ann"])
        try s.ok(["sequence", "films"])
        var weights = [UInt8](repeating: 0, count: 3 << 20)
        var x: UInt64 = 7
        for i in weights.indices { x = x &* 6364136223846793005 &+ 1442695040888963407; weights[i] = UInt8(truncatingIfNeeded: x >> 33) }
        writeFile(s.dir.file("llm.bin"), weights)
        let first = try #require(try s.json(["--as", "ann", "model", "import", s.dir.file("llm.bin"), "--datanet", "films", "--checkpoint", "7",
                                             "--name", "llm", "--json"]) as? [String: Any])
        #expect(first["new_bytes"] as? Int == 3 << 20, "\(first)")
        weights[1 << 20] ^= 0xff
        writeFile(s.dir.file("llm-tuned.bin"), weights)
        let variant = try #require(try s.json(["--as", "ann", "model", "import", s.dir.file("llm-tuned.bin"), "--datanet", "films", "--checkpoint", "7",
                                               "--name", "llm-tuned", "--base", "llm", "--json"]) as? [String: Any])
        let newBytes = try #require(variant["new_bytes"] as? Int)
        #expect(newBytes > 0 && newBytes < 1 << 20, "a one-byte change costs its chunk, not the file: \(variant)")
        try s.ok(["sequence", "films"])
        let tuned = try #require(try s.json(["model", "show", "llm-tuned", "--json"]) as? [String: Any])
        #expect(tuned["base"] as? String == first["model"] as? String && tuned["status"] as? String == "registered")
        #expect(try s.run(["verify", "llm-tuned", "--allow-withdrawn"]).status == 0)
        try s.refused(["infer", "llm-tuned", "--input", "x"], "not a kNN trainer")
        try s.refused(["--as", "ann", "model", "import", s.dir.file("llm.bin"), "--datanet", "films", "--checkpoint", "999", "--name", "x"], "checkpoint")
        #expect(try s.run(["audit", "films"]).status == 0)
        let all = try #require(try s.json(["model", "ls", "films", "--json"]) as? [[String: Any]])
        #expect(all.count == 4 && all.allSatisfy { $0["status"] as? String == "registered" })
    }
}

import Foundation
import Testing

/// `datanet attribute` (schema/spans.md) on a real store: counts equal naive counting over the
/// training set's documents; a copied span is credited to the earliest contribution; a new
/// checkpoint adds a shard and answers as a fresh index does; a withdrawn contribution
/// disappears at once and its text leaves the index at `gc`; bad input is refused.
@Suite struct SpanCLITests {
    typealias Session = LedgerCLITests.Session

    static let phrase = "the lighthouse keeper counted ninety seven gulls at dawn"

    /// A Datanet of an original text, a later copy of its phrase inside other text, and 250
    /// filler records (so a span in two documents is under 1% of them), all accepted.
    static func setUp(_ s: Session) throws -> (original: String, copy: String, documents: [String]) {
        try s.ok(["init"])
        try s.ok(["id", "new", "owner"])
        try s.ok(["--as", "owner", "create", "sea", "--curator", "owner"])
        try s.ok(["config", "identity", "owner"])
        let original = "Log of the zebra-only-in-one station. " + phrase + ", and again at noon."
        let copy = "Quoted elsewhere, much later: " + phrase + " -- as the old log said, word for word."
        let filler = (0..<250).map { "record \($0): tide \($0 * 37 % 101) cm, wind \($0 % 9) knots from the \(["north", "east", "south", "west"][$0 % 4])" }
        writeFile(s.dir.file("original.txt"), Array(original.utf8))
        writeFile(s.dir.file("copy.md"), Array(copy.utf8))
        writeFile(s.dir.file("filler.jsonl"), Array(filler.map { "{\"text\": \"\($0)\", \"label\": \"tide\"}\n" }.joined().utf8))
        for f in ["original.txt", "filler.jsonl", "copy.md"] {
            try s.ok(["--as", "owner", "contribute", "sea", s.dir.file(f)])
            try s.ok(["sequence", "sea"])
        }
        try accept(s)
        return (original, copy, [original] + filler + [copy])
    }

    static func accept(_ s: Session) throws {
        let ids = try #require(try s.json(["status", "sea", "--to-review"]) as? [[String: Any]]).compactMap { $0["id"] as? String }
        if ids.isEmpty { return }
        try s.ok(["--as", "owner", "review", "sea", "--accept"] + ids)
        try s.ok(["sequence", "sea"])
    }

    static func naiveCount(_ pattern: String, _ docs: [String]) -> Int {
        let p = Array(pattern.utf8)
        return docs.map { d in
            let b = Array(d.utf8)
            guard b.count >= p.count else { return 0 }
            return (0...(b.count - p.count)).filter { b[$0..<$0 + p.count].elementsEqual(p) }.count
        }.reduce(0, +)
    }

    @Test func countsSpansCreditAndWithdrawal() throws {
        let s = Session()
        let (_, _, docs) = try Self.setUp(s)
        for pattern in ["keeper", "e", " cm, wind 3", "tide 1", "zebra", "nowhere at all", "\u{2713}"] {
            let c = try #require(try s.json(["attribute", "count", "sea", pattern]) as? [String: Any])
            #expect(c["count"] as? Int == Self.naiveCount(pattern, docs), "\(pattern): \(c["count"] ?? "")")
            let perContribution = (c["contributions"] as? [[String: Any]] ?? []).compactMap { $0["count"] as? Int }
            #expect(perContribution.reduce(0, +) == c["count"] as? Int)
            let locations = try #require(c["locations"] as? [[String: Any]])
            #expect(locations.count == min(50, c["count"] as? Int ?? 0) && c["documents"] as? Int == docs.count)
        }
        let text = "Yesterday " + Self.phrase + ". Then nothing."
        let a = try #require(try s.json(["attribute", "sea", "--text", text, "--record"]) as? [String: Any])
        let spans = try #require(a["spans"] as? [[String: Any]])
        let credited = try #require(spans.first { $0["credited"] is String })
        let holders = try #require(credited["contributions"] as? [String])
        #expect(holders.count == 2 && credited["credited"] as? String == holders[0] && credited["documents"] as? Int == 2, "\(credited)")
        #expect((credited["text"] as? String ?? "").contains(Self.phrase))
        let weights = try #require(a["weights"] as? [[String: Any]])
        #expect(weights.count == 1 && weights[0]["contribution"] as? String == holders[0] && weights[0]["weight"] as? Int == 1_000_000_000)
        // The record: method spans, no model, the same credit.
        let record = try #require(a["record"] as? String)
        let shown = try #require(try s.json(["show", record]) as? [String: Any])
        #expect("\(shown)".contains("spans") && "\(shown)".contains(holders[0]), "\(shown)")

        // A new contribution after indexing: a second shard, answering as a fresh index does.
        let sizeBefore = try s.size("sea")
        writeFile(s.dir.file("later.txt"), Array(("A later note: " + Self.phrase + " (copied again)").utf8))
        try s.ok(["--as", "owner", "contribute", "sea", s.dir.file("later.txt")])
        try s.ok(["sequence", "sea"])
        try Self.accept(s)
        let sharded = try s.ok(["attribute", "sea", "--text", text, "--json"])
        let manifest = try #require(FileManager.default.contentsOfDirectory(atPath: s.store + "/spans").first { $0.hasSuffix(".json") })
        let entries = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.store + "/spans/" + manifest))) as? [String: Any])?["shards"] as? [Any])
        #expect(entries.count == 2)
        try FileManager.default.removeItem(atPath: s.store + "/spans")
        #expect(try s.ok(["attribute", "sea", "--text", text, "--json"]).replacingOccurrences(of: "\"record\" : null", with: "") ==
                sharded.replacingOccurrences(of: "\"record\" : null", with: ""))
        // At the earlier checkpoint the later note is not in the training set.
        let before = try #require(try s.json(["attribute", "count", "sea@\(sizeBefore)", Self.phrase]) as? [String: Any])
        let now = try #require(try s.json(["attribute", "count", "sea", Self.phrase]) as? [String: Any])
        #expect(before["count"] as? Int == 2 && now["count"] as? Int == 3, "\(before["count"] ?? "") \(now["count"] ?? "")")

        // The original withdrawn: gone from every answer at once; credit moves to the copy; gc
        // rebuilds the shard so its text leaves the index.
        try s.ok(["--as", "owner", "withdraw", "sea", holders[0]])
        try s.ok(["sequence", "sea"])
        let gone = try #require(try s.json(["attribute", "count", "sea", "zebra"]) as? [String: Any])
        #expect(gone["count"] as? Int == 0 && (gone["contributions"] as? [Any])?.isEmpty == true)
        let after = try #require(try s.json(["attribute", "sea", "--text", text]) as? [String: Any])
        let moved = try #require((after["spans"] as? [[String: Any]])?.first { $0["credited"] is String })
        #expect(moved["credited"] as? String == holders[1] && !"\(after)".contains(holders[0]))
        func indexHolds(_ needle: String) throws -> Bool {
            try FileManager.default.contentsOfDirectory(atPath: s.store + "/spans/cache").contains {
                (try? Data(contentsOf: URL(fileURLWithPath: s.store + "/spans/cache/" + $0)))?.range(of: Data(needle.utf8)) != nil
            }
        }
        #expect(try indexHolds("zebra-only-in-one"))
        try s.ok(["gc"])
        #expect(try !indexHolds("zebra-only-in-one"))
        #expect((try s.json(["attribute", "count", "sea", "keeper"]) as? [String: Any])?["count"] as? Int == 2)
    }

    @Test func anNgramModelGeneratesWithItsSources() throws {
        let s = Session()
        _ = try Self.setUp(s)
        let trained = try #require(try s.json(["model", "train", "sea", "--kind", "ngram", "--name", "sea-ngram"]) as? [String: Any])
        #expect(trained["documents"] as? Int == 252 && trained["contributions"] as? Int == 3, "\(trained)")
        try s.ok(["sequence", "sea"])
        try s.ok(["verify", "sea-ngram"])
        let one = try #require(try s.json(["generate", "sea-ngram", "--prompt", "the lighthouse", "--max-bytes", "60", "--seed", "7"]) as? [String: Any])
        let two = try #require(try s.json(["generate", "sea-ngram", "--prompt", "the lighthouse", "--max-bytes", "60", "--seed", "7"]) as? [String: Any])
        #expect(one["bytes_base64"] as? String == two["bytes_base64"] as? String)
        let steps = try #require(one["steps"] as? [[String: Any]])
        #expect(steps.count == 60 && (one["text"] as? String ?? "").hasPrefix(" keeper counted"), "\(one["text"] ?? "")")
        // The first bytes continue the phrase: a suffix of the prompt, held by the original and the copy.
        #expect(steps[0]["suffix"] as? Int == 14 && (steps[0]["contributions"] as? [String])?.count == 2, "\(steps[0])")
        #expect(try s.run(["generate", "sea-ngram", "--prompt", "x", "--max-bytes", "0"]).status == 2)
        try s.refused(["generate", "nosuch", "--prompt", "x"], "nosuch")
    }

    /// Ten checkpoints, each adding a contribution and a shard: past 8 shards the two smallest
    /// adjacent ones are merged after the answer; the answers equal a fresh index's.
    @Test func shardsAreMergedAboveEight() throws {
        let s = Session()
        _ = try Self.setUp(s)
        for i in 0..<10 {
            writeFile(s.dir.file("note\(i).txt"), Array("note \(i): \(Self.phrase) and a \(i)th reading of the tide".utf8))
            try s.ok(["--as", "owner", "contribute", "sea", s.dir.file("note\(i).txt")])
            try s.ok(["sequence", "sea"])
            try Self.accept(s)
            try s.ok(["attribute", "count", "sea", "tide"])
        }
        let manifest = try #require(FileManager.default.contentsOfDirectory(atPath: s.store + "/spans").first { $0.hasSuffix(".json") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.store + "/spans/" + manifest))) as? [String: Any])
        let shards = try #require(object["shards"] as? [[String: Any]])
        #expect(shards.count <= 8 && !(object["retired"] as? [Any] ?? []).isEmpty, "\(object)")
        let merged = try s.ok(["attribute", "sea", "--text", "Yesterday " + Self.phrase + ". Then a 7th reading of the tide.", "--json"])
        let count = try s.ok(["attribute", "count", "sea", "reading", "--json"])
        try FileManager.default.removeItem(atPath: s.store + "/spans")
        #expect(try s.ok(["attribute", "sea", "--text", "Yesterday " + Self.phrase + ". Then a 7th reading of the tide.", "--json"]) == merged)
        #expect(try s.ok(["attribute", "count", "sea", "reading", "--json"]) == count)
        // gc releases the retired shards: the store holds only the current ones' blobs.
        try s.ok(["gc"])
        #expect(try s.ok(["attribute", "count", "sea", "reading", "--json"]) == count)
    }

    /// Offsets are bytes of the input; a span cut inside a character is given as text with
    /// U+FFFD and its exact bytes in base64.
    @Test func spansOfInvalidUTF8AreGivenInBase64() throws {
        let s = Session()
        _ = try Self.setUp(s)
        writeFile(s.dir.file("café.txt"), Array("a café au lait at the harbour wall, every single morning".utf8))
        try s.ok(["--as", "owner", "contribute", "sea", s.dir.file("café.txt")])
        try s.ok(["sequence", "sea"])
        try Self.accept(s)
        // 0xE2 0xA9 is not UTF-8; "\u{A9} au lait…" (é's second byte onwards) occurs.
        writeFile(s.dir.file("query.bin"), [0x78, 0xE2, 0xA9] + Array(" au lait at the harbour wall".utf8))
        let a = try #require(try s.json(["attribute", "sea", "--file", s.dir.file("query.bin"), "--min-span", "10"]) as? [String: Any])
        let span = try #require((a["spans"] as? [[String: Any]])?.first)
        #expect(span["start"] as? Int == 2 && span["end"] as? Int == 31, "\(span)")
        #expect(span["text_base64"] as? String == Data([0xA9] + Array(" au lait at the harbour wall".utf8)).base64EncodedString())
        #expect((span["text"] as? String)?.hasPrefix("\u{FFFD}") == true)
    }

    /// A contribution with no documents (an empty folder) is listed in its shard, so the shard
    /// is not rebuilt on every query.
    @Test func aContributionWithoutDocumentsKeepsItsShardCurrent() throws {
        let s = Session()
        _ = try Self.setUp(s)
        try FileManager.default.createDirectory(atPath: s.dir.file("empty"), withIntermediateDirectories: true)
        try s.ok(["--as", "owner", "contribute", "sea", s.dir.file("empty")])
        try s.ok(["sequence", "sea"])
        try Self.accept(s)
        func manifest() throws -> String {
            let name = try #require(FileManager.default.contentsOfDirectory(atPath: s.store + "/spans").first { $0.hasSuffix(".json") })
            return try String(contentsOfFile: s.store + "/spans/" + name, encoding: .utf8)
        }
        try s.ok(["attribute", "count", "sea", "tide"])
        let first = try manifest()
        try s.ok(["attribute", "count", "sea", "tide"])
        #expect(try manifest() == first && first.contains("\"retired\":[]"), "\(first)")
    }

    /// Withdrawn text stays out of a model trained after the withdrawal (before any gc), and out
    /// of what a model trained before it generates.
    @Test func withdrawnTextStaysOutOfModels() throws {
        let s = Session()
        _ = try Self.setUp(s)
        let before = try #require(try s.json(["model", "train", "sea", "--kind", "ngram", "--name", "before"]) as? [String: Any])
        let original = try #require((try s.json(["attribute", "count", "sea", "zebra-only"]) as? [String: Any])?["contributions"] as? [[String: Any]]).first?["contribution"] as? String
        try s.ok(["--as", "owner", "withdraw", "sea", try #require(original)])
        try s.ok(["sequence", "sea"])
        let after = try #require(try s.json(["model", "train", "sea", "--kind", "ngram", "--name", "after"]) as? [String: Any])
        let artifact = try #require(after["artifact"] as? String)
        let bytes = try s.run(["cat", artifact])
        #expect(bytes.status == 0 && !bytes.stdout.contains("zebra-only-in-one") && bytes.stdout.contains("lighthouse keeper"))
        #expect(try s.run(["cat", try #require(before["artifact"] as? String)]).stdout.contains("zebra-only-in-one"))
        let g = try #require(try s.json(["generate", "before", "--prompt", "Log of the zebra", "--max-bytes", "30"]) as? [String: Any])
        #expect(!"\(g)".contains(try #require(original)))
    }

    /// The manifest is a cache: damaged ones (not JSON, huge numbers, a gap, a shard blob this
    /// store lacks) are rebuilt from, and the answers stay exact.
    @Test func aDamagedManifestIsRebuilt() throws {
        let s = Session()
        let (_, _, docs) = try Self.setUp(s)
        let expected = Self.naiveCount("tide", docs)
        #expect((try s.json(["attribute", "count", "sea", "tide"]) as? [String: Any])?["count"] as? Int == expected)
        let name = try #require(FileManager.default.contentsOfDirectory(atPath: s.store + "/spans").first { $0.hasSuffix(".json") })
        let max = UInt64.max, zero = String(repeating: "0", count: 64)
        let damaged = ["not json", "{\"version\":1,\"shards\":[{\"blob\":\"\(zero)\",\"from\":0,\"to\":\(max),\"bytes\":\(max),\"text\":\(max)}],\"retired\":[]}",
                       "{\"version\":1,\"shards\":[{\"blob\":\"\(zero)\",\"from\":5,\"to\":9,\"bytes\":1}],\"retired\":[\"zz\"]}",
                       "{\"version\":2,\"shards\":[],\"retired\":[]}"]
        for text in damaged {
            writeFile(s.store + "/spans/" + name, Array(text.utf8))
            let c = try #require(try s.json(["attribute", "count", "sea", "tide"]) as? [String: Any])
            #expect(c["count"] as? Int == expected, "\(text)")
        }
        try s.ok(["gc"])
        #expect((try s.json(["attribute", "count", "sea", "tide"]) as? [String: Any])?["count"] as? Int == expected)
    }

    @Test func badInputIsRefused() throws {
        let s = Session()
        _ = try Self.setUp(s)
        for args in [["attribute", "count", "sea", ""], ["attribute", "sea"], ["attribute", "sea", "--text", "a", "--file", "b"],
                     ["attribute", "sea", "--text", "a", "--min-span", "0"], ["attribute", "count", "sea"],
                     ["attribute", "count", "sea", "x", "--record"], ["attribute", "sea@x", "--text", "a"]] {
            #expect(try s.run(args).status == 2, "\(args)")
        }
        try s.refused(["attribute", "count", "nosuch", "x"], "nosuch")
        try s.refused(["attribute", "count", "sea@999", "x"], "checkpoint")
        try s.refused(["attribute", "sea", "--file", s.dir.file("missing.txt")], "missing.txt")
    }
}

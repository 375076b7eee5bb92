@testable import DatanetAttribution
import DatanetTestSupport
import Testing

/// The training formats (schema/training.md "Formats"): what each file gives, and every way a
/// file breaks its format's rules named with its file and line.
@Suite struct TrainingContentTests {
    func read(_ name: String, _ text: String) throws(TrainingError) -> TrainingContent {
        try TrainingContent.read(name: name, bytes: Array(text.utf8))
    }

    @Test func eachFormatReads() throws {
        #expect(try read("a.TXT", "hello") == .document("hello"))
        #expect(try read("notes.md", "") == .document(""))
        #expect(try read("data.bin", "x") == .other)
        #expect(try read("README", "x") == .other)
        #expect(try read("data.csv.", "x") == .other && read("dir.csv/notes", "x") == .other)
        #expect(try read("dir.v2/a.md", "x") == .document("x"))
        #expect(try read("l.jsonl", "{\"text\": \"t\", \"label\": -7}") == .labeledText([(1, "t", "-7")]))
        let jl = try read("l.jsonl", "{\"text\": \"good film\", \"label\": \"pos\", \"id\": 7}\n\n{\"label\": 3, \"text\": \"meh\"}\r\n")
        #expect(jl == .labeledText([(1, "good film", "pos"), (3, "meh", "3")]))
        let csv = try read("n.csv", "a,label,b\n1.5,x,-2e3\n0,y,7\n")
        #expect(csv == .numeric(features: ["a", "b"], rows: [(2, [1.5, -2000], "x"), (3, [0, 7], "y")]))
        #expect(TrainingContent.number("0.5") == 0.5 && TrainingContent.number("-0") == 0 && TrainingContent.number("1e150") == 1e150)
    }

    @Test(arguments: [
        ("l.jsonl", "{\"text\": \"a\", \"label\": true}", 1, "label"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": 1.5}", 1, "label"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": null}", 1, "label"),
        ("l.jsonl", "{\"text\": \"a\"}", 1, "label"),
        ("l.jsonl", "{\"text\": 5, \"label\": \"x\"}", 1, "text"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n[1, 2]", 2, "object"),
        ("l.jsonl", "{\"text\": \"a\", \"text\": \"b\", \"label\": \"x\"}", 1, "twice"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": \"x\"", 1, "JSON"),
        ("n.csv", "a,b\n1,2\n", 1, "label"),
        ("n.csv", "a,label\nNaN,x\n", 2, "finite"),
        ("n.csv", "a,label\ninf,x\n", 2, "finite"),
        ("n.csv", "a,label\n,x\n", 2, "finite"),
        ("n.csv", "a,label\n1e999,x\n", 2, "finite"),
        ("n.csv", "a,label\n 1,x\n", 2, "finite"),
        ("n.csv", "a,label\n0x10,x\n", 2, "finite"),
        ("n.csv", "a,label\n007,x\n", 2, "finite"),
        ("n.csv", "a,label\n1e151,x\n", 2, "finite"),
        ("n.csv", "label\nx\n", 1, "feature column"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": 1.0}", 1, "label"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": 1e2}", 1, "label"),
        ("l.jsonl", "{\"text\": \"a\", \"label\": 18446744073709551615}", 1, "label"),
        ("n.csv", "a,label\n1,x,3\n", 0, "line 2"),
        ("n.csv", "label,a,label\n1,2,3\n", 1, "twice"),
    ])
    func malformedFilesNameTheirLine(_ name: String, _ text: String, _ line: Int, _ words: String) {
        do {
            _ = try read(name, text)
            Issue.record("\(name) \(text) was read")
        } catch {
            guard case .malformed(let file, let at, let why) = error else { return }
            #expect(file == name && at == line && "\(error)".contains(words), "\(error)")
            _ = why
        }
    }

    /// Mutated training files (bytes flipped, cut, inserted, duplicated) are read or refused with
    /// a file and line, never a trap; what reads holds only finite numbers within bounds.
    @Test func mutatedFilesReadOrFailCleanly() {
        var rng = SplitMix64(seed: 0x7ea1)
        let seeds: [(String, [UInt8])] = [
            ("a.jsonl", Array("{\"text\": \"a fine film\", \"label\": \"pos\"}\n{\"label\": -3, \"text\": \"\\u00e9t\\u00e9\"}\r\n\n".utf8)),
            ("n.csv", Array("len,label,\"year, A.D.\"\n90,pos,1999\n-1.5e3,\"n,eg\",2004\r\n".utf8)),
            ("d.md", Array("# notes\nsome text\n".utf8)),
        ]
        var refused = 0
        for (name, good) in seeds {
            for round in 0..<2_000 {
                var b = good
                switch round % 5 {
                case 0: b = Array(b.prefix(rng.below(b.count)))
                case 1: b[rng.below(b.count)] ^= UInt8(1 + rng.below(255))
                case 2: b.insert([0x22, 0x2c, 0x0a, 0x7b, 0x7d, 0x3a, 0x5c, 0x30, 0x2e, 0x65, 0xff][rng.below(11)], at: rng.below(b.count + 1))
                case 3: let at = rng.below(b.count); b.insert(contentsOf: b[at..<min(b.count, at + rng.below(20))], at: at)
                default: for _ in 0..<3 { b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                }
                do {
                    if case .numeric(let names, let rows) = try TrainingContent.read(name: name, bytes: b) {
                        #expect(rows.allSatisfy { $0.values.count == names.count && $0.values.allSatisfy { $0.isFinite && abs($0) <= 1e150 } })
                    }
                } catch {
                    refused += 1
                    #expect(!"\(error)".isEmpty)
                }
            }
        }
        #expect(refused > 1_000)
    }

    @Test func invalidUTF8IsRefused() {
        #expect(throws: TrainingError.self) { try TrainingContent.read(name: "a.txt", bytes: [0x61, 0xff]) }
        #expect(throws: TrainingError.self) { try TrainingContent.read(name: "a.csv", bytes: [0x6c, 0xff]) }
    }
}

/// Text features (schema/training.md "Text features"): tokens, simple case folding, buckets.
@Suite struct TextFeaturesTests {
    @Test func tokensAreRunsOfLettersAndDigitsFolded() {
        #expect(TextFeatures.tokens("Hello, World! 42x_y") == ["hello", "world", "42x", "y"])
        #expect(TextFeatures.tokens("ΣΟΦΊΑ σοφίας") == ["σοφία", "σοφίασ"], "final sigma folds to σ")
        #expect(TextFeatures.tokens("ſtraße STRASSE ẞ") == ["straße", "strasse", "ß"], "ſ → s; ẞ → ß (simple, not full, folding)")
        #expect(TextFeatures.tokens("İstanbul µm") == ["İstanbul", "μm"], "İ has no simple folding; the micro sign folds to μ")
        #expect(TextFeatures.tokens("ꭰꮿ ᏸ ᎠᏯ") == ["ᎠᏯ", "Ᏸ", "ᎠᏯ"], "Cherokee small letters fold to capitals, capitals stay")
        #expect(TextFeatures.tokens("٣٤ ½ 二十") == ["٣٤", "二十"], "decimal digits count, other numbers do not")
        #expect(TextFeatures.tokens("") == [])
    }

    @Test func bucketsAreFNV1aLowBits() {
        // FNV-1a 64 of "" is the offset basis; of "a" it is 0xaf63dc4c8601ec8c.
        #expect(TextFeatures.bucket("") == UInt32(UInt64(0xcbf2_9ce4_8422_2325) & 0x3ffff))
        #expect(TextFeatures.bucket("a") == UInt32(UInt64(0xaf63_dc4c_8601_ec8c) & 0x3ffff))
        let counts = TextFeatures.counts("the cat the hat THE")
        #expect(counts.reduce(0) { $0 + Int($1.count) } == 5 && counts.map(\.bucket) == counts.map(\.bucket).sorted())
        #expect(counts.first { $0.bucket == TextFeatures.bucket("the") }?.count == 3)
    }
}

/// The kNN classifier on small sets whose answers are known.
@Suite struct KNNModelTests {
    @Test func numericNeighboursVoteAndTiesGoToTheNearest() throws {
        let rows: [[Double]] = [[0, 0], [0, 1], [10, 10], [10, 11], [5, 5]]
        let m = KNNModel(k: 3, features: .numeric(rows: rows, scale: .none), labels: ["a", "a", "b", "b", "c"],
                         sources: rows.indices.map { ExampleSource(contribution: $0, file: "f.csv", line: $0 + 2) })
        let (label, near) = try m.predict(.numeric([0, 0.4]))
        #expect(label == "a" && near.map(\.index) == [0, 1, 4])
        #expect(abs(near[0].distance - 0.16) < 1e-15)
        // K = 2 at equal distance from one "a" and one "b": the nearer-ranked (earlier) wins.
        let two = KNNModel(k: 2, features: .numeric(rows: [[1], [-1]], scale: .none), labels: ["b", "a"], sources: [])
        #expect(try two.predict(.numeric([0])).label == "b")
        #expect(throws: AttributionError.self) { try m.predict(.numeric([1])) }
        #expect(throws: AttributionError.self) { try m.predict(.text("x")) }
        // Standardized: a feature of deviation 0 is left unscaled, the other divided by its deviation.
        let s = KNNModel(k: 1, features: .numeric(rows: [[0, 5], [2, 5]], scale: .standard), labels: ["x", "y"], sources: [])
        #expect(try s.distances(to: .numeric([1, 6])) == [1 + 1, 1 + 1])
    }

    @Test func textNeighboursByTFIDFCosine() throws {
        let docs = ["the quick brown fox", "a lazy dog sleeps", "quick quick fox runs"]
        let m = KNNModel(k: 1, features: .text(documents: docs.map(TextFeatures.counts)), labels: ["fox", "dog", "fox"], sources: [])
        let d = try m.distances(to: .text("lazy dog"))
        #expect(d[1] < d[0] && d[1] < d[2] && d[0] == 1 && d[2] == 1)
        #expect(try m.predict(.text("quick fox")).label == "fox")
        #expect(try m.distances(to: .text("!!!")) == [1, 1, 1], "a query with no tokens is at distance 1 from all")
        #expect(abs(try m.distances(to: .text("a lazy dog sleeps"))[1]) < 1e-12)
    }
}

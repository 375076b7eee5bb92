@testable import DatanetRecords
import DatanetTestSupport
import Testing

/// The strict RFC 4180 reader behind `diff` (and, later, training sets): the RFC's own shapes,
/// each refusal with its line, and a mutation fuzzer: no input crashes it, and whatever it
/// accepts survives a write and a re-read unchanged.
@Suite struct CSVTests {
    func table(_ text: String) throws -> CSVTable { try CSVTable(Array(text.utf8)) }

    @Test func readsWhatRFC4180Writes() throws {
        let t = try table("id,text,n\r\n1,\"a, b\",2\r\n2,\"say \"\"hi\"\"\",\r\n3,\"two\nlines\",4")
        #expect(t.header == ["id", "text", "n"])
        #expect(t.rows.map(\.fields) == [["1", "a, b", "2"], ["2", "say \"hi\"", ""], ["3", "two\nlines", "4"]])
        #expect(t.rows.map(\.line) == [2, 3, 4])
        let lf = try table("a,b\n,\n\"\",x\n")
        #expect(lf.rows.map(\.fields) == [["", ""], ["", "x"]])
        #expect(try table("only\n").rows.isEmpty)
    }

    @Test(arguments: [
        ("", "CSV has no header row"),
        ("a,b\n1,2,3\n", "line 2: 3 fields where the header has 2"),
        ("a,b\n1,x\"y\n", "line 2: a quote inside an unquoted field"),
        ("a,b\n1,\"open\n2,3\n", "line 2: a quoted field is not closed"),
        ("a,b\n\"x\"y,1\n", "line 2: text after a closing quote"),
        ("a,b\n1,\"two\nlines\"\n2\n", "line 4: 1 fields where the header has 2"),
    ])
    func refusesNamingTheLine(_ text: String, _ why: String) throws {
        #expect { try table(text) } throws: { "\($0)".contains(why) }
    }

    @Test func refusesInvalidUTF8() {
        #expect { try CSVTable([0x61, 0x0a, 0xff, 0x0a]) } throws: { "\($0)".contains("not valid UTF-8") }
    }

    /// Writes a table as RFC 4180 does (every field quoted, CRLF), for the round trip.
    func written(_ t: CSVTable) -> [UInt8] {
        func record(_ fields: [String]) -> String { fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",") }
        return Array(([record(t.header)] + t.rows.map { record($0.fields) }).joined(separator: "\r\n").utf8)
    }

    @Test func mutatedInputsNeverCrashAndRoundTrip() throws {
        let seeds = ["id,text,n\r\n1,\"a, b\",2\r\n2,\"say \"\"hi\"\"\",\r\n", "a,b\n1,2\n3,\"x\ny\"\n", "k\n\"\"\n"].map { Array($0.utf8) }
        var rng = SplitMix64(seed: 0xC5F)
        var accepted = 0
        for i in 0..<20_000 {
            var b = seeds[i % seeds.count]
            rng.mutate(&b, maxEdits: 3)
            guard let t = try? CSVTable(b) else { continue }
            accepted += 1
            let again = try CSVTable(written(t))
            #expect(again.header == t.header && again.rows.map(\.fields) == t.rows.map(\.fields), "\(b)")
        }
        #expect(accepted > 1000)
    }
}

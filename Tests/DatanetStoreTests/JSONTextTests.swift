@testable import datanet
import Foundation
import Testing

/// `--json` output written by `JSONText` is what `JSONSerialization` writes with the options
/// commands used (`.prettyPrinted`, `.sortedKeys`, `.withoutEscapingSlashes`), byte for byte,
/// for every kind of value commands print, with keys as commands name them (lower case, no
/// digits: data keys such as labels may be ordered otherwise, see `JSONText`).
@Suite struct JSONTextTests {
    static func foundation(_ v: Any) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]))
    }

    @Test func writesWhatFoundationWrites() throws {
        let none: String? = nil
        let samples: [Any] = [
            [String: Any](),
            [Any](),
            ["b": 1, "a": "x", "c_d": [1, 2, 3], "c": [String: Any](), "e": [Any](), "f": NSNull(), "g": true, "h": false] as [String: Any],
            [["id": "ab/cd", "size": UInt64(1) << 40, "neg": -7, "ratio": 0.5, "whole": 3.0, "tiny": 1e-05, "big": 12345.678] as [String: Any]],
            ["text": "quote \" backslash \\ newline \n tab \t cr \r bell \u{07} del \u{7f} é 漢字 😀 / slash"],
            ["nested": ["deeper": ["deepest": [[String: Any](), [Any](), ["k": "v"]]]]] as [String: Any],
            ["names": ["alpha", "beta"], "counts": [UInt64(0), UInt64.max], "ints": [Int.min, Int.max]] as [String: Any],
            ["opt": none as Any, "optSome": Optional("here") as Any] as [String: Any],
            ["large": [1e15, 1e16, 123456789012345.0, 1.5e300, -2.5, 0.1, 1.0 / 3.0, 4503599627370497.0]] as [String: Any],
            // What `log --json` prints of a record: a value Foundation parsed (numbers as NSNumber).
            try JSONSerialization.jsonObject(with: Data(#"{"n": 7, "f": 2.5, "t": true, "z": false, "a": [1, "s", null, {"k": -1}], "e": {}}"#.utf8)),
        ]
        for (i, v) in samples.enumerated() {
            let ours = try JSONText.pretty(v), theirs = try Self.foundation(v)
            let same = ours == theirs
            #expect(same, "sample \(i): \(String(decoding: ours, as: UTF8.self)) vs \(String(decoding: theirs, as: UTF8.self))")
        }
    }

    /// Keys that are data: sorted by their scalars, and the output still parses to the same value.
    @Test func dataKeysSortByScalars() throws {
        let labels: [String: Any] = ["class10": 1, "class9": 2, "MIT": 3, "cc-by-4.0": 4, "Zebra": 5, "apple": 6]
        let text = try JSONText.pretty(["labels": labels])
        let order = String(decoding: text, as: UTF8.self).split(separator: "\n").compactMap { $0.split(separator: "\"").dropFirst().first.map(String.init) }
        #expect(order == ["labels", "MIT", "Zebra", "apple", "cc-by-4.0", "class10", "class9"])
        let back = try #require(try JSONSerialization.jsonObject(with: Data(text)) as? [String: [String: Int]])
        #expect(back == ["labels": labels.mapValues { $0 as! Int }])
    }

    @Test func refusesWhatIsNotJSON() {
        #expect(throws: JSONText.Unwritable.self) { try JSONText.pretty(["x": Double.nan]) }
        #expect(throws: JSONText.Unwritable.self) { try JSONText.pretty(["x": Date()]) }
    }
}

import DatanetRecords
import Foundation

/// Where an example came from: its contribution (by position in the training set's intake
/// order), the file within that contribution's content, and the line or row in that file.
public struct ExampleSource: Hashable, Sendable {
    public var contribution: Int
    public var file: String
    /// 1-based line of a JSON Lines record or CSV row; 0 for a whole-file document.
    public var line: Int
    public init(contribution: Int, file: String, line: Int) { (self.contribution, self.file, self.line) = (contribution, file, line) }
}

/// What one file of a contribution holds for training (schema/training.md "Formats").
public enum TrainingContent: Equatable, Sendable {
    /// `.txt` or `.md`: one unlabeled document, the file's text.
    case document(String)
    /// `.jsonl`: labeled text, one example per line, with its line.
    case labeledText([(line: Int, text: String, label: String)])
    /// `.csv`: numeric examples: the feature names (header order, `label` left out) and each
    /// row's features and label, with its line.
    case numeric(features: [String], rows: [(line: Int, values: [Double], label: String)])
    /// Any other file: not training content (left out, counted).
    case other

    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.document(let x), .document(let y)): x == y
        case (.labeledText(let x), .labeledText(let y)): x.map(\.line) == y.map(\.line) && x.map(\.text) == y.map(\.text) && x.map(\.label) == y.map(\.label)
        case (.numeric(let f, let x), .numeric(let g, let y)):
            f == g && x.map(\.line) == y.map(\.line) && x.map(\.label) == y.map(\.label) && x.map(\.values) == y.map(\.values)
        case (.other, .other): true
        default: false
        }
    }

    /// Reads `bytes` as the format its name's extension says; a file that breaks its format's
    /// rules throws `TrainingError.malformed` naming the file and line.
    public static func read(name: String, bytes: [UInt8]) throws(TrainingError) -> TrainingContent {
        // The text after the last dot of the last path component (none: not training content).
        let file = name.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard let dot = file.lastIndex(of: "."), file.index(after: dot) < file.endIndex else { return .other }
        let ext = file[file.index(after: dot)...].lowercased()
        switch ext {
        case "txt", "md":
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed(file: name, line: 0, "the text is not valid UTF-8") }
            return .document(text)
        case "jsonl":
            return .labeledText(try labeledLines(name, bytes))
        case "csv":
            return try numericRows(name, bytes)
        default:
            return .other
        }
    }

    /// JSON Lines: each non-empty line one object with a string `text` and a `label` that is
    /// a string or an integer (kept as its decimal string). Other keys are allowed and ignored.
    static func labeledLines(_ name: String, _ bytes: [UInt8]) throws(TrainingError) -> [(line: Int, text: String, label: String)] {
        var out = [(line: Int, text: String, label: String)]()
        var line = 0
        for raw in bytes.split(separator: 0x0a, omittingEmptySubsequences: false) {
            line += 1
            var slice = raw
            if slice.last == 0x0d { slice = slice.dropLast() }
            if slice.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let data = Data(slice)
            do { try StrictJSON.check(data) } catch { throw .malformed(file: name, line: line, "\(error)") }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let text = object["text"] as? String,
                  !(object["text"] is NSNumber), let label = Self.label(object["label"]) else {
                throw .malformed(file: name, line: line, "not an object with a string `text` and a `label` that is a string or an integer")
            }
            out.append((line, text, label))
        }
        return out
    }

    /// A JSON label as kept: a string as it is, an integer (in the signed 64-bit range) as its
    /// decimal string; nil for anything else (a boolean, a fraction — even 1.0 or 1e2 — null, …).
    static func label(_ value: Any?) -> String? {
        if let n = value as? NSNumber {
            // JSONSerialization keeps how the number was written: booleans and fractions have
            // their own types; only an integer token counts.
            let type = String(cString: n.objCType)
            guard String(describing: Swift.type(of: n)) != "__NSCFBoolean", !["c", "d", "f", "Q", "L"].contains(type) else { return nil }
            return String(n.int64Value)
        }
        return value as? String
    }

    /// CSV (RFC 4180) with a header row holding a `label` column; every other cell a finite
    /// number read as an IEEE double (no NaN, infinity or empty cell).
    static func numericRows(_ name: String, _ bytes: [UInt8]) throws(TrainingError) -> TrainingContent {
        let table: CSVTable
        do { table = try CSVTable(bytes) } catch { throw .malformed(file: name, line: 0, "\(error)") }
        guard let labelAt = table.header.firstIndex(of: "label") else { throw .malformed(file: name, line: 1, "the header has no `label` column") }
        guard table.header.filter({ $0 == "label" }).count == 1 else { throw .malformed(file: name, line: 1, "the header names `label` twice") }
        let features = table.header.enumerated().filter { $0.offset != labelAt }.map(\.element)
        guard !features.isEmpty else { throw .malformed(file: name, line: 1, "the header has no feature column besides `label`") }
        guard features.count <= KNNArtifact.maximumFeatures, features.allSatisfy({ $0.utf8.count <= KNNArtifact.maximumText }) else {
            throw .malformed(file: name, line: 1, "more than \(KNNArtifact.maximumFeatures) columns, or a column name longer than \(KNNArtifact.maximumText) bytes")
        }
        var rows = [(line: Int, values: [Double], label: String)]()
        rows.reserveCapacity(table.rows.count)
        for r in table.rows {
            var values = [Double]()
            values.reserveCapacity(features.count)
            for (j, cell) in r.fields.enumerated() where j != labelAt {
                guard let v = Self.number(cell) else {
                    throw .malformed(file: name, line: r.line, "column `\(table.header[j])` holds '\(cell.prefix(40))', not a finite number")
                }
                values.append(v)
            }
            guard r.fields[labelAt].utf8.count <= KNNArtifact.maximumText else {
                throw .malformed(file: name, line: r.line, "`label` is longer than \(KNNArtifact.maximumText) bytes")
            }
            rows.append((r.line, values, r.fields[labelAt]))
        }
        return .numeric(features: features, rows: rows)
    }

    /// A decimal number as RFC 8259 writes one (optional minus, digits without a leading zero,
    /// fraction, exponent) of magnitude at most 1e150, read as the nearest double; anything
    /// else (empty, NaN, inf, hex, spaces, 007, 1e200) is nil.
    public static func number(_ cell: String) -> Double? {
        var cell = cell
        return cell.withUTF8 { b -> Double? in
            var i = 0
            func digits() -> Bool {
                let start = i
                while i < b.count && b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
                return i > start
            }
            if i < b.count && b[i] == 0x2d { i += 1 }
            let first = i
            guard digits(), b[first] != 0x30 || i == first + 1 else { return nil } // no leading zero
            if i < b.count && b[i] == 0x2e { i += 1; guard digits() else { return nil } }
            if i < b.count && (b[i] == 0x65 || b[i] == 0x45) {
                i += 1
                if i < b.count && (b[i] == 0x2b || b[i] == 0x2d) { i += 1 }
                guard digits() else { return nil }
            }
            // Magnitudes past 1e150 are refused: squares and sums of squares then stay finite.
            guard i == b.count, let v = Double(Substring(decoding: b, as: UTF8.self)), v.isFinite, abs(v) <= 1e150 else { return nil }
            return v
        }
    }
}

/// Why training content was left out.
public enum TrainingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file breaks its format's rules: its name, the line (0: the whole file), the problem.
    case malformed(file: String, line: Int, String)

    public var description: String {
        switch self {
        case .malformed(let file, let line, let why): line > 0 ? "\(file), line \(line): \(why)" : "\(file): \(why)"
        }
    }
}

import Foundation

/// The `--json` output of every command: the layout Foundation's `JSONSerialization` writes with
/// `.prettyPrinted`, `.sortedKeys` and `.withoutEscapingSlashes` (two-space indent, `"key" : value`,
/// its escapes and numbers), written directly. Foundation on Linux compares sorted keys through a
/// locale created per comparison, which took 16 s for the 100,000 rows of `status --json`. Keys
/// here are sorted by their Unicode scalars: the same order as Foundation's for the lower-case
/// keys commands name, but not always for keys that are data (labels, metadata), which Foundation
/// orders case-insensitively with digits by value (`class9` before `class10`); JSON objects are
/// unordered, so readers are unaffected.
enum JSONText {
    /// An output value that is not JSON (a command's own mistake, never input's).
    struct Unwritable: Error, CustomStringConvertible {
        let type: String
        var description: String { "cannot write a \(type) as JSON" }
    }

    /// `value` (dictionaries keyed by strings, arrays, strings, numbers, booleans, `NSNull`,
    /// and nil optionals) as pretty-printed JSON text.
    static func pretty(_ value: Any) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(1 << 16)
        try write(value, level: 0, into: &out)
        return out
    }

    private static func write(_ value: Any, level: Int, into out: inout [UInt8]) throws {
        // Exact types first: a cast of a container to String (or back) on Linux tries Foundation's
        // bridging through NSDictionary and NSArray, which cost most of a 100,000-row listing.
        let t = type(of: value)
        if t == String.self { return string(value as! String, into: &out) }
        if t == Int.self { return out += Array(String(value as! Int).utf8) }
        if t == UInt64.self { return out += Array(String(value as! UInt64).utf8) }
        if t == Bool.self { return out += Array(((value as! Bool) ? "true" : "false").utf8) }
        // A number Foundation parsed (`log --json` prints records so): written as Foundation writes it.
        if t is NSNumber.Type { return out += Array(try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])) }
        if let dict = value as? any StringKeyed {
            return try container(dict.pairs.sorted { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }, open: 0x7b, close: 0x7d,
                                 level: level, into: &out) { pair, out in
                string(pair.0, into: &out)
                out += Array(" : ".utf8)
                try write(pair.1, level: level + 1, into: &out)
            }
        }
        if let optional = value as? any Wrapping {
            guard let inner = optional.wrapped else { return out += Array("null".utf8) }
            return try write(inner, level: level, into: &out)
        }
        if let array = value as? any Listing {
            return try container(array.elements, open: 0x5b, close: 0x5d, level: level, into: &out) { element, out in
                try write(element, level: level + 1, into: &out)
            }
        }
        switch value {
        case let s as Substring: string(String(s), into: &out)
        case let n as Int64: out += Array(String(n).utf8)
        case let n as UInt32: out += Array(String(n).utf8)
        case let n as Int32: out += Array(String(n).utf8)
        case let n as UInt: out += Array(String(n).utf8)
        case let n as UInt16: out += Array(String(n).utf8)
        case let n as UInt8: out += Array(String(n).utf8)
        case let d as Double: try number(d, into: &out)
        case let f as Float: try number(Double(f), into: &out)
        case is NSNull: out += Array("null".utf8)
        default:
            throw Unwritable(type: "\(type(of: value))")
        }
    }

    /// `[` or `{`, a line per element indented one level deeper, and the closing bracket on a
    /// line of its own (an empty one gives an empty line between them, as Foundation does).
    private static func container<E>(_ elements: [E], open: UInt8, close: UInt8, level: Int, into out: inout [UInt8],
                                     _ each: (E, inout [UInt8]) throws -> Void) throws {
        out.append(open)
        out.append(0x0a)
        for (i, e) in elements.enumerated() {
            if i > 0 { out += [0x2c, 0x0a] }
            out += repeatElement(0x20, count: 2 * (level + 1))
            try each(e, &out)
        }
        out.append(0x0a)
        out += repeatElement(0x20, count: 2 * level)
        out.append(close)
    }

    private static func number(_ d: Double, into out: inout [UInt8]) throws {
        guard d.isFinite else { throw Unwritable(type: "non-finite number") }
        // As Foundation writes it: Swift's shortest form, without a trailing ".0".
        var text = "\(d)"
        if text.hasSuffix(".0") { text.removeLast(2) }
        out += Array(text.utf8)
    }

    /// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX` escapes,
    /// everything else (`/` and non-ASCII included) as its UTF-8.
    static func string(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out += [0x5c, 0x22]
            case 0x5c: out += [0x5c, 0x5c]
            case 0x0a: out += [0x5c, 0x6e]
            case 0x0d: out += [0x5c, 0x72]
            case 0x09: out += [0x5c, 0x74]
            case 0x08: out += [0x5c, 0x62]
            case 0x0c: out += [0x5c, 0x66]
            case ..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += [0x5c, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xf)]]
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}

/// A dictionary keyed by strings, whatever its values' type.
private protocol StringKeyed { var pairs: [(String, Any)] { get } }
extension Dictionary: StringKeyed where Key == String {
    fileprivate var pairs: [(String, Any)] { map { ($0.key, $0.value as Any) } }
}

/// An array, whatever its elements' type.
private protocol Listing { var elements: [Any] { get } }
extension Array: Listing {
    fileprivate var elements: [Any] { map { $0 as Any } }
}

/// An optional, whatever its type: nil is written as null.
private protocol Wrapping { var wrapped: Any? { get } }
extension Optional: Wrapping {
    fileprivate var wrapped: Any? { map { $0 as Any } }
}

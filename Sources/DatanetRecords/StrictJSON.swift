import DatanetObjects
import Foundation

/// A strict check of JSON handed to datanet from outside (receipts, manifest lines), run before
/// any JSON reader sees it, because readers disagree on exactly what this refuses: a key given
/// twice in one object (Foundation keeps the first value, other readers the last, so one file
/// could "hold" for datanet while telling another tool something else), nesting deeper than
/// `maximumDepth`, text that is not one RFC 8259 value in valid UTF-8, and escapes naming lone
/// UTF-16 surrogates. Keys are compared as their unescaped UTF-8 bytes, never normalized.
public enum StrictJSON {
    /// Deeper nesting is refused: no datanet document goes beyond 6 levels.
    public static let maximumDepth = 64

    /// Throws `.malformed` naming the first problem and its byte offset.
    public static func check(_ data: Data) throws(RecordError) {
        let result: Result<Void, RecordError> = data.withUnsafeBytes { raw in
            var s = Scanner(bytes: raw)
            return Result { () throws(RecordError) in
                guard String(validating: raw, as: UTF8.self) != nil else { throw .malformed("JSON is not valid UTF-8") }
                s.skipSpace()
                try s.value(depth: 0)
                s.skipSpace()
                guard s.at == raw.count else { throw s.error("bytes after the JSON value") }
            }
        }
        try result.get()
    }

    private struct Scanner {
        package let bytes: UnsafeRawBufferPointer
        package var at = 0

        package init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        package func error(_ what: String) -> RecordError { .malformed("JSON: \(what) at byte \(at)") }

        package var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        package mutating func skipSpace() {
            while let b = peek, b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d { at += 1 }
        }

        package mutating func expect(_ b: UInt8) throws(RecordError) {
            guard peek == b else { throw error("expected '\(Character(Unicode.Scalar(b)))'") }
            at += 1
        }

        package mutating func value(depth: Int) throws(RecordError) {
            guard depth < StrictJSON.maximumDepth else { throw error("nesting deeper than \(StrictJSON.maximumDepth)") }
            switch peek {
            case UInt8(ascii: "{"): try object(depth: depth)
            case UInt8(ascii: "["): try array(depth: depth)
            case UInt8(ascii: "\""): _ = try string(collect: false)
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case nil: throw error("unexpected end")
            default: try number()
            }
        }

        package mutating func literal(_ word: StaticString) throws(RecordError) {
            let n = word.utf8CodeUnitCount
            guard at + n <= bytes.count, memcmp(bytes.baseAddress! + at, word.utf8Start, n) == 0 else { throw error("not a JSON value") }
            at += n
        }

        package mutating func object(depth: Int) throws(RecordError) {
            at += 1
            // Bytes, and Swift Strings too: Foundation's readers compare keys by canonical
            // equivalence ("é" and "e\u{301}", "K" and U+212A are one key to them).
            var keys = Set<[UInt8]>(), texts = Set<String>()
            skipSpace()
            if peek == UInt8(ascii: "}") { at += 1; return }
            while true {
                skipSpace()
                let start = at
                guard peek == UInt8(ascii: "\"") else { throw error("expected a key") }
                let key = try string(collect: true)
                guard keys.insert(key).inserted, texts.insert(String(decoding: key, as: UTF8.self)).inserted else {
                    at = start
                    throw error("key \"\(String(decoding: key, as: UTF8.self))\" appears twice in one object")
                }
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect(UInt8(ascii: "}"))
                return
            }
        }

        package mutating func array(depth: Int) throws(RecordError) {
            at += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { at += 1; return }
            while true {
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect(UInt8(ascii: "]"))
                return
            }
        }

        /// A string's unescaped UTF-8 bytes (only when `collect`: values need only checking).
        package mutating func string(collect: Bool) throws(RecordError) -> [UInt8] {
            at += 1
            var out = [UInt8]()
            while true {
                guard let b = peek else { throw error("unterminated string") }
                at += 1
                switch b {
                case UInt8(ascii: "\""): return out
                case 0..<0x20: throw error("a control character inside a string")
                case UInt8(ascii: "\\"):
                    guard let e = peek else { throw error("unterminated string") }
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): if collect { out.append(e) }
                    case UInt8(ascii: "b"): if collect { out.append(0x08) }
                    case UInt8(ascii: "f"): if collect { out.append(0x0c) }
                    case UInt8(ascii: "n"): if collect { out.append(0x0a) }
                    case UInt8(ascii: "r"): if collect { out.append(0x0d) }
                    case UInt8(ascii: "t"): if collect { out.append(0x09) }
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xd800..<0xdc00).contains(scalar) {
                            guard peek == UInt8(ascii: "\\"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "u") else {
                                throw error("a lone UTF-16 surrogate escape")
                            }
                            at += 2
                            let low = try hex4()
                            guard (0xdc00..<0xe000).contains(low) else { throw error("a lone UTF-16 surrogate escape") }
                            scalar = 0x10000 + ((scalar - 0xd800) << 10) + (low - 0xdc00)
                        } else if (0xdc00..<0xe000).contains(scalar) {
                            throw error("a lone UTF-16 surrogate escape")
                        }
                        if collect { out += Array(String(Unicode.Scalar(scalar)!).utf8) }
                    default: throw error("an invalid escape")
                    }
                default: if collect { out.append(b) }
                }
            }
        }

        package mutating func hex4() throws(RecordError) -> UInt32 {
            var v: UInt32 = 0
            for _ in 0..<4 {
                guard let b = peek else { throw error("a short \\u escape") }
                let d: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
                default: throw error("a \\u escape with a non-hex digit")
                }
                v = v << 4 | UInt32(d)
                at += 1
            }
            return v
        }

        /// RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        package mutating func number() throws(RecordError) {
            func digits() -> Int {
                let start = at
                while let b = peek, b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") { at += 1 }
                return at - start
            }
            if peek == UInt8(ascii: "-") { at += 1 }
            if peek == UInt8(ascii: "0") { at += 1 } else { guard digits() > 0 else { throw error("not a JSON value") } }
            if peek == UInt8(ascii: ".") { at += 1; guard digits() > 0 else { throw error("a number without digits after '.'") } }
            if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
                at += 1
                if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw error("a number without exponent digits") }
            }
        }
    }
}

/// Base64 from outside, read canonically: Foundation also accepts other padding and set
/// trailing bits, so one byte string would have several spellings, and a receipt several
/// texts that all verify. Only the form `base64EncodedString()` writes is accepted.
public enum CanonicalBase64 {
    /// The bytes `text` encodes, or nil unless it is their one canonical spelling.
    public static func decode(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
        return Array(data)
    }
}

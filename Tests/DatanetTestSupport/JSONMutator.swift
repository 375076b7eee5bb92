import Foundation

/// A JSON document as an ordered tree that can also hold what strict readers refuse (keys given
/// twice, numbers of any size, nesting of any depth): what the seeded mutation of receipts and
/// manifests works on.
public indirect enum JSONTree: Equatable, Sendable {
    case null, bool(Bool), number(String), string(String), array([JSONTree])
    case object([Member])

    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSONTree
        public init(_ key: String, _ value: JSONTree) { (self.key, self.value) = (key, value) }
    }

    /// Parses JSON that a datanet writer produced (well-formed; not a strict reader).
    public static func parse(_ bytes: [UInt8]) -> JSONTree? {
        var p = Parser(b: bytes)
        guard let v = p.value() else { return nil }
        p.space()
        return p.at == bytes.count ? v : nil
    }

    /// Compact JSON text; members are written as held, duplicates included.
    public var serialized: [UInt8] {
        var out = [UInt8]()
        write(&out)
        return out
    }

    private func write(_ out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s): Self.quote(s, &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() { if i > 0 { out.append(UInt8(ascii: ",")) }; v.write(&out) }
            out.append(UInt8(ascii: "]"))
        case .object(let m):
            out.append(UInt8(ascii: "{"))
            for (i, e) in m.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.quote(e.key, &out)
                out.append(UInt8(ascii: ":"))
                e.value.write(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func quote(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), b]
            case 0..<0x20: out += Array(String(format: "\\u%04x", b).utf8)
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private struct Parser {
        let b: [UInt8]
        var at = 0
        mutating func space() { while at < b.count, [0x20, 0x09, 0x0a, 0x0d].contains(b[at]) { at += 1 } }
        mutating func value() -> JSONTree? {
            space()
            guard at < b.count else { return nil }
            switch b[at] {
            case UInt8(ascii: "{"):
                at += 1
                var members = [Member]()
                space()
                if at < b.count, b[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                while true {
                    space()
                    guard case .string(let k)? = value() else { return nil }
                    space()
                    guard at < b.count, b[at] == UInt8(ascii: ":") else { return nil }
                    at += 1
                    guard let v = value() else { return nil }
                    members.append(Member(k, v))
                    space()
                    guard at < b.count else { return nil }
                    at += 1
                    if b[at - 1] == UInt8(ascii: "}") { return .object(members) }
                    guard b[at - 1] == UInt8(ascii: ",") else { return nil }
                }
            case UInt8(ascii: "["):
                at += 1
                var items = [JSONTree]()
                space()
                if at < b.count, b[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                while true {
                    guard let v = value() else { return nil }
                    items.append(v)
                    space()
                    guard at < b.count else { return nil }
                    at += 1
                    if b[at - 1] == UInt8(ascii: "]") { return .array(items) }
                    guard b[at - 1] == UInt8(ascii: ",") else { return nil }
                }
            case UInt8(ascii: "\""):
                // Find the closing quote, then let Foundation unescape the string alone.
                var end = at + 1
                while end < b.count, b[end] != UInt8(ascii: "\"") { end += b[end] == UInt8(ascii: "\\") ? 2 : 1 }
                guard end < b.count, let s = try? JSONDecoder().decode(String.self, from: Data(b[at...end])) else { return nil }
                at = end + 1
                return .string(s)
            case UInt8(ascii: "t"): at += 4; return .bool(true)
            case UInt8(ascii: "f"): at += 5; return .bool(false)
            case UInt8(ascii: "n"): at += 4; return .null
            default:
                let start = at
                while at < b.count, "+-.eE0123456789".utf8.contains(b[at]) { at += 1 }
                return at > start ? .number(String(decoding: b[start..<at], as: UTF8.self)) : nil
            }
        }
    }
}

extension SplitMix64 {
    /// A value below `n` (n > 0).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }

    /// Values a hostile editor puts in a field: other types, edge numbers, long and odd strings.
    public mutating func hostileValue(like old: JSONTree) -> JSONTree {
        let numbers = ["0", "1", "-1", "2", "255", "4294967296", "9223372036854775807", "9223372036854775808",
                       "18446744073709551615", "18446744073709551616", "-9223372036854775809", "1e400", "-0", "1.5", "1e2"]
        switch below(12) {
        case 0: return .null
        case 1: return .bool(below(2) == 0)
        case 2, 3: return .number(numbers[below(numbers.count)])
        case 4:
            if case .number(let n) = old, let v = UInt64(n) {
                return .number(String([v &+ 1, v &- 1, v / 2, v &* 2, v &+ 1000][below(5)]))
            }
            return .number(numbers[below(numbers.count)])
        case 5: return .string(String(repeating: "A", count: [0, 1, 31, 64, 65, 4096, 70_000][below(7)]))
        case 6:
            // The same string with one character changed, dropped or doubled (hex ids, base64).
            guard case .string(let s) = old, !s.isEmpty else { return .string("") }
            var u = Array(s.utf8)
            let i = below(u.count)
            switch below(3) {
            case 0:
                let alphabet = Array("0123456789abcdefABCDEF+/=-_ \u{7f}".utf8)
                u[i] = alphabet[below(alphabet.count)]
            case 1: u.remove(at: i)
            default: u.insert(u[i], at: i)
            }
            return .string(String(decoding: u, as: UTF8.self))
        case 7: return .array(below(2) == 0 ? [] : [old, old])
        case 8: return .object(below(2) == 0 ? [] : [.init("x", old)])
        case 9:
            var v = old
            for _ in 0..<[10, 62, 63, 64, 65, 1000][below(6)] { v = below(2) == 0 ? .array([v]) : .object([.init("a", v)]) }
            return v
        case 10: return .string(["\u{0}", "\u{1b}[31m", "\n", "é", "e\u{301}", "\u{202e}", "\u{fffd}"][below(7)])
        default: return .string(String(decoding: bytes(below(48)).map { $0 % 94 + 33 }, as: UTF8.self))
        }
    }

    /// One structural or value edit somewhere in `tree`: replace a value, drop or add a member,
    /// give a key twice, reorder, drop or repeat array items, or copy a value from elsewhere.
    public mutating func mutate(_ tree: inout JSONTree) {
        let paths = tree.paths()
        let path = paths[below(paths.count)]
        let donor = tree[paths[below(paths.count)]]
        tree.edit(path) { v in
            switch below(8) {
            case 0, 1: v = hostileValue(like: v)
            case 2: v = donor
            default:
                switch v {
                case .object(var m):
                    let i = below(m.count)
                    switch below(5) {
                    case 0 where !m.isEmpty: m.remove(at: i)
                    case 1 where !m.isEmpty: m.insert(.init(m[i].key, hostileValue(like: m[i].value)), at: below(2) == 0 ? i : m.count)
                    case 2 where !m.isEmpty: m.insert(m[i], at: m.count)
                    case 3 where m.count > 1: m.swapAt(i, below(m.count))
                    default: m.append(.init(["extra", "view", "index", "type", "\u{0}", ""][below(6)], hostileValue(like: .null)))
                    }
                    v = .object(m)
                case .array(var a):
                    let i = below(a.count)
                    switch below(4) {
                    case 0 where !a.isEmpty: a.remove(at: i)
                    case 1 where !a.isEmpty: a.insert(a[i], at: below(a.count + 1))
                    case 2 where a.count > 1: a.swapAt(i, below(a.count))
                    default: a.append(a.isEmpty ? .null : a[i])
                    }
                    v = .array(a)
                default: v = hostileValue(like: v)
                }
            }
        }
    }
}

extension JSONTree {
    /// A step into an object member (by position) or an array item.
    public typealias Path = [Int]

    /// Every path in the tree down to `depth` levels, the root first (deeper nesting, which
    /// only a mutation makes, is not walked: its paths would cost the square of its depth).
    public func paths(depth: Int = 12) -> [Path] {
        var out: [Path] = [[]]
        guard depth > 0 else { return out }
        switch self {
        case .object(let m): for (i, e) in m.enumerated() { out += e.value.paths(depth: depth - 1).map { [i] + $0 } }
        case .array(let a): for (i, v) in a.enumerated() { out += v.paths(depth: depth - 1).map { [i] + $0 } }
        default: break
        }
        return out
    }

    public subscript(path: Path) -> JSONTree {
        guard let first = path.first else { return self }
        switch self {
        case .object(let m): return m[first].value[Array(path.dropFirst())]
        case .array(let a): return a[first][Array(path.dropFirst())]
        default: return self
        }
    }

    /// Applies `body` to the value at `path`.
    public mutating func edit(_ path: Path, _ body: (inout JSONTree) -> Void) {
        guard let first = path.first else { body(&self); return }
        switch self {
        case .object(var m): m[first].value.edit(Array(path.dropFirst()), body); self = .object(m)
        case .array(var a): a[first].edit(Array(path.dropFirst()), body); self = .array(a)
        default: body(&self)
        }
    }

    /// The member named `key` of an object, if any (the first, when given twice).
    public subscript(key key: String) -> JSONTree? {
        guard case .object(let m) = self else { return nil }
        return m.first { $0.key == key }?.value
    }
}

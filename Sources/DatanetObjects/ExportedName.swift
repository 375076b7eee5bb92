/// Folder entry names are bytes (objects.md); a folder written back to disk by `export`, and any
/// name shown to people, needs a form that is valid UTF-8 and maps back to exactly those bytes.
/// The rule (schema/objects.md "Names on disk"): every byte that begins a well-formed UTF-8
/// sequence (RFC 3629 §4) is kept together with its continuation bytes, except `%`; `%` and
/// every other byte are written `%XX` (two upper-case hex digits). A name that is valid UTF-8
/// without `%` is therefore written as it is. Decoding accepts only what encoding produces,
/// so two different names never share a written form and no written form has two readings.
public enum ExportedName {
    /// The written form of a name.
    public static func encode(_ name: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(name.count)
        var i = 0
        while i < name.count {
            let n = name[i] == 0x25 ? 0 : sequenceLength(name, at: i)
            if n == 0 {
                out += [0x25, hexDigit(name[i] >> 4), hexDigit(name[i] & 0xf)]
                i += 1
            } else {
                out += name[i..<i + n]
                i += n
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The name a written form stands for; nil when `text` is not one `encode` produces.
    public static func decode(_ text: [UInt8]) -> [UInt8]? {
        var out = [UInt8]()
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == 0x25 {
                guard i + 2 < text.count, let hi = hexValue(text[i + 1]), let lo = hexValue(text[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(text[i])
                i += 1
            }
        }
        return Array(encode(out).utf8) == text ? out : nil
    }

    /// The length of the well-formed UTF-8 sequence starting at `i` (RFC 3629 Table 3), or 0.
    static func sequenceLength(_ b: [UInt8], at i: Int) -> Int {
        let c = b[i]
        func cont(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xbf) -> Bool { i + k < b.count && range.contains(b[i + k]) }
        switch c {
        case 0x00...0x7f: return 1
        case 0xc2...0xdf: return cont(1) ? 2 : 0
        case 0xe0: return cont(1, 0xa0...0xbf) && cont(2) ? 3 : 0
        case 0xe1...0xec, 0xee...0xef: return cont(1) && cont(2) ? 3 : 0
        case 0xed: return cont(1, 0x80...0x9f) && cont(2) ? 3 : 0
        case 0xf0: return cont(1, 0x90...0xbf) && cont(2) && cont(3) ? 4 : 0
        case 0xf1...0xf3: return cont(1) && cont(2) && cont(3) ? 4 : 0
        case 0xf4: return cont(1, 0x80...0x8f) && cont(2) && cont(3) ? 4 : 0
        default: return 0
        }
    }

    private static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x41 + v - 10 }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}

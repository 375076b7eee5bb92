import DatanetCBOR
import DatanetTestSupport
import Testing

/// Each canonical rule, named once, with literal bytes; every proper prefix of a golden fails;
/// and seeded mutations never crash and never decode to something that re-encodes differently.
@Suite struct CBORTests {
    func rejects(_ bytes: [UInt8], _ code: CBORError.Code, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: CBORError(code, at: 0), sourceLocation: sourceLocation) { try CBOR.decode(bytes) }
    }

    static let goldens: [(CBOR, [UInt8])] = [
        (.unsigned(0), [0x00]), (.unsigned(23), [0x17]), (.unsigned(24), [0x18, 0x18]),
        (.unsigned(256), [0x19, 0x01, 0x00]), (.unsigned(UInt64.max), [0x1b] + [UInt8](repeating: 0xff, count: 8)),
        (.negative(0), [0x20]), (.negative(UInt64(Int64.max)), [0x3b, 0x7f] + [UInt8](repeating: 0xff, count: 7)),
        (.bytes([1, 2]), [0x42, 1, 2]), (.string("é"), [0x62, 0xc3, 0xa9]),
        (.array([.unsigned(1), .array([]), .null, .bool(true), .bool(false)]), [0x85, 0x01, 0x80, 0xf6, 0xf5, 0xf4]),
        // Keys sorted bytewise by encoding: 10 (0x0a) < 100 (0x18 0x64) < -1 (0x20) < "a" (0x61 0x61).
        (.map([.init(.string("a"), .unsigned(1)), .init(.negative(0), .unsigned(2)),
               .init(.unsigned(100), .unsigned(3)), .init(.unsigned(10), .unsigned(4))]),
         [0xa4, 0x0a, 0x04, 0x18, 0x64, 0x03, 0x20, 0x02, 0x61, 0x61, 0x01]),
    ]

    @Test func goldensRoundTrip() throws {
        for (item, bytes) in Self.goldens {
            #expect(item.encoded == bytes)
            #expect(item.encodedCount == bytes.count)
            let decoded = try CBOR.decode(bytes)
            #expect(decoded.encoded == bytes)
        }
    }

    @Test func everyProperPrefixOfEachGoldenFails() {
        for (_, bytes) in Self.goldens {
            for n in 0..<bytes.count { #expect(throws: CBORError.self) { try CBOR.decode(Array(bytes.prefix(n))) } }
        }
    }

    @Test func nonMinimalIntegerIsRejected() {
        rejects([0x18, 0x17], .nonMinimalInteger)
        rejects([0x19, 0x00, 0xff], .nonMinimalInteger)
        rejects([0x1a, 0x00, 0x00, 0xff, 0xff], .nonMinimalInteger)
        rejects([0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], .nonMinimalInteger)
        rejects([0x38, 0x00], .nonMinimalInteger)
        rejects([0x58, 0x01, 0x00], .nonMinimalInteger) // a length, too
    }
    @Test func indefiniteLengthIsRejected() {
        rejects([0x5f, 0x41, 0x00, 0xff], .indefiniteLength)
        rejects([0x9f, 0xff], .indefiniteLength)
        rejects([0xbf, 0xff], .indefiniteLength)
    }
    @Test func unsortedMapKeysAreRejected() { rejects([0xa2, 0x02, 0x00, 0x01, 0x00], .unsortedMapKeys) }
    @Test func shorterKeySortsFirst() { rejects([0xa2, 0x18, 0x64, 0x00, 0x0a, 0x00], .unsortedMapKeys) }
    @Test func duplicateMapKeysAreRejected() { rejects([0xa2, 0x01, 0x00, 0x01, 0x00], .duplicateMapKey) }
    @Test func floatsAreRejected() {
        rejects([0xf9, 0x3c, 0x00], .floatNotAllowed)
        rejects([0xfa, 0x3f, 0x80, 0x00, 0x00], .floatNotAllowed)
        rejects([0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], .floatNotAllowed)
    }
    @Test func tagsAreRejected() { rejects([0xc0, 0x60], .tagNotAllowed) }
    @Test func otherSimpleValuesAreRejected() {
        rejects([0xf7], .simpleValueNotAllowed)
        rejects([0xf8, 0x20], .simpleValueNotAllowed)
        rejects([0xe0], .simpleValueNotAllowed)
    }
    @Test func reservedInfoIsRejected() { rejects([0x1c], .reservedAdditionalInfo) }
    @Test func trailingBytesAreRejected() { rejects([0x00, 0x00], .trailingBytes) }
    @Test func invalidUTF8IsRejected() { rejects([0x62, 0xc3, 0x28], .invalidUTF8) }
    @Test func lengthsBeyondTheInputAreErrorsNotTraps() {
        rejects([0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0], .lengthTooLarge)          // 2^63
        rejects([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], .lengthTooLarge)
        rejects([0x43, 0x00], .lengthTooLarge)
    }
    @Test func negativeIntegersBelowInt64AreErrorsNotTraps() throws {
        // −2^64 (0x3b ff…ff) and −2^63 − 1 are valid CBOR but no Datanet integer: refused.
        rejects([0x3b] + [UInt8](repeating: 0xff, count: 8), .negativeOutOfRange)
        rejects([0x3b, 0x80] + [UInt8](repeating: 0, count: 7), .negativeOutOfRange)
        // −2^63 is the most negative accepted, and converts without trapping.
        let minimum = try CBOR.decode([0x3b, 0x7f] + [UInt8](repeating: 0xff, count: 7))
        #expect(minimum == .negative(UInt64(Int64.max)) && minimum.int64Value == Int64.min)
        #expect(try CBOR.decode([0x20]).int64Value == -1)
        #expect(try CBOR.decode([0x1b] + [UInt8](repeating: 0xff, count: 8)).int64Value == nil) // 2^64 − 1: no Int64
    }
    @Test func nestingDeeperThan32IsRejected() throws {
        let ok = [UInt8](repeating: 0x81, count: 32) + [0x00]
        #expect(try CBOR.decode(ok).encoded == ok)
        rejects([UInt8](repeating: 0x81, count: 33) + [0x00], .tooDeep)
    }

    /// 100,000 seeded mutations of the goldens: no crash, and whatever decodes re-encodes to
    /// itself, in as many bytes as `encodedCount` says.
    @Test func seededMutationsNeverCrash() {
        var rng = SplitMix64(seed: 0x0DA7A)
        let seeds = Self.goldens.map(\.1)
        var accepted = 0
        for i in 0..<100_000 {
            var b = seeds[i % seeds.count]
            rng.mutate(&b, maxEdits: 3)
            if let item = try? CBOR.decode(b) {
                accepted += 1
                #expect(item.encoded == b)
                #expect(item.encodedCount == b.count)
            }
        }
        #expect(accepted > 0)
    }
}

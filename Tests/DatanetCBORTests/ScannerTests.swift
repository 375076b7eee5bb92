import DatanetCBOR
import DatanetTestSupport
import Testing

/// The pull reader reads what the decoder reads, refuses what the decoder refuses, and refuses
/// an item of another type than the one asked for.
@Suite struct ScannerTests {
    func scan<R>(_ bytes: [UInt8], _ body: (inout CBOR.Scanner) throws(CBORError) -> R) throws(CBORError) -> R {
        let r = bytes.withUnsafeBytes { buf in
            Result { () throws(CBORError) -> R in
                var s = CBOR.Scanner(buf)
                return try body(&s)
            }
        }
        return try r.get()
    }

    /// Text is checked eight ASCII bytes at a time, then in full from the first other byte:
    /// a bad byte at any offset is found by the scanner, the decoder and the validator alike.
    @Test func textIsCheckedAsUTF8AtEveryOffset() throws {
        for prefix in 0..<20 {
            let ascii = [UInt8](repeating: UInt8(ascii: "a"), count: prefix)
            for (tail, valid) in [([UInt8](), true), (Array("é".utf8), true), ([0xff], false), ([0xc3], false), (Array("€".utf8) + [0x80], false)] {
                let body = ascii + tail + ascii
                var item: [UInt8] = []
                CBOR.appendHead(3, UInt64(body.count), to: &item)
                item += body
                let scanned = (try? scan(item) { s throws(CBORError) in Array(try s.text()) }) != nil
                let decoded = (try? CBOR.decode(item)) != nil
                let skipped = (try? scan(item) { s throws(CBORError) in try s.skip() }) != nil
                #expect(scanned == valid && decoded == valid && skipped == valid, "prefix \(prefix), tail \(tail)")
            }
        }
    }

    @Test func readsFieldsOfAKnownShape() throws {
        // [1, "review", h'0102', {0: 5}]
        let bytes: [UInt8] = [0x84, 0x01, 0x66] + Array("review".utf8) + [0x42, 0x01, 0x02, 0xa1, 0x00, 0x05]
        try scan(bytes) { s throws(CBORError) in
            #expect(try s.arrayCount() == 4)
            #expect(try s.unsigned() == 1)
            #expect(Array(try s.text()) == Array("review".utf8))
            #expect(Array(try s.bytes()) == [1, 2])
            #expect(try s.mapCount() == 1)
            #expect(try s.unsigned() == 0)
            #expect(!s.isAtEnd)
            #expect(Array(try s.skip()) == [0x05])
            #expect(s.isAtEnd)
        }
    }

    @Test func anotherTypeThanAskedForIsRefused() {
        #expect(throws: CBORError(.unexpectedType, at: 0)) { try scan([0x42, 0x01, 0x02]) { s throws(CBORError) in try s.unsigned() } }
        #expect(throws: CBORError(.unexpectedType, at: 0)) { try scan([0x01]) { s throws(CBORError) in try s.bytes() } }
        #expect(throws: CBORError(.unexpectedType, at: 0)) { try scan([0x80]) { s throws(CBORError) in try s.mapCount() } }
        #expect(throws: CBORError(.unexpectedType, at: 0)) { try scan([0x41, 0x61]) { s throws(CBORError) in try s.text() } }
    }

    @Test func theDecodersRulesApply() {
        #expect(throws: CBORError(.nonMinimalInteger, at: 0)) { try scan([0x18, 0x17]) { s throws(CBORError) in try s.unsigned() } }
        #expect(throws: CBORError(.indefiniteLength, at: 0)) { try scan([0x5f, 0xff]) { s throws(CBORError) in try s.bytes() } }
        #expect(throws: CBORError(.lengthTooLarge, at: 0)) { try scan([0x43, 0x01]) { s throws(CBORError) in try s.bytes() } }
        #expect(throws: CBORError(.lengthTooLarge, at: 0)) {
            try scan([0x9b] + [UInt8](repeating: 0xff, count: 8)) { s throws(CBORError) in try s.arrayCount() }
        }
        #expect(throws: CBORError(.invalidUTF8, at: 0)) { try scan([0x62, 0xc3, 0x28]) { s throws(CBORError) in try s.text() } }
        #expect(throws: CBORError(.truncated, at: 0)) { try scan([]) { s throws(CBORError) in try s.unsigned() } }
        #expect(throws: CBORError(.unsortedMapKeys, at: 0)) { try scan([0xa2, 0x02, 0x00, 0x01, 0x00]) { s throws(CBORError) in try s.skip() } }
    }

    /// Skipping a whole item accepts exactly what the decoder accepts, and validation without a
    /// tree refuses exactly what it refuses, with the same error at the same offset (the record
    /// decoders rely on it for their errors), over mutated goldens.
    @Test func skipAndValidateAgreeWithTheDecoder() {
        var rng = SplitMix64(seed: 0x5CA9)
        let seeds = CBORTests.goldens.map(\.1)
        var refused = 0
        for i in 0..<20_000 {
            var b = seeds[i % seeds.count]
            rng.mutate(&b, maxEdits: 3)
            let result = Result { () throws(CBORError) in _ = try CBOR.decode(b) }
            let validated = b.withUnsafeBytes { buf in Result { () throws(CBORError) in try CBOR.Scanner.validate(buf) } }
            switch (result, validated) {
            case (.success, .success): break
            case (.failure(let d), .failure(let v)): #expect(d == v, "\(b)"); refused += 1
            default: Issue.record("decode and validate disagree on \(b)")
            }
            let decoded = (try? result.get()) != nil
            let skipped = (try? scan(b) { s throws(CBORError) -> Bool in
                try s.skip()
                return s.isAtEnd
            }) ?? false
            #expect(decoded == skipped, "\(b)")
        }
        #expect(refused > 1_000)
    }
}

import DatanetCrypto
import Testing

/// FIPS 180-4 examples (NIST CSRC "SHA256.pdf" example values) and streaming equivalence.
@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func fipsExamples(message: String, hex: String) {
        #expect(SHA256.hash(Array(message.utf8)).hex == hex)
    }

    @Test func oneMillionA() {
        var h = SHA256.Hasher()
        let block = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(block) }
        #expect(h.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func streamingEqualsOneShotAndResets() {
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var h = SHA256.Hasher()
        h.update(data[0..<1])
        h.update(data[1..<65_537])
        h.update(data[65_537...])
        #expect(h.finalize() == SHA256.hash(data))
        h.update(Array("abc".utf8))
        #expect(h.finalize().hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func digestOrderIsBytewiseAndHexRoundTrips() throws {
        let a = try #require(Digest(hex: "00" + String(repeating: "ff", count: 31)))
        let b = try #require(Digest(hex: "01" + String(repeating: "00", count: 31)))
        #expect(a < b)
        #expect(!(b < a))
        #expect(Digest(hex: b.hex) == b)
        #expect(Digest(hex: "0g" + String(repeating: "00", count: 31)) == nil)
        #expect(Digest(hex: "00") == nil)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("ABcd") == [0xab, 0xcd])
    }

    @Test func md5ForTheGearTable() {
        // RFC 1321 appendix A.5 test suite.
        #expect(Hex.encode(LegacyMD5.hash(Array("abc".utf8))) == "900150983cd24fb0d6963f7d28e17f72")
    }
}

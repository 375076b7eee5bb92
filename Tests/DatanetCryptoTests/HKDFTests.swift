import DatanetCrypto
import Testing

/// HKDF-SHA256 against RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones).
@Suite struct HKDFTests {
    static func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

    @Test(arguments: [
        // A.1: basic test case.
        (String(repeating: "0b", count: 22), "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
         "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
        // A.2: longer inputs and outputs.
        ((0x00...0x4f).map { String(format: "%02x", $0) }.joined(), (0x60...0xaf).map { String(format: "%02x", $0) }.joined(),
         (0xb0...0xff).map { String(format: "%02x", $0) }.joined(), 82,
         "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
        // A.3: zero-length salt and info.
        (String(repeating: "0b", count: 22), "", "", 42,
         "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
    ])
    func rfc5869(_ ikm: String, _ salt: String, _ info: String, _ length: Int, _ okm: String) throws {
        #expect(try HKDF.sha256(ikm: Self.hex(ikm), salt: Self.hex(salt), info: Self.hex(info), length: length) == Self.hex(okm))
    }

    @Test func outputLengthIsBounded() {
        #expect(throws: CryptoError.self) { try HKDF.sha256(ikm: [1], salt: [], info: [], length: 0) }
        #expect(throws: CryptoError.self) { try HKDF.sha256(ikm: [1], salt: [], info: [], length: 255 * 32 + 1) }
    }

    /// HMAC-SHA256 against RFC 4231 §4.2 (test case 1), §4.3 (case 2: a key shorter than the
    /// block) and §4.7 (case 6: a key longer than the block, hashed first).
    @Test(arguments: [
        (String(repeating: "0b", count: 20), "4869205468657265", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (String(repeating: "aa", count: 131),
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ])
    func rfc4231(_ key: String, _ data: String, _ mac: String) throws {
        #expect(try HMAC.sha256(key: Self.hex(key), data: Self.hex(data)) == Self.hex(mac))
    }
}

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
}

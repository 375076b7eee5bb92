import DatanetCrypto
import Foundation
import Testing

@Suite struct Ed25519Tests {
    /// RFC 8032 §7.1, TEST 1–3: secret key, public key, message, signature.
    static let rfc8032: [(String, String, String, String)] = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ]

    @Test func rfc8032Section7_1() throws {
        for (sk, pk, msg, sig) in Self.rfc8032 {
            let key = try SigningKey(seed: Hex.decode(sk)!)
            #expect(key.publicKey.bytes == Hex.decode(pk)!)
            let signature = try key.sign(Hex.decode(msg)!)
            #expect(signature.bytes == Hex.decode(sig)!)
            #expect(key.publicKey.isValidSignature(signature, for: Hex.decode(msg)!))
            #expect(key.seed == Hex.decode(sk)!)
        }
    }

    @Test func generatedKeysSignAndRejectOtherMessages() throws {
        let a = try SigningKey(), b = try SigningKey()
        #expect(a.publicKey != b.publicKey)
        let sig = try a.sign(Array("datanet".utf8))
        #expect(a.publicKey.isValidSignature(sig, for: Array("datanet".utf8)))
        #expect(!a.publicKey.isValidSignature(sig, for: Array("datanes".utf8)))
        #expect(!b.publicKey.isValidSignature(sig, for: Array("datanet".utf8)))
    }

    @Test func wrongLengthsAreTypedErrors() {
        #expect(throws: CryptoError.badLength(what: "Ed25519 public key", got: 31, want: 32)) {
            try PublicKey(bytes: [UInt8](repeating: 0, count: 31))
        }
        #expect(throws: CryptoError.self) { try Signature(bytes: []) }
        #expect(throws: CryptoError.self) { try SigningKey(seed: [1, 2, 3]) }
    }

    struct WycheproofFile: Decodable {
        struct Group: Decodable {
            struct Key: Decodable { let pk: String; let sk: String? }
            struct Case: Decodable { let tcId: Int; let comment: String; let msg: String; let sig: String; let result: String }
            // The v1 file names the key `publicKey`; the legacy file `key`, with its secret `sk`.
            let publicKey: Key?
            let key: Key?
            var pk: Key { (publicKey ?? key)! }
            let tests: [Case]
        }
        let numberOfTests: Int
        let testGroups: [Group]
    }

    /// Every case of Wycheproof's Ed25519 files (C2SP/wycheproof, Apache-2.0): a signature is
    /// accepted exactly when the file says "valid". Reports "k of n failed" rather than stopping.
    @Test(arguments: ["wycheproof_ed25519_test", "wycheproof_legacy_eddsa_test"])
    func wycheproof(file: String) throws {
        let url = try #require(Bundle.module.url(forResource: file, withExtension: "json", subdirectory: "Vectors"))
        let suite = try JSONDecoder().decode(WycheproofFile.self, from: Data(contentsOf: url))
        var failures = [String](), count = 0
        for group in suite.testGroups {
            for t in group.tests {
                count += 1
                var accepted = false
                if let pk = Hex.decode(group.pk.pk), let key = try? PublicKey(bytes: pk),
                   let sigBytes = Hex.decode(t.sig), let sig = try? Signature(bytes: sigBytes) {
                    accepted = key.isValidSignature(sig, for: Hex.decode(t.msg)!)
                }
                if accepted != (t.result == "valid") { failures.append("tcId \(t.tcId) (\(t.comment))") }
                // Where the secret is given, signing must reproduce every valid signature exactly.
                if t.result == "valid", let sk = group.pk.sk {
                    let signer = try SigningKey(seed: Hex.decode(sk)!)
                    if try signer.sign(Hex.decode(t.msg)!).bytes != Hex.decode(t.sig)! { failures.append("tcId \(t.tcId) signing") }
                }
            }
        }
        #expect(count == suite.numberOfTests)
        #expect(failures.isEmpty, "\(failures.count) of \(count) failed: \(failures.prefix(10))")
    }

    struct SpeccheckCase: Decodable { let message: String; let pub_key: String; let signature: String }

    /// The 15 edge cases of "Taming the many EdDSAs", with the verdict datanet gives each under
    /// libsodium's rule (schema/contexts.md "Ed25519"): small-order A or R, non-canonical
    /// encodings and S ≥ L are refused whatever the equations say; otherwise the cofactorless
    /// equation [S]B = R + [k]A decides, so a mixed-order key is accepted when it holds (case 6)
    /// and refused when only the cofactored one does (7, 8). The other columns are what
    /// libsodium says of A and R as points (`crypto_core_ed25519_is_valid_point`: canonical, not
    /// of small order, in the prime-order subgroup) and whether S < L.
    @Test func speccheck() throws {
        let url = try #require(Bundle.module.url(forResource: "ed25519_speccheck_cases", withExtension: "json", subdirectory: "Vectors"))
        let cases = try JSONDecoder().decode([SpeccheckCase].self, from: Data(contentsOf: url))
        // (verdict, A a valid point, R a valid point, S canonical) per case, in file order.
        let expected: [(Bool, Bool, Bool, Bool)] = [
            (false, false, false, true), (false, false, false, true),   // 0, 1: small-order A and R, S = 0
            (false, false, false, true), (false, false, false, true),   // 2, 3: small-order A, mixed-order R
            (false, false, false, true), (false, false, false, true),   // 4, 5: mixed-order A, small-order R
            (true, false, false, true),                                 // 6: mixed-order A and R, both equations hold
            (false, false, false, true),                                // 7: mixed-order A and R, only the cofactored equation
            (false, false, true, true),                                 // 8: mixed-order A, R of order L, only the cofactored equation
            (false, true, true, false), (false, true, true, false),     // 9, 10: A and R of order L, S > L and S >> L
            (false, false, false, true), (false, false, false, true),   // 11, 12: mixed-order A, non-canonical small-order R
            (false, false, false, true), (false, false, false, true),   // 13, 14: non-canonical small-order A
        ]
        #expect(cases.count == expected.count)
        var failures = [String]()
        for (i, c) in cases.enumerated() {
            let key = try PublicKey(bytes: Hex.decode(c.pub_key)!)
            let sig = try Signature(bytes: Hex.decode(c.signature)!)
            let r = try PublicKey(bytes: Array(sig.bytes[0..<32]))
            let got = (key.isValidSignature(sig, for: Hex.decode(c.message)!), key.isUsable, r.isUsable,
                       Self.isCanonicalScalar(Array(sig.bytes[32...])))
            if got != expected[i] { failures.append("case \(i): got \(got), want \(expected[i])") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) differ: \(failures)")
    }

    /// S < L, the group order 2^252 + 27742317777372353535851937790883648493 (little-endian bytes).
    static func isCanonicalScalar(_ s: [UInt8]) -> Bool {
        let l: [UInt8] = Hex.decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")!
        for i in stride(from: 31, through: 0, by: -1) where s[i] != l[i] { return s[i] < l[i] }
        return false
    }

    @Test func generatedKeysAreUsableAndSmallOrderKeysAreNot() throws {
        for _ in 0..<20 { #expect(try SigningKey().publicKey.isUsable) }
        // The identity point, a point of order 8, a non-canonical encoding of the identity, and
        // a mixed-order point (speccheck's, which libsodium verifies with but datanet refuses as a key).
        for hex in ["0100000000000000000000000000000000000000000000000000000000000000",
                    "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
                    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
                    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"] {
            #expect(!(try PublicKey(bytes: Hex.decode(hex)!)).isUsable, "\(hex)")
        }
    }
}


import DatanetCrypto
import Foundation
import Testing

@Suite struct AEADTests {
    struct AEADFile: Decodable {
        struct Group: Decodable {
            struct Case: Decodable { let tcId: Int; let key, iv, aad, msg, ct, tag, result: String }
            let ivSize: Int
            let tests: [Case]
        }
        let numberOfTests: Int
        let testGroups: [Group]
    }

    /// Every Wycheproof ChaCha20-Poly1305 case: valid ones seal to the expected bytes and open;
    /// invalid ones (altered tags, other nonce sizes) refuse to open.
    @Test func wycheproofChaChaPoly() throws {
        let url = try #require(Bundle.module.url(forResource: "wycheproof_chacha20_poly1305_test", withExtension: "json", subdirectory: "Vectors"))
        let file = try JSONDecoder().decode(AEADFile.self, from: Data(contentsOf: url))
        var failures = [String](), count = 0
        for g in file.testGroups {
            for t in g.tests {
                count += 1
                let key = Hex.decode(t.key)!, iv = Hex.decode(t.iv)!, aad = Hex.decode(t.aad)!
                let sealed = Hex.decode(t.ct)! + Hex.decode(t.tag)!
                let opened = try? ChaChaPoly.open(key: key, nonce: iv, sealed: sealed, aad: aad)
                if t.result == "valid" {
                    if opened != Hex.decode(t.msg)! { failures.append("\(t.tcId) open") }
                    if (try? ChaChaPoly.seal(key: key, nonce: iv, plaintext: Hex.decode(t.msg)!, aad: aad)) != sealed { failures.append("\(t.tcId) seal") }
                } else if opened != nil {
                    failures.append("\(t.tcId) opened an invalid case")
                }
            }
        }
        #expect(count == file.numberOfTests)
        #expect(failures.isEmpty, "\(failures.count) of \(count) failed: \(failures.prefix(10))")
    }

    @Test func anyAlteredByteFailsToOpen() throws {
        let key = [UInt8](repeating: 9, count: 32), nonce = [UInt8](repeating: 1, count: 12)
        let sealed = try ChaChaPoly.seal(key: key, nonce: nonce, plaintext: Array("secret seed".utf8), aad: Array("header".utf8))
        for i in sealed.indices {
            var bad = sealed
            bad[i] ^= 0x80
            #expect(throws: ChaChaPoly.Failure.authenticationFailed) { try ChaChaPoly.open(key: key, nonce: nonce, sealed: bad, aad: Array("header".utf8)) }
        }
        #expect(throws: ChaChaPoly.Failure.authenticationFailed) { try ChaChaPoly.open(key: key, nonce: nonce, sealed: sealed, aad: Array("Header".utf8)) }
        #expect(try ChaChaPoly.open(key: key, nonce: nonce, sealed: sealed, aad: Array("header".utf8)) == Array("secret seed".utf8))
    }

    /// RFC 7914 §12 test vectors.
    @Test func scryptRFC7914() throws {
        #expect(Hex.encode(try Scrypt.derive(passphrase: [], salt: [], n: 16, r: 1, p: 1, length: 64)) ==
                "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906")
        #expect(Hex.encode(try Scrypt.derive(passphrase: Array("password".utf8), salt: Array("NaCl".utf8), n: 1024, r: 8, p: 16, length: 64)) ==
                "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
        #expect(Hex.encode(try Scrypt.derive(passphrase: Array("pleaseletmein".utf8), salt: Array("SodiumChloride".utf8), n: 16384, r: 8, p: 1, length: 64)) ==
                "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887")
    }

    struct X25519File: Decodable {
        struct Group: Decodable {
            struct Case: Decodable { let tcId: Int; let `public`, `private`, shared, result: String }
            let tests: [Case]
        }
        let numberOfTests: Int
        let testGroups: [Group]
    }

    /// Every Wycheproof X25519 case: "valid" must give the shared secret; "acceptable" (low-
    /// order points, non-canonical encodings) may be refused, and if not, must match.
    @Test func wycheproofX25519() throws {
        let url = try #require(Bundle.module.url(forResource: "wycheproof_x25519_test", withExtension: "json", subdirectory: "Vectors"))
        let file = try JSONDecoder().decode(X25519File.self, from: Data(contentsOf: url))
        var failures = [String](), count = 0, refusedAcceptable = 0
        for g in file.testGroups {
            for t in g.tests {
                count += 1
                let key = try X25519PrivateKey(raw: Hex.decode(t.private)!)
                let shared = try? key.sharedSecret(with: Hex.decode(t.public)!)
                if t.result == "valid" {
                    if shared != Hex.decode(t.shared)! { failures.append("\(t.tcId)") }
                } else if let shared {
                    if shared != Hex.decode(t.shared)! { failures.append("\(t.tcId) acceptable but wrong") }
                } else {
                    refusedAcceptable += 1
                }
            }
        }
        #expect(count == file.numberOfTests)
        #expect(failures.isEmpty, "\(failures.count) of \(count) failed: \(failures.prefix(10))")
        // The all-zero results of low-order points are the ones refused.
        #expect(refusedAcceptable > 0)
    }
}

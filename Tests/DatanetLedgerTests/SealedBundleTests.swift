import DatanetCrypto
@testable import DatanetLedger
@testable import DatanetObjects
@testable import DatanetRecords
import DatanetTestSupport
import Foundation
import Glibc
import Testing

/// Sealed bundles: only a named recipient opens one; any change, truncation or re-addressing
/// is refused before a byte of unauthenticated plaintext is written.
@Suite struct SealedBundleTests {
    static func tempFile(_ bytes: [UInt8]) -> Int32 {
        let path = NSTemporaryDirectory() + "sealed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let fd = Glibc.open(path, O_RDWR)
        unlink(path)
        return fd
    }

    static func contents(_ fd: Int32) -> [UInt8] {
        var out = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        lseek(fd, 0, SEEK_SET)
        while case let n = read(fd, &buf, buf.count), n > 0 { out += buf[0..<n] }
        return out
    }

    static func seal(_ plain: [UInt8], to keys: [X25519PrivateKey]) throws -> [UInt8] {
        let input = tempFile(plain), output = tempFile([])
        defer { close(input); close(output) }
        try SealedBundle.seal(from: input, to: output, recipients: keys.map(\.publicKey))
        return contents(output)
    }

    static func unseal(_ sealed: [UInt8], with keys: [X25519PrivateKey]) throws -> [UInt8] {
        let input = tempFile(sealed), output = tempFile([])
        defer { close(input); close(output) }
        try SealedBundle.open(from: input, to: output, keys: keys)
        return contents(output)
    }

    @Test(arguments: [0, 1, 1 << 20, (1 << 20) + 1, 3 << 20])
    func roundTripForEachRecipient(_ size: Int) throws {
        let plain = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }
        let alice = try X25519PrivateKey(), bob = try X25519PrivateKey(), eve = try X25519PrivateKey()
        let sealed = try Self.seal(plain, to: [alice, bob])
        #expect(try Self.unseal(sealed, with: [alice]) == plain)
        #expect(try Self.unseal(sealed, with: [eve, bob]) == plain)
        #expect(throws: BundleError.refused("this bundle is sealed, and not to any identity in this store")) { try Self.unseal(sealed, with: [eve]) }
        #expect(sealed.count > plain.count && !sealed.starts(with: Array("DNBUNDLE".utf8)))
    }

    /// Version 2 names no one: no recipient key appears in the header, the entries are padded
    /// with decoys to a power of two (at least 4) in random order, and the plaintext to its
    /// Padmé size class; a non-recipient learns the entry bucket and the size class only.
    @Test func recipientsAreAnonymousAndSizesPadded() throws {
        let keys = try (0..<5).map { _ in try X25519PrivateKey() }
        for (n, entries) in [(1, 4), (4, 4), (5, 8)] {
            let plain = [UInt8](repeating: 1, count: 1000)
            let sealed = try Self.seal(plain, to: Array(keys.prefix(n)))
            #expect(Array(sealed.prefix(10)) == Array("DNSEALED".utf8) + [2, UInt8(entries)])
            for k in keys { #expect(!Self.contains(sealed, k.publicKey)) }
            let header = 10 + 80 * entries
            #expect(sealed.count == header + 4 + Int(SealedBundle.padme(8 + 1000)) + 16)
            for k in keys.prefix(n) { #expect(try Self.unseal(sealed, with: [k]) == plain) }
        }
        // Padmé: at most 12% larger, and sizes within one class give the same sealed size.
        for length in [UInt64(9), 100, 1000, 12_345, 1 << 20, 123_456_789] {
            let p = SealedBundle.padme(length)
            #expect(p >= length && Double(p) <= Double(length) * 1.12)
        }
        let a = try Self.seal([UInt8](repeating: 2, count: 66_000), to: [keys[0]])
        let b = try Self.seal([UInt8](repeating: 3, count: 66_500), to: [keys[0]])
        #expect(a.count == b.count)
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<$0 + needle.count].elementsEqual(needle) }
    }

    /// A version 1 bundle (recipient keys in clear, no padding) still opens: this builds one
    /// as the format of schema/bundle.md's earlier revision laid it out.
    @Test func versionOneStillOpens() throws {
        let alice = try X25519PrivateKey(), bob = try X25519PrivateKey()
        let plain = (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }
        let fileKey = [UInt8](repeating: 9, count: 32)
        var header = Array("DNSEALED".utf8) + [1, 2]
        for r in [alice, bob] {
            let eph = try X25519PrivateKey()
            let kek = try HKDF.sha256(ikm: try eph.sharedSecret(with: r.publicKey), salt: eph.publicKey + r.publicKey, info: SealedBundle.info, length: 32)
            header += r.publicKey + eph.publicKey + (try ChaChaPoly.seal(key: kek, nonce: [UInt8](repeating: 0, count: 12), plaintext: fileKey))
        }
        let field = Array(BigEndian.bytes(UInt64(UInt32(plain.count) | SealedBundle.last)).suffix(4))
        let sealed = header + field + (try ChaChaPoly.seal(key: fileKey, nonce: SealedBundle.nonce(0), plaintext: plain, aad: SHA256.hash(header).bytes + field))
        #expect(try Self.unseal(sealed, with: [bob]) == plain)
        #expect(throws: BundleError.refused("this bundle is sealed, and not to any identity in this store")) { try Self.unseal(sealed, with: [try X25519PrivateKey()]) }
    }

    @Test func anyChangeIsRefused() throws {
        let plain = [UInt8](repeating: 7, count: (2 << 20) + 100)
        let alice = try X25519PrivateKey()
        let sealed = try Self.seal(plain, to: [alice])
        let header = 10 + 4 * 80
        // Every region: magic, version, count, a segment length, ciphertext, a tag.
        let expected: [(Int, BundleError)] = [
            (0, .malformed("not a sealed bundle")), (8, .malformed("sealed bundle version 3 is not supported")),
            (9, .malformed("a sealed bundle holds a power of two from 4 to 64 entries")),
            (header + 2, .malformed("a sealed segment of 1048832 bytes exceeds 1048576")),
            (header + 4 + 1000, .unauthentic), (header + 4 + (1 << 20) + 8, .unauthentic), (sealed.count - 1, .unauthentic)]
        for (at, error) in expected {
            var bad = sealed
            bad[at] ^= 1
            #expect(throws: error, "byte \(at)") { try Self.unseal(bad, with: [alice]) }
        }
        // Any byte of any entry: the real one no longer unwraps, a decoy changes the header
        // every segment is bound to.
        for at in stride(from: 10, to: header, by: 13) {
            var bad = sealed
            bad[at] ^= 1
            #expect("entry byte \(at)", performing: { try Self.unseal(bad, with: [alice]) }, throws: { e in
                [.unauthentic, .refused("this bundle is sealed, and not to any identity in this store")].contains(e as? BundleError)
            })
        }
        // Truncated at a segment boundary (the last-segment flag is missing), or anywhere.
        let firstSegmentEnd = header + 4 + (1 << 20) + 16
        for cut in [firstSegmentEnd, firstSegmentEnd + 2, sealed.count - 1, header - 1] {
            #expect(throws: BundleError.truncated, "cut at \(cut)") { try Self.unseal(Array(sealed.prefix(cut)), with: [alice]) }
        }
        #expect(throws: BundleError.malformed("bytes after the last sealed segment")) { try Self.unseal(sealed + [0], with: [alice]) }
        // Swapping two full segments is refused (the counter is in the nonce).
        let seg = 4 + (1 << 20) + 16
        var swapped = Array(sealed.prefix(header))
        let first = Array(sealed[header..<(header + seg)]), second = Array(sealed[(header + seg)..<(header + 2 * seg)])
        swapped += second
        swapped += first
        swapped += Array(sealed[(header + 2 * seg)...])
        #expect(throws: BundleError.unauthentic) { try Self.unseal(swapped, with: [alice]) }
    }

    @Test func recipientsAreBounded() throws {
        let bound = BundleError.refused("a sealed bundle needs 1 to \(SealedBundle.maximumRecipients) recipient X25519 keys")
        #expect(throws: bound) { try Self.seal([1], to: []) }
        let many = try (0...SealedBundle.maximumRecipients).map { _ in try X25519PrivateKey() }
        #expect(throws: bound) { try Self.seal([1], to: many) }
    }
}

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

    @Test func anyChangeIsRefused() throws {
        let plain = [UInt8](repeating: 7, count: (2 << 20) + 100)
        let alice = try X25519PrivateKey()
        let sealed = try Self.seal(plain, to: [alice])
        // Every region: magic, count, recipient entry, a segment length, ciphertext, a tag.
        let expected: [(Int, BundleError)] = [
            (0, .malformed("not a sealed bundle")), (9, .malformed("a sealed bundle names 1 to 64 recipients")),
            (10, .refused("this bundle is sealed, and not to any identity in this store")),
            (50, .refused("this bundle is sealed, and not to any identity in this store")),
            (120, .refused("this bundle is sealed, and not to any identity in this store")),
            (122 + 2, .malformed("a sealed segment of 1048832 bytes exceeds 1048576")),
            (122 + 4 + 1000, .unauthentic), (122 + 4 + (1 << 20) + 8, .unauthentic), (sealed.count - 1, .unauthentic)]
        for (at, error) in expected {
            var bad = sealed
            bad[at] ^= 1
            #expect(throws: error, "byte \(at)") { try Self.unseal(bad, with: [alice]) }
        }
        // Truncated at a segment boundary (the last-segment flag is missing), or anywhere.
        let firstSegmentEnd = 122 + 4 + (1 << 20) + 16
        for cut in [firstSegmentEnd, firstSegmentEnd + 2, sealed.count - 1, 121] {
            #expect(throws: BundleError.truncated, "cut at \(cut)") { try Self.unseal(Array(sealed.prefix(cut)), with: [alice]) }
        }
        #expect(throws: BundleError.malformed("bytes after the last sealed segment")) { try Self.unseal(sealed + [0], with: [alice]) }
        // Swapping two full segments is refused (the counter is in the nonce).
        let seg = 4 + (1 << 20) + 16
        var swapped = Array(sealed.prefix(122))
        let first = Array(sealed[122..<(122 + seg)]), second = Array(sealed[(122 + seg)..<(122 + 2 * seg)])
        swapped += second
        swapped += first
        swapped += Array(sealed[(122 + 2 * seg)...])
        #expect(throws: BundleError.unauthentic) { try Self.unseal(swapped, with: [alice]) }
    }

    @Test func recipientsAreBounded() throws {
        let bound = BundleError.refused("a sealed bundle needs 1 to \(SealedBundle.maximumRecipients) recipient X25519 keys")
        #expect(throws: bound) { try Self.seal([1], to: []) }
        let many = try (0...SealedBundle.maximumRecipients).map { _ in try X25519PrivateKey() }
        #expect(throws: bound) { try Self.seal([1], to: many) }
    }
}

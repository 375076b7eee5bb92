import DatanetCrypto
import DatanetObjects
import Foundation
import Glibc

/// A bundle sealed to named recipients (schema/bundle.md "Sealed bundles"): a random file key,
/// wrapped for each recipient's X25519 key through an ephemeral X25519 agreement and
/// HKDF-SHA256, encrypts the plain bundle in ChaCha20-Poly1305 segments of at most 1 MiB.
/// Every segment's associated data binds the header and says whether it is the last, so a
/// sealed bundle cannot be truncated, reordered or re-addressed unnoticed.
public enum SealedBundle {
    package static let magic = Array("DNSEALED".utf8) + [1]
    package static let segment = 1 << 20
    package static let last: UInt32 = 1 << 31
    package static let info = Array("datanet/v1/sealed-bundle-key".utf8)
    public static let maximumRecipients = 64

    /// Whether a file starts like a sealed bundle.
    public static func isSealed(fd: Int32) -> Bool {
        var head = [UInt8](repeating: 0, count: magic.count)
        let n = pread(fd, &head, head.count, 0)
        return n == magic.count && head == magic
    }

    /// Encrypts the plain bundle read from `input` to `output` for the recipients' X25519 keys.
    public static func seal(from input: Int32, to output: Int32, recipients: [[UInt8]]) throws {
        guard (1...maximumRecipients).contains(recipients.count), recipients.allSatisfy({ $0.count == 32 }) else {
            throw BundleError.refused("a sealed bundle needs 1 to \(maximumRecipients) recipient X25519 keys")
        }
        var random = SystemRandomNumberGenerator() // the system CSPRNG (getrandom)
        let fileKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        var header = magic + [UInt8(recipients.count)]
        for r in recipients {
            let eph = try X25519PrivateKey()
            let kek = try HKDF.sha256(ikm: try eph.sharedSecret(with: r), salt: eph.publicKey + r, info: info, length: 32)
            header += r + eph.publicKey + (try ChaChaPoly.seal(key: kek, nonce: [UInt8](repeating: 0, count: 12), plaintext: fileKey))
        }
        let bound = SHA256.hash(header).bytes
        try writeAll(output, header)
        var counter: UInt64 = 0
        var pending = try readUpTo(input, segment)
        while true {
            let next = try readUpTo(input, segment)
            let final = next.isEmpty
            let length = UInt32(pending.count) | (final ? last : 0)
            let lengthBytes = BigEndian.bytes(UInt64(length)).suffix(4)
            let sealed = try ChaChaPoly.seal(key: fileKey, nonce: nonce(counter), plaintext: pending, aad: bound + lengthBytes)
            try writeAll(output, Array(lengthBytes) + sealed)
            if final { return }
            pending = next
            counter += 1
        }
    }

    /// Decrypts a sealed bundle from `input` to `output` with whichever of `keys` it was sealed
    /// to. Throws (having written only authenticated plaintext) on any failure.
    public static func open(from input: Int32, to output: Int32, keys: [X25519PrivateKey]) throws {
        var decoder = SealedBundleDecoder(keys: keys)
        while true {
            switch try decoder.next() {
            case .item(let plain): try writeAll(output, plain)
            case .finished:
                let more = try readUpTo(input, 1)
                decoder.feed(more)
                try decoder.finish()
                return
            case .needMore(let n):
                let chunk = try readUpTo(input, max(n, segment + 20))
                guard !chunk.isEmpty else { try decoder.finish(); throw BundleError.truncated }
                decoder.feed(chunk)
            }
        }
    }

    static func nonce(_ counter: UInt64) -> [UInt8] { [0, 0, 0, 0] + BigEndian.bytes(counter) }

    private static func readUpTo(_ fd: Int32, _ n: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, n - got) }
            if r < 0 { if errno == EINTR { continue }; throw BundleError.refused("cannot read: \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            got += r
        }
        return Array(out[0..<got])
    }

    private static func readExactly(_ fd: Int32, _ n: Int) throws -> [UInt8] {
        let b = try readUpTo(fd, n)
        guard b.count == n else { throw BundleError.truncated }
        return b
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let w = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if w < 0 { if errno == EINTR { continue }; throw BundleError.refused("cannot write: \(String(cString: strerror(errno)))") }
            off += w
        }
    }
}

/// A sealed bundle's plaintext, decrypted from bytes as they arrive (a file today, a socket
/// next): the header and each recipient entry as soon as they are complete, then one
/// authenticated segment at a time. Every length is bounded when its header arrives.
public struct SealedBundleDecoder: ~Copyable {
    private enum Stage { case magic, count, recipients, segments, ended }
    private let keys: [X25519PrivateKey]
    private var buffer = [UInt8]()
    private var at = 0
    private var stage = Stage.magic
    private var header = [UInt8]()
    private var recipients = 0
    private var fileKey: [UInt8]?
    private var bound = [UInt8]()
    private var counter: UInt64 = 0

    public init(keys: [X25519PrivateKey]) { self.keys = keys }

    /// Hands the decoder more input.
    public mutating func feed<C: Collection<UInt8>>(_ bytes: C) {
        if at > 0 && at >= buffer.count / 2 { buffer.removeFirst(at); at = 0 }
        buffer.append(contentsOf: bytes)
    }

    private var available: Int { buffer.count - at }

    private mutating func take(_ n: Int) -> [UInt8] {
        defer { at += n }
        return Array(buffer[at..<at + n])
    }

    /// The next authenticated plaintext segment, or how many more bytes are needed at least.
    public mutating func next() throws -> DecodeStep<[UInt8]> {
        while true {
            switch stage {
            case .magic:
                let m = SealedBundle.magic, have = min(available, m.count)
                guard buffer[at..<at + have].elementsEqual(m.prefix(have)) else { throw BundleError.malformed("not a sealed bundle") }
                guard have == m.count else { return .needMore(m.count - have) }
                header = take(m.count)
                stage = .count
            case .count:
                guard available >= 1 else { return .needMore(1) }
                let n = take(1)[0]
                guard n >= 1, Int(n) <= SealedBundle.maximumRecipients else {
                    throw BundleError.malformed("a sealed bundle names 1 to \(SealedBundle.maximumRecipients) recipients")
                }
                header.append(n)
                recipients = Int(n)
                stage = .recipients
            case .recipients:
                guard recipients > 0 else {
                    guard fileKey != nil else { throw BundleError.refused("this bundle is sealed, and not to any identity in this store") }
                    bound = SHA256.hash(header).bytes
                    stage = .segments
                    continue
                }
                guard available >= 112 else { return .needMore(112 - available) }
                let entry = take(112)
                header += entry
                recipients -= 1
                let (recipient, eph, wrapped) = (Array(entry[0..<32]), Array(entry[32..<64]), Array(entry[64...]))
                guard fileKey == nil, let me = keys.first(where: { $0.publicKey == recipient }) else { continue }
                let kek = try HKDF.sha256(ikm: try me.sharedSecret(with: eph), salt: eph + recipient, info: SealedBundle.info, length: 32)
                fileKey = try? ChaChaPoly.open(key: kek, nonce: [UInt8](repeating: 0, count: 12), sealed: wrapped)
            case .segments:
                guard available >= 4 else { return .needMore(4 - available) }
                let length = UInt32(buffer[at]) << 24 | UInt32(buffer[at + 1]) << 16 | UInt32(buffer[at + 2]) << 8 | UInt32(buffer[at + 3])
                let size = Int(length & ~SealedBundle.last)
                guard size <= SealedBundle.segment else { throw BundleError.malformed("a sealed segment of \(size) bytes exceeds \(SealedBundle.segment)") }
                guard available >= 4 + size + ChaChaPoly.tagSize else { return .needMore(4 + size + ChaChaPoly.tagSize - available) }
                let lengthBytes = take(4)
                let sealed = take(size + ChaChaPoly.tagSize)
                guard let key = fileKey,
                      let plain = try? ChaChaPoly.open(key: key, nonce: SealedBundle.nonce(counter), sealed: sealed, aad: bound + lengthBytes) else {
                    throw BundleError.unauthentic
                }
                counter += 1
                if length & SealedBundle.last != 0 { stage = .ended }
                return .item(plain)
            case .ended:
                guard available == 0 else { throw BundleError.malformed("bytes after the last sealed segment") }
                return .finished
            }
        }
    }

    /// The input is over: fails unless the last segment came and nothing followed it.
    public func finish() throws {
        guard stage != .magic else { throw BundleError.malformed("not a sealed bundle") }
        guard stage == .ended else { throw BundleError.truncated }
        guard available == 0 else { throw BundleError.malformed("bytes after the last sealed segment") }
    }
}

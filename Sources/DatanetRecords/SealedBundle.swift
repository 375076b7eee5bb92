import DatanetCrypto
import DatanetObjects
import Foundation
import Glibc

/// A bundle sealed to named recipients (schema/bundle.md "Sealed bundles"): a random file key,
/// wrapped for each recipient's X25519 key through an ephemeral X25519 agreement and
/// HKDF-SHA256, encrypts the plain bundle in ChaCha20-Poly1305 segments of at most 1 MiB.
/// Every segment's associated data binds the header and says whether it is the last, so a
/// sealed bundle cannot be truncated, reordered or re-addressed unnoticed.
///
/// Version 2 (written) names no one: a recipient finds its entry by trial decryption, the
/// entries are padded with decoys to a power of two, and the plaintext to a Padmé size class.
/// Version 1 (read only) listed each recipient's key in clear.
public enum SealedBundle {
    package static let prefix = Array("DNSEALED".utf8)
    package static let version: UInt8 = 2
    package static let segment = 1 << 20
    package static let last: UInt32 = 1 << 31
    package static let info = Array("datanet/v1/sealed-bundle-key".utf8)
    public static let maximumRecipients = 64
    /// Fewest entries a version 2 header holds (real ones and decoys).
    package static let minimumEntries = 4

    /// Whether a file starts like a sealed bundle (of any version).
    public static func isSealed(fd: Int32) -> Bool {
        var head = [UInt8](repeating: 0, count: prefix.count)
        let n = pread(fd, &head, head.count, 0)
        return n == prefix.count && head == prefix
    }

    /// Entries in a version 2 header for `recipients`: the next power of two, at least 4.
    package static func entryCount(recipients: Int) -> Int {
        var n = minimumEntries
        while n < recipients { n *= 2 }
        return n
    }

    /// Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
    /// Communication with PURBs", 2019): `length` rounded up so that only its top
    /// ⌊log2 ⌊log2 length⌋⌋ + 1 bits may be non-zero; at most 12% larger.
    package static func padme(_ length: UInt64) -> UInt64 {
        guard length >= 2 else { return length }
        let e = UInt64(63 - length.leadingZeroBitCount)          // ⌊log2 length⌋
        let s = UInt64(64 - e.leadingZeroBitCount)                // ⌊log2 e⌋ + 1
        let mask: UInt64 = (1 << (e - s)) - 1
        return (length + mask) & ~mask
    }

    /// Encrypts the plain bundle read from `input` (a regular file: its size is read first) to
    /// `output` for the recipients' X25519 keys.
    public static func seal(from input: Int32, to output: Int32, recipients: [[UInt8]]) throws {
        guard (1...maximumRecipients).contains(recipients.count), recipients.allSatisfy({ $0.count == 32 }) else {
            throw BundleError.refused("a sealed bundle needs 1 to \(maximumRecipients) recipient X25519 keys")
        }
        var st = stat()
        guard fstat(input, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw BundleError.refused("the plain bundle is not a regular file") }
        let offset = lseek(input, 0, SEEK_CUR)
        guard offset >= 0, offset <= st.st_size else { throw BundleError.refused("the plain bundle cannot be read from its position") }
        let length = UInt64(st.st_size - offset)
        var random = SystemRandomNumberGenerator() // the system CSPRNG (getrandom)
        let fileKey = (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) }
        var entries = [[UInt8]]()
        for r in recipients {
            let eph = try X25519PrivateKey()
            let kek = try HKDF.sha256(ikm: try eph.sharedSecret(with: r), salt: eph.publicKey + r, info: info, length: 32)
            entries.append(eph.publicKey + (try ChaChaPoly.seal(key: kek, nonce: [UInt8](repeating: 0, count: 12), plaintext: fileKey)))
        }
        // Decoys look like entries: a real X25519 public key (random bytes would show a top bit
        // no public key has) and 48 random bytes where a wrapped key would be.
        while entries.count < entryCount(recipients: recipients.count) {
            entries.append(try X25519PrivateKey().publicKey + (0..<48).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        entries.shuffle(using: &random)
        let header = prefix + [version, UInt8(entries.count)] + entries.joined()
        let bound = SHA256.hash(header).bytes
        try writeAll(output, header)
        // The plaintext: the bundle's length (8 bytes), the bundle, zeros up to the size class.
        let total = padme(8 + length)
        var plain = PlainStream(input: input, prefix: BigEndian.bytes(length), length: length, total: total)
        var counter: UInt64 = 0
        var pending = try plain.read(segment)
        while true {
            let next = try plain.read(segment)
            let final = next.isEmpty
            let lengthField = UInt32(pending.count) | (final ? last : 0)
            let lengthBytes = BigEndian.bytes(UInt64(lengthField)).suffix(4)
            let sealed = try ChaChaPoly.seal(key: fileKey, nonce: nonce(counter), plaintext: pending, aad: bound + lengthBytes)
            try writeAll(output, Array(lengthBytes) + sealed)
            if final { return }
            pending = next
            counter += 1
        }
    }

    /// The length prefix, the bundle read from a file, then zero padding, read in pieces.
    private struct PlainStream {
        let input: Int32, prefix: [UInt8], length: UInt64, total: UInt64
        var position: UInt64 = 0

        /// Up to `n` bytes of the plaintext; empty at its end.
        mutating func read(_ n: Int) throws -> [UInt8] {
            var out = [UInt8]()
            while out.count < n && position < total {
                let room = UInt64(n - out.count)
                let piece: [UInt8]
                if position < 8 {
                    piece = Array(prefix[Int(position)...].prefix(Int(room)))
                } else if position < 8 + length {
                    let want = Int(min(room, 8 + length - position))
                    piece = try SealedBundle.readUpTo(input, want)
                    guard piece.count == want else { throw BundleError.refused("the plain bundle changed while it was sealed") }
                } else {
                    piece = [UInt8](repeating: 0, count: Int(min(room, total - position)))
                }
                out += piece
                position += UInt64(piece.count)
            }
            return out
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

    fileprivate static func readUpTo(_ fd: Int32, _ n: Int) throws -> [UInt8] {
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
/// authenticated segment at a time, with the length prefix and padding of version 2 removed.
/// Every length is bounded when its header arrives.
public struct SealedBundleDecoder: ~Copyable {
    private enum Stage { case magic, count, recipients, segments, ended }
    private let keys: [X25519PrivateKey]
    private var buffer = [UInt8]()
    private var at = 0
    private var stage = Stage.magic
    private var version: UInt8 = 0
    private var header = [UInt8]()
    private var recipients = 0
    private var fileKey: [UInt8]?
    private var bound = [UInt8]()
    private var counter: UInt64 = 0
    /// Version 2: plaintext bytes seen, the bundle's length once its 8 bytes are in, and the
    /// length prefix as it arrives.
    private var seen: UInt64 = 0
    private var length: UInt64?
    private var lengthBytes = [UInt8]()

    public init(keys: [X25519PrivateKey]) { self.keys = keys }

    /// Hands the decoder more input.
    public mutating func feed<C: Collection<UInt8>>(_ bytes: C) {
        if at > 0 && at >= buffer.count / 2 { buffer.removeFirst(at); at = 0 }
        buffer.append(contentsOf: bytes)
    }

    private var available: Int { buffer.count - at }
    private var entrySize: Int { version == 1 ? 112 : 80 }

    private mutating func take(_ n: Int) -> [UInt8] {
        defer { at += n }
        return Array(buffer[at..<at + n])
    }

    /// The next authenticated plaintext, or how many more bytes are needed at least.
    public mutating func next() throws -> DecodeStep<[UInt8]> {
        while true {
            switch stage {
            case .magic:
                let m = SealedBundle.prefix, have = min(available, m.count + 1)
                guard buffer[at..<at + min(have, m.count)].elementsEqual(m.prefix(have)) else { throw BundleError.malformed("not a sealed bundle") }
                guard have == m.count + 1 else { return .needMore(m.count + 1 - have) }
                header = take(m.count + 1)
                version = header[m.count]
                guard version == 1 || version == SealedBundle.version else {
                    throw BundleError.malformed("sealed bundle version \(version) is not supported")
                }
                stage = .count
            case .count:
                guard available >= 1 else { return .needMore(1) }
                let n = Int(take(1)[0])
                if version == 1 {
                    guard n >= 1, n <= SealedBundle.maximumRecipients else {
                        throw BundleError.malformed("a sealed bundle names 1 to \(SealedBundle.maximumRecipients) recipients")
                    }
                } else {
                    guard n >= SealedBundle.minimumEntries, n <= SealedBundle.maximumRecipients, n & (n - 1) == 0 else {
                        throw BundleError.malformed("a sealed bundle holds a power of two from \(SealedBundle.minimumEntries) to \(SealedBundle.maximumRecipients) entries")
                    }
                }
                header.append(UInt8(n))
                recipients = n
                stage = .recipients
            case .recipients:
                guard recipients > 0 else {
                    guard fileKey != nil else { throw BundleError.refused("this bundle is sealed, and not to any identity in this store") }
                    bound = SHA256.hash(header).bytes
                    stage = .segments
                    continue
                }
                guard available >= entrySize else { return .needMore(entrySize - available) }
                let entry = take(entrySize)
                header += entry
                recipients -= 1
                guard fileKey == nil else { continue }
                if version == 1 {
                    let (recipient, eph, wrapped) = (Array(entry[0..<32]), Array(entry[32..<64]), Array(entry[64...]))
                    guard let me = keys.first(where: { $0.publicKey == recipient }) else { continue }
                    fileKey = try unwrap(wrapped, eph: eph, me: me)
                } else {
                    // Anonymous entries: each key tries each entry.
                    let (eph, wrapped) = (Array(entry[0..<32]), Array(entry[32...]))
                    for me in keys where fileKey == nil { fileKey = try unwrap(wrapped, eph: eph, me: me) }
                }
            case .segments:
                guard available >= 4 else { return .needMore(4 - available) }
                let field = UInt32(buffer[at]) << 24 | UInt32(buffer[at + 1]) << 16 | UInt32(buffer[at + 2]) << 8 | UInt32(buffer[at + 3])
                let size = Int(field & ~SealedBundle.last)
                guard size <= SealedBundle.segment else { throw BundleError.malformed("a sealed segment of \(size) bytes exceeds \(SealedBundle.segment)") }
                guard available >= 4 + size + ChaChaPoly.tagSize else { return .needMore(4 + size + ChaChaPoly.tagSize - available) }
                let fieldBytes = take(4)
                let sealed = take(size + ChaChaPoly.tagSize)
                guard let key = fileKey,
                      let plain = try? ChaChaPoly.open(key: key, nonce: SealedBundle.nonce(counter), sealed: sealed, aad: bound + fieldBytes) else {
                    throw BundleError.unauthentic
                }
                counter += 1
                if field & SealedBundle.last != 0 { stage = .ended }
                return .item(version == 1 ? plain : try unpadded(plain))
            case .ended:
                guard available == 0 else { throw BundleError.malformed("bytes after the last sealed segment") }
                if version != 1 {
                    guard let length, seen == SealedBundle.padme(8 + length) else { throw BundleError.malformed("the sealed plaintext is not padded to its size class") }
                }
                return .finished
            }
        }
    }

    private func unwrap(_ wrapped: [UInt8], eph: [UInt8], me: X25519PrivateKey) throws -> [UInt8]? {
        guard let shared = try? me.sharedSecret(with: eph) else { return nil } // a decoy's point may be of small order
        let kek = try HKDF.sha256(ikm: shared, salt: eph + me.publicKey, info: SealedBundle.info, length: 32)
        return try? ChaChaPoly.open(key: kek, nonce: [UInt8](repeating: 0, count: 12), sealed: wrapped)
    }

    /// The bundle bytes of an authenticated version 2 segment: the 8-byte length prefix and the
    /// padding (zeros, up to the size class) are removed and checked.
    private mutating func unpadded(_ plain: [UInt8]) throws -> [UInt8] {
        var i = 0
        if length == nil {
            let need = min(8 - lengthBytes.count, plain.count)
            lengthBytes += plain[0..<need]
            (i, seen) = (need, seen + UInt64(need))
            guard lengthBytes.count == 8 else { return [] }
            guard BigEndian.u64(lengthBytes) <= UInt64(Int64.max) else { throw BundleError.malformed("the sealed plaintext names an impossible length") }
            length = BigEndian.u64(lengthBytes)
        }
        let end = 8 + length!                          // where the bundle ends, in plaintext bytes
        let n = Int(min(UInt64(plain.count - i), end > seen ? end - seen : 0))
        let out = Array(plain[i..<i + n])
        seen += UInt64(n)
        let padding = plain[(i + n)...]
        guard padding.allSatisfy({ $0 == 0 }) else { throw BundleError.malformed("the sealed plaintext's padding is not zeros") }
        seen += UInt64(padding.count)
        guard seen <= SealedBundle.padme(end) else { throw BundleError.malformed("the sealed plaintext is not padded to its size class") }
        return out
    }

    /// The input is over: fails unless the last segment came and nothing followed it.
    public func finish() throws {
        guard stage != .magic else { throw BundleError.malformed("not a sealed bundle") }
        guard stage == .ended else { throw BundleError.truncated }
        guard available == 0 else { throw BundleError.malformed("bytes after the last sealed segment") }
        if version != 1 {
            guard let length, seen == SealedBundle.padme(8 + length) else { throw BundleError.malformed("the sealed plaintext is not padded to its size class") }
        }
    }
}

import DatanetCrypto
import DatanetObjects
import Foundation
import Glibc

/// A bundle file's frames (schema/bundle.md): `DNBUNDLE` ‖ version 1, then frames of
/// type (1 byte) ‖ length (u32 big-endian) ‖ payload, ending with an `end` frame that holds
/// the frame count and SHA-256 of every byte before it.
public enum BundleFrame: UInt8, Sendable, CaseIterable {
    case header = 1, leaf = 2, checkpoint = 3, record = 4, chunk = 5, blob = 6, tree = 7, sidecar = 8, forkEvidence = 9, promise = 10
    case end = 0xff
}

/// Why a bundle is refused; nothing is imported from it.
public enum BundleError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case truncated
    case tampered
    case refused(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed bundle: \(why)"
        case .truncated: "bundle is truncated (no end frame)"
        case .tampered: "bundle's end frame does not match its contents (altered or reordered)"
        case .refused(let why): "bundle refused: \(why)"
        }
    }
}

/// Writes frames to a file descriptor through a buffer, hashing everything written.
package final class BundleWriter {
    package static let magic = Array("DNBUNDLE".utf8) + [1]
    private let fd: Int32
    private var buffer = [UInt8]()
    private var hasher = SHA256.Hasher()
    package private(set) var frames: UInt64 = 0
    package private(set) var bytes: UInt64 = 0

    package init(fd: Int32) throws {
        self.fd = fd
        buffer.reserveCapacity(1 << 20)
        try append(Self.magic)
    }

    private func append(_ b: [UInt8]) throws {
        hasher.update(b)
        buffer += b
        bytes += UInt64(b.count)
        if buffer.count >= 1 << 20 { try flush() }
    }

    package func flush() throws {
        try buffer.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 { if errno == EINTR { continue }; throw BundleError.refused("cannot write the bundle: \(String(cString: strerror(errno)))") }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    package func frame(_ type: BundleFrame, _ payload: [UInt8]) throws {
        guard payload.count <= BundleReader.maximumFrame else {
            throw BundleError.refused("a \(type) of \(payload.count) bytes exceeds the \(BundleReader.maximumFrame)-byte frame limit")
        }
        let n = UInt32(payload.count)
        try append([type.rawValue, UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)])
        try append(payload)
        frames += 1
    }

    /// Writes the end frame and flushes.
    package func finish() throws {
        let digest = hasher.finalize()
        var payload = BigEndian.bytes(frames)
        payload += digest.bytes
        try frame(.end, payload)
        try flush()
    }
}

/// Reads frames from a file descriptor, bounding every length and checking the end frame.
package final class BundleReader {
    package static let maximumFrame = 64 << 20
    private let fd: Int32
    private var buffer = [UInt8]()
    private var at = 0
    private var hasher = SHA256.Hasher()
    private var frames: UInt64 = 0
    package private(set) var bytesRead: UInt64 = 0
    private var ended = false

    package init(fd: Int32) throws {
        self.fd = fd
        guard try take(BundleWriter.magic.count) == BundleWriter.magic else { throw BundleError.malformed("not a Datanet bundle (bad magic or version)") }
        hasher.update(BundleWriter.magic)
    }

    /// Reads exactly n bytes, or fewer at the end of the file.
    private func take(_ n: Int) throws -> [UInt8] {
        while buffer.count - at < n {
            if at > 0 { buffer.removeFirst(at); at = 0 }
            var chunk = [UInt8](repeating: 0, count: max(1 << 20, n - buffer.count))
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 { if errno == EINTR { continue }; throw BundleError.refused("cannot read the bundle: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            buffer += chunk[0..<got]
        }
        let n = min(n, buffer.count - at)
        let out = Array(buffer[at..<at + n])
        at += n
        bytesRead += UInt64(n)
        return out
    }

    /// The next frame, or nil after a valid end frame. Throws on truncation, on an oversized
    /// or unknown frame, on bytes after the end, and on an end frame that does not match.
    package func next() throws -> (BundleFrame, [UInt8])? {
        if ended { return nil }
        let head = try take(5)
        guard head.count == 5 else { throw BundleError.truncated }
        let n = Int(head[1]) << 24 | Int(head[2]) << 16 | Int(head[3]) << 8 | Int(head[4])
        guard let type = BundleFrame(rawValue: head[0]) else { throw BundleError.malformed("unknown frame type \(head[0])") }
        guard n <= Self.maximumFrame else { throw BundleError.malformed("a \(type) frame of \(n) bytes exceeds \(Self.maximumFrame)") }
        let payload = try take(n)
        guard payload.count == n else { throw BundleError.truncated }
        if type == .end {
            let digest = hasher.finalize()
            guard n == 40, BigEndian.u64(payload) == frames, payload[8...].elementsEqual(digest.bytes) else { throw BundleError.tampered }
            guard try take(1).isEmpty else { throw BundleError.malformed("bytes after the end frame") }
            ended = true
            return nil
        }
        hasher.update(head)
        hasher.update(payload)
        frames += 1
        return (type, payload)
    }

}

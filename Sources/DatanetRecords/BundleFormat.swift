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
    /// A sealed segment that does not authenticate: altered, reordered or cut.
    case unauthentic
    case refused(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed bundle: \(why)"
        case .truncated: "bundle is truncated (no end frame)"
        case .tampered: "bundle's end frame does not match its contents (altered or reordered)"
        case .unauthentic: "a sealed segment does not authenticate (altered, reordered or cut)"
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

/// What a streaming decoder makes of the bytes it holds: an item, a request for at least this
/// many more bytes, or the end of a complete stream.
public enum DecodeStep<Item> {
    case item(Item)
    case needMore(Int)
    case finished
}

/// Bundle frames decoded from bytes as they arrive, whatever their source (a file today, a
/// socket next) and however they are split. Every length is bounded as soon as its header
/// arrives, before its payload; the end frame's count and digest are checked, and nothing may
/// follow it.
public struct BundleFrameDecoder: ~Copyable {
    private var buffer = [UInt8]()
    private var at = 0
    private var hasher = SHA256.Hasher()
    private var frames: UInt64 = 0
    private var sawMagic = false
    private var ended = false
    /// Bytes decoded into frames (and the magic) so far.
    public private(set) var consumed: UInt64 = 0

    public init() {}

    /// Hands the decoder more input.
    public mutating func feed<C: Collection<UInt8>>(_ bytes: C) {
        // Drop what was consumed once it is most of the buffer, so memory stays near one frame.
        if at > 0 && at >= buffer.count / 2 { buffer.removeFirst(at); at = 0 }
        buffer.append(contentsOf: bytes)
    }

    private var available: Int { buffer.count - at }

    private mutating func take(_ n: Int) -> [UInt8] {
        defer { at += n; consumed += UInt64(n) }
        return Array(buffer[at..<at + n])
    }

    /// The next frame if its bytes have all arrived; else how many more are needed at least.
    public mutating func next() throws(BundleError) -> DecodeStep<(BundleFrame, [UInt8])> {
        if ended {
            guard available == 0 else { throw .malformed("bytes after the end frame") }
            return .finished
        }
        if !sawMagic {
            let m = BundleWriter.magic
            // A wrong first byte is refused at once, not after the whole magic arrives.
            guard buffer[at..<at + min(available, m.count)].elementsEqual(m.prefix(min(available, m.count))) else {
                throw .malformed("not a Datanet bundle (bad magic or version)")
            }
            guard available >= m.count else { return .needMore(m.count - available) }
            hasher.update(take(m.count))
            sawMagic = true
        }
        guard available >= 5 else { return .needMore(5 - available) }
        let type = buffer[at]
        let n = Int(buffer[at + 1]) << 24 | Int(buffer[at + 2]) << 16 | Int(buffer[at + 3]) << 8 | Int(buffer[at + 4])
        guard let kind = BundleFrame(rawValue: type) else { throw .malformed("unknown frame type \(type)") }
        guard n <= BundleReader.maximumFrame else { throw .malformed("a \(kind) frame of \(n) bytes exceeds \(BundleReader.maximumFrame)") }
        guard available >= 5 + n else { return .needMore(5 + n - available) }
        let head = take(5)
        let payload = take(n)
        if kind == .end {
            let digest = hasher.finalize()
            guard n == 40, BigEndian.u64(payload) == frames, payload[8...].elementsEqual(digest.bytes) else { throw .tampered }
            ended = true
            return try next()
        }
        hasher.update(head)
        hasher.update(payload)
        frames += 1
        return .item((kind, payload))
    }

    /// The input is over: fails unless the end frame came and nothing followed it.
    public func finish() throws(BundleError) {
        guard sawMagic else { throw .malformed("not a Datanet bundle (bad magic or version)") }
        guard ended else { throw .truncated }
        guard available == 0 else { throw .malformed("bytes after the end frame") }
    }
}

/// Reads frames from a file descriptor through `BundleFrameDecoder`.
package final class BundleReader {
    package static let maximumFrame = 64 << 20
    private let fd: Int32
    private var decoder = BundleFrameDecoder()
    package var bytesRead: UInt64 { decoder.consumed }

    package init(fd: Int32) throws {
        self.fd = fd
    }

    /// The next frame, or nil after a valid end frame. Throws on truncation, on an oversized
    /// or unknown frame, on bytes after the end, and on an end frame that does not match.
    package func next() throws -> (BundleFrame, [UInt8])? {
        while true {
            switch try decoder.next() {
            case .item(let frame): return frame
            case .finished:
                // Nothing may follow the end frame in the file either.
                if try fill(1) { _ = try decoder.next() }
                return nil
            case .needMore(let n):
                guard try fill(n) else { try decoder.finish(); throw BundleError.truncated }
            }
        }
    }

    /// Reads at least 1 and up to max(n, 1 MiB) bytes into the decoder; false at the end of the file.
    private func fill(_ n: Int) throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: max(1 << 20, n))
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 { if errno == EINTR { continue }; throw BundleError.refused("cannot read the bundle: \(String(cString: strerror(errno)))") }
            if got == 0 { return false }
            decoder.feed(chunk[0..<got])
            return true
        }
    }
}

import DatanetCrypto
import DatanetObjects
@testable import DatanetSync
import DatanetTestSupport
import Testing

/// Application messages over an established Noise session: split into chunks and reassembled,
/// whatever buffers the bytes arrive in, under a hard bound; bad chunks end the session.
@Suite struct SecureChannelTests {
    /// A completed handshake's two channels (initiator's, responder's).
    static func channels(bound: Int = SecureChannel.defaultMaximumMessage) throws -> (SecureChannel, SecureChannel) {
        var i = NoiseHandshake(role: .initiator, staticKey: try X25519PrivateKey(), prologue: Array("datanet/v1".utf8))
        var r = NoiseHandshake(role: .responder, staticKey: try X25519PrivateKey(), prologue: Array("datanet/v1".utf8))
        _ = try r.readMessage(try i.writeMessage())
        _ = try i.readMessage(try r.writeMessage())
        _ = try r.readMessage(try i.writeMessage())
        return (try SecureChannel(i, maximumMessage: bound), try SecureChannel(r, maximumMessage: bound))
    }

    static let sizes = [0, 1, SecureChannel.chunkSize - 1, SecureChannel.chunkSize, SecureChannel.chunkSize + 1, 3 * SecureChannel.chunkSize + 7, 200_000]

    /// Every size, fed all at once, one byte at a time, and in random cuts: the same messages.
    @Test func messagesSurviveAnyCutOfTheStream() throws {
        var rng = SplitMix64(seed: 7)
        let messages = Self.sizes.map { rng.bytes($0) }
        for feeding in ["all at once", "byte by byte", "random cuts", "one Noise message per buffer"] {
            var (a, b) = try Self.channels()
            var stream = [UInt8]()
            for m in messages { stream += try a.seal(m) }
            var got = [[UInt8]]()
            switch feeding {
            case "all at once": got = try b.receive(stream)
            case "byte by byte": for byte in stream { got += try b.receive([byte]) }
            case "random cuts":
                var at = 0
                while at < stream.count {
                    let n = min(stream.count - at, Int(rng.next() % 70_000))
                    got += try b.receive(stream[at..<at + n])
                    at += n
                }
            default:
                var frames = NoiseFrameReader()
                frames.append(stream)
                while let m = frames.next() { got += try b.receive(try NoiseFrameReader.frame(m)) }
                #expect(frames.pending == 0)
            }
            #expect(got == messages, "\(feeding)")
        }
    }

    /// `seal` writes each chunk in place; the bytes are those of sealing the chunks one by one
    /// (length, then flag and data encrypted) from the same state, for every size.
    @Test func sealIsChunkByChunkSealing() throws {
        var rng = SplitMix64(seed: 11)
        var (a, _) = try Self.channels()
        for size in Self.sizes {
            let m = rng.bytes(size)
            var twin = a
            var expected = [UInt8](), at = 0
            repeat {
                let end = min(m.count, at + SecureChannel.chunkSize)
                expected += try twin.sealChunk(flag: end == m.count ? 1 : 0, m[at..<end])
                at = end
            } while at < m.count
            let sealed = try a.seal(m)
            #expect(sealed == expected, "\(size) bytes")
        }
    }

    /// An `objects` message written in place (a server's answer, copied from the store straight
    /// into the sealed message) arrives as the bytes `SyncMessage.encoded` gives for it: no
    /// object, one, and objects that cross chunk boundaries, with and without refusals.
    @Test func objectsWrittenInPlaceAreTheEncodedMessage() throws {
        var rng = SplitMix64(seed: 23)
        let cases: [(sizes: [Int], refused: Int)] = [([], 1), ([0], 0), ([1000], 2), ([SecureChannel.chunkSize - 9, 5], 0),
                                                     ([70_000, 3, 200_000], 3), ([SecureChannel.chunkSize * 2], 0)]
        for (sizes, refusedCount) in cases {
            let objects = sizes.map { rng.bytes($0) }
            let refused = (0..<refusedCount).map { _ in SyncMessage.ObjectRef(.chunk, ObjectID(bytes: rng.bytes(32))!) }
            let request = rng.next() >> UInt64(rng.next() % 64)
            var (a, b) = try Self.channels()
            var sealed = [UInt8]()
            try objects.withBorrowed { borrowed in
                let message = SyncMessage.ObjectsWriter(request: request, sent: borrowed.map { (.chunk, $0) }, refused: refused)
                sealed = try a.seal(count: message.count, message.write)
            }
            let expected = SyncMessage(request, .objects(sent: objects.map { .init(.chunk, $0) }, refused: refused)).encoded
            let got = try b.receive(sealed)
            #expect(got.count == 1 && got[0] == expected, "\(sizes) with \(refusedCount) refused")
        }
    }

    /// Room kept for a message as large as the last does not leave with smaller ones: after a
    /// 4 MiB message, each two-chunk message delivered holds about its own size, not 4 MiB (a
    /// peer's many tiny messages would otherwise each pin the larger room).
    @Test func smallMessagesAfterALargeOneHoldTheirOwnSize() throws {
        var (a, b) = try Self.channels()
        var stream = try a.seal([UInt8](repeating: 1, count: 4 << 20))
        for _ in 0..<50 { stream += try a.seal([UInt8](repeating: 2, count: SecureChannel.chunkSize + 1)) }
        let got = try b.receive(stream)
        let small = got.dropFirst()
        let largest = small.map(\.capacity).max() ?? 0
        #expect(got.count == 51 && got[0].count == 4 << 20 && largest < 4 * SecureChannel.chunkSize, "capacity \(largest)")
    }

    /// Both directions at once, each with its own nonce.
    @Test func bothDirectionsAreIndependent() throws {
        var (a, b) = try Self.channels()
        let ab = try a.seal(Array("to b".utf8)), ba = try b.seal(Array("to a".utf8))
        #expect(try a.receive(ba) == [Array("to a".utf8)])
        #expect(try b.receive(ab) == [Array("to b".utf8)])
    }

    /// A message past the bound is refused when sealed, and when it arrives, at the chunk
    /// that passes the bound (so a peer cannot make the receiver hold more).
    @Test func theBoundHoldsBothWays() throws {
        var (a, _) = try Self.channels(bound: 100_000)
        #expect(throws: NoiseError.messageTooLarge(size: 100_001, bound: 100_000)) { _ = try a.seal([UInt8](repeating: 1, count: 100_001)) }
        var (sender, receiver) = try Self.channels(bound: 100_000)
        let stream = try Self.unboundedSeal(&sender, count: 150_000)
        #expect(throws: NoiseError.messageTooLarge(size: 2 * SecureChannel.chunkSize, bound: 100_000)) { _ = try receiver.receive(stream) }
    }

    /// Seals `count` bytes as chunks without the sender's bound (as a hostile peer would).
    static func unboundedSeal(_ c: inout SecureChannel, count: Int) throws -> [UInt8] {
        var out = [UInt8]()
        var left = count
        while left > 0 {
            let n = min(left, SecureChannel.chunkSize)
            left -= n
            out += try c.sealChunk(flag: left == 0 ? 1 : 0, [UInt8](repeating: 2, count: n))
        }
        return out
    }

    /// A chunk with a bad flag or none, and an altered byte, end the session with a typed error.
    @Test func badChunksAreRefused() throws {
        for flag in [UInt8(2), 0xff] {
            var (a, b) = try Self.channels()
            #expect(throws: NoiseError.malformedChunk) { _ = try b.receive(try a.sealChunk(flag: flag, [1, 2, 3])) }
        }
        var (a, b) = try Self.channels()
        #expect(throws: NoiseError.malformedChunk) { _ = try b.receive(try a.sealChunk(flag: nil, [])) }
        var (c, d) = try Self.channels()
        var stream = try c.seal(Array("hello".utf8))
        stream[stream.count - 1] ^= 1
        #expect(throws: NoiseError.decryptionFailed) { _ = try d.receive(stream) }
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with each array's bytes in place (as a server borrows them from its map).
    func withBorrowed<R>(_ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        func nest(_ i: Int, _ done: [UnsafeRawBufferPointer]) throws -> R {
            guard i < count else { return try body(done) }
            return try self[i].withUnsafeBytes { try nest(i + 1, done + [$0]) }
        }
        return try nest(0, [])
    }
}

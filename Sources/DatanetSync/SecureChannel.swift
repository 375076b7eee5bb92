/// Noise messages on a byte stream, framed as the Noise specification does on TCP (§13: a
/// 2-byte big-endian length, then the message). Bytes go in as they arrive, in buffers of
/// any size; whole messages come out.
public struct NoiseFrameReader: Sendable {
    private var buffer = [UInt8]()
    private var start = 0

    public init() {}

    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Consumed bytes are dropped once they are most of the buffer: amortized O(1) a byte.
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole message, or nil until more bytes arrive.
    public mutating func next() -> [UInt8]? {
        guard buffer.count - start >= 2 else { return nil }
        let n = Int(buffer[start]) << 8 | Int(buffer[start + 1])
        guard buffer.count - start - 2 >= n else { return nil }
        defer { start += 2 + n }
        return Array(buffer[(start + 2)..<(start + 2 + n)])
    }

    /// Bytes held that do not yet make a whole message.
    public var pending: Int { buffer.count - start }

    /// Takes the bytes held (what arrived after the last whole message).
    public mutating func takeRemaining() -> [UInt8] {
        defer { (buffer, start) = ([], 0) }
        return Array(buffer[start...])
    }

    /// `message` with its length in front.
    public static func frame(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard message.count <= NoiseCipher.maximumMessage else { throw .tooLong(message.count) }
        return [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message
    }
}

/// An established Noise session carrying application messages of any size up to a hard bound
/// (schema/sync.md "Transport"): each message is split into chunks of at most 65,518 bytes,
/// each sent as one Noise transport message whose plaintext is a flag byte (1 on the last
/// chunk of a message, 0 before it) and the chunk.
public struct SecureChannel: Sendable {
    /// Largest application message accepted by default: 64 MiB.
    public static let defaultMaximumMessage = 64 << 20
    /// Data bytes in one chunk: a Noise message's 65,535 bytes less the tag and the flag.
    public static let chunkSize = NoiseCipher.maximumMessage - 16 - 1

    private var sender: NoiseCipher
    private var receiver: NoiseCipher
    public let maximumMessage: Int
    private var frames = NoiseFrameReader()
    private var partial = [UInt8]()

    /// The channel of a completed handshake.
    public init(_ handshake: NoiseHandshake, maximumMessage: Int = SecureChannel.defaultMaximumMessage) throws(NoiseError) {
        (sender, receiver) = try handshake.transport()
        self.maximumMessage = maximumMessage
    }

    /// The bytes to write that carry `message`.
    public mutating func seal(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard message.count <= maximumMessage else { throw .messageTooLarge(size: message.count, bound: maximumMessage) }
        var out = [UInt8]()
        out.reserveCapacity(message.count + (message.count / Self.chunkSize + 1) * 19)
        var at = 0
        repeat {
            let end = min(message.count, at + Self.chunkSize)
            out += try sealChunk(flag: end == message.count ? 1 : 0, message[at..<end])
            at = end
        } while at < message.count
        return out
    }

    /// One framed transport message: the flag (none: a malformed chunk, for tests) and data.
    mutating func sealChunk(flag: UInt8?, _ data: some Collection<UInt8>) throws(NoiseError) -> [UInt8] {
        try NoiseFrameReader.frame(try sender.encrypt((flag.map { [$0] } ?? []) + data))
    }

    /// Takes bytes as they arrive; returns the application messages they complete, in order.
    /// Any error ends the session: the channel is not usable after it.
    public mutating func receive(_ bytes: some Collection<UInt8>) throws(NoiseError) -> [[UInt8]] {
        frames.append(bytes)
        var done = [[UInt8]]()
        while let sealed = frames.next() {
            let chunk = try receiver.decrypt(sealed)
            guard let flag = chunk.first, flag <= 1 else { throw .malformedChunk }
            guard partial.count + chunk.count - 1 <= maximumMessage else {
                throw .messageTooLarge(size: partial.count + chunk.count - 1, bound: maximumMessage)
            }
            partial += chunk.dropFirst()
            if flag == 1 {
                done.append(partial)
                partial = []
            }
        }
        return done
    }
}

import DatanetCrypto

/// Noise messages on a byte stream, framed as the Noise specification does on TCP (§13: a
/// 2-byte big-endian length, then the message). Bytes go in as they arrive, in buffers of
/// any size; whole messages come out.
public struct NoiseFrameReader: Sendable {
    /// The bytes held are buffer[start..<end]; buffer[end...] is room to read into.
    private var buffer = [UInt8]()
    private var start = 0, end = 0

    public init() {}

    public mutating func append(_ bytes: some Collection<UInt8>) {
        makeRoom(bytes.count)
        buffer.replaceSubrange(end..<(end + bytes.count), with: bytes)
        end += bytes.count
    }

    /// Reads straight into the buffer (no copy): `read` gets room for up to `count` bytes and
    /// returns how many it wrote there.
    mutating func append(upTo count: Int, _ read: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        makeRoom(count)
        let n = buffer.withUnsafeMutableBytes { b in read(UnsafeMutableRawBufferPointer(rebasing: b[end..<(end + count)])) }
        end += max(0, min(n, count))
        return n
    }

    /// Makes room for `count` more bytes: consumed bytes are dropped once they are most of
    /// what is held (amortized O(1) a byte), and the buffer grows when still short.
    private mutating func makeRoom(_ count: Int) {
        if start > 0 && start >= end / 2 {
            buffer.withUnsafeMutableBytes { b in
                if end > start { b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: end - start) }
            }
            (start, end) = (0, end - start)
        }
        if buffer.count - end < count { buffer += repeatElement(0, count: max(count - (buffer.count - end), buffer.count)) }
    }

    /// The next whole message, or nil until more bytes arrive.
    public mutating func next() -> [UInt8]? {
        nextRange().map { Array(buffer[$0]) }
    }

    /// Where the next whole message lies in `held` (until the next `append`), or nil until more
    /// bytes arrive: a message read in place, without a copy.
    mutating func nextRange() -> Range<Int>? {
        guard end - start >= 2 else { return nil }
        let n = Int(buffer[start]) << 8 | Int(buffer[start + 1])
        guard end - start - 2 >= n else { return nil }
        defer { start += 2 + n }
        return (start + 2)..<(start + 2 + n)
    }

    /// The bytes held, in which `nextRange` places messages.
    var held: [UInt8] { buffer }

    /// Bytes held that do not yet make a whole message.
    public var pending: Int { end - start }

    /// Takes the bytes held (what arrived after the last whole message).
    public mutating func takeRemaining() -> [UInt8] {
        defer { (buffer, start, end) = ([], 0, 0) }
        return Array(buffer[start..<end])
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
    /// Where each transport message is decrypted before its chunk joins `partial`.
    private var plain = [UInt8](repeating: 0, count: NoiseCipher.maximumMessage)
    /// The size of the last application message received: room reserved for the next.
    private var lastReceived = 0

    /// The channel of a completed handshake.
    public init(_ handshake: NoiseHandshake, maximumMessage: Int = SecureChannel.defaultMaximumMessage) throws(NoiseError) {
        (sender, receiver) = try handshake.transport()
        self.maximumMessage = maximumMessage
    }

    /// The bytes to write that carry `message`.
    public mutating func seal(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        try seal(count: message.count) { $0.append(message) }
    }

    /// Bytes a transport message adds to its chunk: length, flag and tag.
    static let chunkOverhead = 2 + 1 + ChaChaPoly.tagSize

    /// Where a message being sealed is written, in order: its bytes go straight into place
    /// between the chunks' lengths and flags and their tags, so a large message (objects read
    /// from the store) is copied once.
    public struct MessageWriter: ~Copyable {
        fileprivate let out: UnsafeMutableRawBufferPointer
        /// The message's size, declared before it is written.
        public let count: Int
        /// The bytes written so far.
        public private(set) var written = 0

        fileprivate init(out: UnsafeMutableRawBufferPointer, count: Int) { (self.out, self.count) = (out, count) }

        /// Appends `bytes`; writing past the declared size is a programming error.
        public mutating func append(_ bytes: UnsafeRawBufferPointer) {
            precondition(written + bytes.count <= count, "a message is written past its declared size")
            var from = 0
            while from < bytes.count {
                let (chunk, within) = written.quotientAndRemainder(dividingBy: SecureChannel.chunkSize)
                let n = min(bytes.count - from, SecureChannel.chunkSize - within)
                (out.baseAddress! + chunk * (SecureChannel.chunkSize + SecureChannel.chunkOverhead) + 3 + within)
                    .copyMemory(from: bytes.baseAddress! + from, byteCount: n)
                from += n
                written += n
            }
        }

        public mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }
    }

    /// The bytes to write that carry a message of `count` bytes, which `write` writes in order
    /// (all of them: fewer is a programming error); each chunk is then encrypted in place.
    public mutating func seal(count: Int, _ write: (inout MessageWriter) -> Void) throws(NoiseError) -> [UInt8] {
        guard count <= maximumMessage else { throw .messageTooLarge(size: count, bound: maximumMessage) }
        let chunks = max(1, (count + Self.chunkSize - 1) / Self.chunkSize)
        let total = count + chunks * Self.chunkOverhead
        var failure: NoiseError?
        let out = [UInt8](unsafeUninitializedCapacity: total) { o, initialized in
            let o = UnsafeMutableRawBufferPointer(o)
            var writer = MessageWriter(out: o, count: count)
            write(&writer)
            precondition(writer.written == count, "a message is written short of its declared size")
            do throws(NoiseError) {
                for i in 0..<chunks {
                    let at = i * (Self.chunkSize + Self.chunkOverhead)
                    let data = min(Self.chunkSize, count - i * Self.chunkSize), sealed = 1 + data + ChaChaPoly.tagSize
                    o[at] = UInt8(sealed >> 8)
                    o[at + 1] = UInt8(sealed & 0xff)
                    o[at + 2] = i == chunks - 1 ? 1 : 0
                    try sender.encrypt(inPlace: UnsafeMutableRawBufferPointer(rebasing: o[(at + 2)..<(at + 2 + sealed)]),
                                       count: 1 + data, ad: UnsafeRawBufferPointer(start: nil, count: 0))
                }
                initialized = total
            } catch { (failure, initialized) = (error, 0) }
        }
        if let failure { throw failure }
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
        return try completed()
    }

    /// Reads what `socket` has (waiting up to its timeout) straight into the frame buffer;
    /// returns the application messages it completes, or nil at the end of the stream.
    mutating func receive(from socket: TCPSocket) throws -> [[UInt8]]? {
        var failure: SocketError?
        let n = frames.append(upTo: 1 << 16) { room in
            do throws(SocketError) { return try socket.receive(into: room) } catch { failure = error; return 0 }
        }
        if let failure { throw failure }
        return n == 0 ? nil : try completed()
    }

    /// The application messages the whole transport messages held complete.
    private mutating func completed() throws(NoiseError) -> [[UInt8]] {
        var done = [[UInt8]]()
        while let at = frames.nextRange() {
            // Decrypted straight from the frame buffer into `plain` (the scratch buffer), then
            // the chunk's data (after its flag) joins the message: one copy.
            let held = frames.held
            var n = 0, failure: NoiseError?
            held.withUnsafeBytes { h in
                plain.withUnsafeMutableBufferPointer { p in
                    do throws(NoiseError) {
                        n = try receiver.decrypt(UnsafeRawBufferPointer(rebasing: h[at]), ad: UnsafeRawBufferPointer(start: nil, count: 0), into: p.baseAddress!)
                    } catch { failure = error }
                }
            }
            if let failure { throw failure }
            guard n >= 1, plain[0] <= 1 else { throw .malformedChunk }
            guard partial.count + n - 1 <= maximumMessage else {
                throw .messageTooLarge(size: partial.count + n - 1, bound: maximumMessage)
            }
            if partial.isEmpty && plain[0] == 0 { partial.reserveCapacity(min(maximumMessage, max(lastReceived, 2 * Self.chunkSize))) }
            partial.append(contentsOf: plain[1..<n])
            if plain[0] == 1 {
                lastReceived = partial.count
                // Room reserved for a message as large as the last one leaves with a smaller
                // message only as an exact copy: small messages after a large one (or a peer's
                // many tiny two-chunk ones) never each hold the larger room.
                if partial.capacity > 2 * (partial.count + Self.chunkSize) {
                    var exact = [UInt8]()
                    exact.reserveCapacity(partial.count)
                    exact += partial
                    done.append(exact)
                } else {
                    done.append(partial)
                }
                partial = []
            }
        }
        return done
    }
}

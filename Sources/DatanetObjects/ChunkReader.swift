import Glibc

/// Reads a file with read(2) into one fixed buffer and cuts it into FastCDC chunks.
///
/// Each chunk is handed out as a view into the buffer, valid until the next call, so a chunk's
/// bytes are copied once on their way to the store (buffer → map). Memory stays at the buffer
/// size however large the file is.
public final class ChunkReader {
    /// Bytes read per refill; must be at least `FastCDC.maxSize`.
    public static let bufferSize = 4 << 20
    private let fd: Int32
    private let path: String
    private let buffer: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    private var eof = false
    /// File offset of the next chunk.
    public private(set) var offset: UInt64 = 0

    /// Opens `path` for reading into `buffer` (at least `bufferSize` bytes, owned by the
    /// caller, used by one reader at a time).
    public init(path: [UInt8], buffer: UnsafeMutableRawBufferPointer) throws {
        precondition(buffer.count >= FastCDC.maxSize, "read buffer smaller than the largest chunk")
        self.path = display(path)
        fd = withCPath(path) { open($0, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw StoreError.io(path: display(path), operation: "open", errno: errno) }
        self.buffer = buffer
    }

    deinit { close(fd) }

    /// The next chunk and its file offset, or nil at the end of the file.
    public func next() throws -> (offset: UInt64, bytes: UnsafeRawBufferPointer)? {
        if end - start < FastCDC.maxSize && !eof { try refill() }
        guard end > start else { return nil }
        let view = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
        let n = FastCDC.cut(view)
        let chunk = UnsafeRawBufferPointer(rebasing: view[0..<n])
        let at = offset
        start += n
        offset += UInt64(n)
        return (at, chunk)
    }

    private func refill() throws {
        let pending = end - start
        if pending > 0 && start > 0 {
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: pending)
        }
        start = 0
        end = pending
        while end < buffer.count {
            let n = read(fd, buffer.baseAddress! + end, buffer.count - end)
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { eof = true; break }
            end += n
        }
    }
}
